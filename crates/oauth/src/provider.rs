//! The provider registry: which providers are enabled, their endpoints, issuer and scopes.

use std::{str::FromStr, time::Duration};

use secrecy::SecretString;
use url::Url;

/// Google's required scopes (architecture §4.1): identity plus read-only calendars.
pub const GOOGLE_REQUIRED_SCOPES: [&str; 3] = ["openid", "email", "https://www.googleapis.com/auth/calendar.readonly"];
/// monday.com's required scopes (architecture §4.1); `boards:write` is added by write-back.
pub const MONDAY_REQUIRED_SCOPES: [&str; 4] = ["me:read", "account:read", "boards:read", "webhooks:write"];
/// The scope monday.com write-back needs on top of [`MONDAY_REQUIRED_SCOPES`].
pub const MONDAY_WRITE_SCOPE: &str = "boards:write";
/// The monday.com API version pinned by default (`API-Version` header; current since 2026-10-26).
pub const MONDAY_DEFAULT_API_VERSION: &str = "2026-10";
/// How long before expiry a token is refreshed by default.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

pub use patchbay_store::{ProviderId, UnknownProvider};

/// Which of monday.com's two token flows the app version uses (providers.md A1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MondayFlow {
    /// Form-encoded `/oauth2/token`; no PKCE, no expiry, no refresh token, no revocation.
    Legacy,
    /// OAuth 2.1: JSON `/oauth_ms/oauth/token`, PKCE S256, JWT access tokens, rotating refresh tokens.
    V2,
}

impl FromStr for MondayFlow {
    type Err = UnknownFlow;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "legacy" => Ok(Self::Legacy),
            "v2" => Ok(Self::V2),
            _ => Err(UnknownFlow),
        }
    }
}

/// A monday.com flow name that is neither `legacy` nor `v2`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown monday.com OAuth flow: expected `legacy` or `v2`")]
pub struct UnknownFlow;

fn url(s: &str) -> Url {
    // Only called with the literals below, which are valid absolute URLs.
    Url::parse(s).expect("built-in provider URL is valid")
}

/// One enabled provider: credentials, pinned endpoints, issuer and scopes.
///
/// `Debug` prints the client secret as `[REDACTED]` (it is a [`SecretString`]).
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Which provider this is.
    pub id: ProviderId,
    /// The OAuth client id (public).
    pub client_id: String,
    /// The OAuth client secret; sent only in token and revocation request bodies.
    pub client_secret: SecretString,
    /// The authorization endpoint the browser is sent to.
    pub authorize_url: Url,
    /// The token endpoint (code exchange and refresh).
    pub token_url: Url,
    /// The revocation endpoint; `None` where the provider has none (monday.com legacy).
    pub revoke_url: Option<Url>,
    /// The identity endpoint: Google userinfo, or the monday.com GraphQL API (`/v2`).
    pub identity_url: Url,
    /// monday.com's legacy-token migration endpoint (`/oauth_ms/oauth/migrate`); `None` for Google.
    pub migrate_url: Option<Url>,
    /// The issuer an authorization response's `iss` must equal, when present.
    pub issuer: String,
    /// Whether this provider always puts `iss` in its authorization responses (RFC 9207), so a
    /// response without it is refused by [`ProviderConfig::check_iss`].
    ///
    /// - Google: `true`. Google's callbacks carry `iss=https://accounts.google.com` in practice
    ///   (security.md B3); its discovery document reportedly does not advertise
    ///   `authorization_response_iss_parameter_supported`, so this is a policy choice — turn it off
    ///   with [`ProviderConfig::with_always_sends_iss`] if Google is ever seen to omit it.
    /// - monday.com: `false`. Its documented callback carries `code`, `state` (and `status`) only,
    ///   and its RFC 8414 metadata does not advertise `authorization_response_iss_parameter_supported`
    ///   (providers.md A1.2, A1.4): requiring `iss` would refuse every real monday.com callback. A
    ///   present `iss` is still checked.
    pub always_sends_iss: bool,
    /// The scopes requested; always a superset of `required_scopes`.
    pub scopes: Vec<String>,
    /// The scopes a grant must contain to be usable (fixed per provider).
    pub required_scopes: Vec<String>,
    /// monday.com only: which token flow the app uses.
    pub monday_flow: Option<MondayFlow>,
    /// monday.com only: the pinned `API-Version` header value (empty for Google).
    pub monday_api_version: String,
    /// Refresh a token when it expires within this margin.
    pub refresh_margin: Duration,
}

impl ProviderConfig {
    /// Google with its real endpoints and required scopes.
    pub fn google(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        let required: Vec<String> = GOOGLE_REQUIRED_SCOPES.iter().map(|s| s.to_string()).collect();
        Self {
            id: ProviderId::Google,
            client_id: client_id.into(),
            client_secret,
            authorize_url: url("https://accounts.google.com/o/oauth2/v2/auth"),
            token_url: url("https://oauth2.googleapis.com/token"),
            revoke_url: Some(url("https://oauth2.googleapis.com/revoke")),
            identity_url: url("https://openidconnect.googleapis.com/v1/userinfo"),
            migrate_url: None,
            issuer: "https://accounts.google.com".to_owned(),
            always_sends_iss: true,
            scopes: required.clone(),
            required_scopes: required,
            monday_flow: None,
            monday_api_version: String::new(),
            refresh_margin: DEFAULT_REFRESH_MARGIN,
        }
    }

