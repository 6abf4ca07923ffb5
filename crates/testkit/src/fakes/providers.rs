//! Both provider fakes set up for one Patchbay, and the flags and secrets that point it at them.

use super::{FakeGoogle, FakeMonday};
use std::collections::HashMap;

/// The Google account the fake knows first (`alice@gmail.test`); `g-sub-2` is `bob@gmail.test`.
pub const GOOGLE_SUB: &str = "g-sub-1";
/// The Monday user the fake knows first (Alice, `alice@acme.test`, account 1001 "acme"); user
/// 602 is Gabe in account 2002 "globex".
pub const MONDAY_USER: &str = "501";

/// A fake Google and a fake Monday with a registered client each (redirect URIs at the Patchbay
/// they were started for) and two users each, plus the `patchbay` flags and secret variables
/// that wire a Patchbay to them.
#[derive(Debug)]
pub struct Providers {
    pub google: FakeGoogle,
    pub monday: FakeMonday,
    /// Flags: every provider URL and client id, the Monday OAuth flow, and the connect rate limit
    /// lifted (tests start many connects from one address).
    pub args: Vec<String>,
    /// `PATCHBAY_GOOGLE_CLIENT_SECRET`, `PATCHBAY_MONDAY_CLIENT_SECRET` and
    /// `PATCHBAY_MONDAY_SIGNING_SECRET`.
    pub env: HashMap<String, String>,
}

impl Providers {
    /// Starts both fakes for a Patchbay whose public URL is `base` (`http://127.0.0.1:<port>`);
    /// `monday_flow` is `v2` (OAuth 2.1, PKCE, rotating refresh tokens) or `legacy`.
    pub async fn start(base: &str, monday_flow: &str) -> Providers {
        let google = FakeGoogle::start().await;
        google.register_client("google-client", "google-secret", &[&format!("{base}/oauth/google/callback")]);
        google.add_user(GOOGLE_SUB, "alice@gmail.test");
        google.add_user("g-sub-2", "bob@gmail.test");
        let monday = FakeMonday::start().await;
        let scopes = ["me:read", "account:read", "boards:read", "boards:write", "webhooks:write", "webhooks:read"];
        monday.register_client("monday-client", "monday-secret", &[&format!("{base}/oauth/monday/callback")], &scopes);
        monday.add_account(1001, "acme", "Acme");
        monday.add_user(501, 1001, "Alice", "alice@acme.test");
        monday.add_account(2002, "globex", "Globex");
        monday.add_user(602, 2002, "Gabe", "gabe@globex.test");
        monday.set_signing_secret("monday-signing-secret");
        let monday_token = if monday_flow == "v2" { monday.token_url() } else { monday.legacy_token_url() };
        let args = [
            ("--google-client-id", "google-client".to_string()),
            ("--google-auth-url", google.auth_url().to_string()),
            ("--google-token-url", google.token_url().to_string()),
            ("--google-revoke-url", google.revoke_url().to_string()),
            ("--google-userinfo-url", google.userinfo_url().to_string()),
            ("--google-api-url", google.base_url().to_string()),
            ("--monday-client-id", "monday-client".to_string()),
            ("--monday-oauth-flow", monday_flow.to_string()),
            ("--monday-auth-url", monday.auth_url().to_string()),
            ("--monday-token-url", monday_token.to_string()),
            ("--monday-revoke-url", monday.revoke_url().to_string()),
            ("--monday-api-url", monday.api_url().to_string()),
            ("--monday-migrate-url", monday.migrate_url().to_string()),
            ("--connect-per-second", "1000".to_string()),
            ("--connect-burst", "1000".to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect();
        let env = [
            ("PATCHBAY_GOOGLE_CLIENT_SECRET", "google-secret"),
            ("PATCHBAY_MONDAY_CLIENT_SECRET", "monday-secret"),
            ("PATCHBAY_MONDAY_SIGNING_SECRET", "monday-signing-secret"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Providers { google, monday, args, env }
    }
}