    /// monday.com with its real endpoints for `flow` and its required scopes (write-back off).
    pub fn monday(client_id: impl Into<String>, client_secret: SecretString, flow: MondayFlow) -> Self {
        let required: Vec<String> = MONDAY_REQUIRED_SCOPES.iter().map(|s| s.to_string()).collect();
        let (token_url, revoke_url) = match flow {
            MondayFlow::Legacy => (url("https://auth.monday.com/oauth2/token"), None),
            MondayFlow::V2 => (
                url("https://auth.monday.com/oauth_ms/oauth/token"),
                Some(url("https://auth.monday.com/oauth_ms/oauth/revoke")),
            ),
        };
        Self {
            id: ProviderId::Monday,
            client_id: client_id.into(),
            client_secret,
            authorize_url: url("https://auth.monday.com/oauth2/authorize"),
            token_url,
            revoke_url,
            identity_url: url("https://api.monday.com/v2"),
            migrate_url: Some(url("https://auth.monday.com/oauth_ms/oauth/migrate")),
            issuer: "https://auth.monday.com".to_owned(),
            always_sends_iss: false,
            scopes: required.clone(),
            required_scopes: required,
            monday_flow: Some(flow),
            monday_api_version: MONDAY_DEFAULT_API_VERSION.to_owned(),
            refresh_margin: DEFAULT_REFRESH_MARGIN,
        }
    }

    /// Whether the authorization request carries PKCE S256 (Google, monday.com v2).
    pub fn uses_pkce(&self) -> bool {
        self.monday_flow != Some(MondayFlow::Legacy)
    }

    /// Whether this is monday.com's legacy flow.
    pub(crate) fn is_monday_legacy(&self) -> bool {
        self.monday_flow == Some(MondayFlow::Legacy)
    }

    /// Overrides the authorization endpoint.
    pub fn with_authorize_url(mut self, url: Url) -> Self {
        self.authorize_url = url;
        self
    }

    /// Overrides the token endpoint.
    pub fn with_token_url(mut self, url: Url) -> Self {
        self.token_url = url;
        self
    }

    /// Overrides the revocation endpoint (`None`: revocation not supported).
    pub fn with_revoke_url(mut self, url: Option<Url>) -> Self {
        self.revoke_url = url;
        self
    }

    /// Overrides the identity endpoint (Google userinfo, monday.com `/v2`).
    pub fn with_identity_url(mut self, url: Url) -> Self {
        self.identity_url = url;
        self
    }

    /// Overrides monday.com's legacy-token migration endpoint.
    pub fn with_migrate_url(mut self, url: Option<Url>) -> Self {
        self.migrate_url = url;
        self
    }

    /// Overrides the expected `iss` of authorization responses.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// Sets whether authorization responses without `iss` are refused (see
    /// [`ProviderConfig::always_sends_iss`]).
    pub fn with_always_sends_iss(mut self, always: bool) -> Self {
        self.always_sends_iss = always;
        self
    }

    /// Overrides the monday.com `API-Version` header value.
    pub fn with_monday_api_version(mut self, version: impl Into<String>) -> Self {
        self.monday_api_version = version.into();
        self
    }

    /// Overrides the refresh margin.
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// Requests these scopes in addition to the required ones (which are always kept).
    pub fn with_scopes<I, S>(mut self, extra: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut scopes = self.required_scopes.clone();
        for scope in extra {
            push_unique(&mut scopes, scope.into());
        }
        self.scopes = scopes;
        self
    }

    /// monday.com: requires (and requests) `boards:write` when `enabled`; no effect for Google.
    pub fn with_write_back(mut self, enabled: bool) -> Self {
        if self.id != ProviderId::Monday {
            return self;
        }
        let write = MONDAY_WRITE_SCOPE.to_owned();
        if enabled {
            push_unique(&mut self.required_scopes, write.clone());
            push_unique(&mut self.scopes, write);
        } else {
            self.required_scopes.retain(|s| *s != write);
            self.scopes.retain(|s| *s != write);
        }
        self
    }

    /// Every endpoint URL of this provider: the outbound allowlist is built from these.
    pub fn endpoint_urls(&self) -> Vec<&Url> {
        let mut urls = vec![&self.token_url, &self.identity_url];
        urls.extend(self.revoke_url.iter());
        urls.extend(self.migrate_url.iter());
        urls
    }
}

fn push_unique(scopes: &mut Vec<String>, scope: String) {
    if !scope.is_empty() && !scopes.contains(&scope) {
        scopes.push(scope);
    }
}
