//! What the Sync benchmarks share: the in-process benchmark (`benches/sync.rs`) and the fixture
//! that feeds a real `patchbay serve` (`examples/sync_bench_fixture.rs`). A fake Google with one
//! user whose primary calendar holds N events, and a Google connection seeded the way a real
//! connect leaves it: headless consent at the fake, a real code exchange, the token set sealed
//! with the vault and saved with the grant (no initial job: the benchmark starts the run).

use chrono::{Duration, FixedOffset, Utc};
use patchbay_oauth::{new_state, OAuthClient, OutboundClient, Pkce, ProviderConfig, ProviderId, Registry};
use patchbay_store::{AppUser, Connection, CredentialStore, SaveGrant, Store, TokenFlow};
use patchbay_sync::{SyncDeps, SyncSettings};
use patchbay_testkit::conformance::grant;
use patchbay_testkit::fakes::google::{EventSpec, EventTime};
use patchbay_testkit::fakes::FakeGoogle;
use patchbay_token_vault::{Tokens, Vault};
use secrecy::SecretString;
use std::sync::Arc;
use url::Url;

pub const CLIENT_ID: &str = "bench-google-client";
pub const CLIENT_SECRET: &str = "bench-google-secret";
/// The redirect the fake's consent answers to (no server listens there: the code is read from it).
pub const REDIRECT: &str = "https://patchbay.bench/oauth/google/callback";
/// The fake Google user whose primary calendar holds the events.
pub const SUB: &str = "bench-google-user";
/// The user's email, which is also the primary calendar's id.
pub const EMAIL: &str = "bench-user@gmail.test";

/// One benchmark event: a timed, 45-minute event with a summary, a description and a location of
/// everyday length, spread over the 360 days around now (inside the default 365 days a full sync
/// reaches back, and forward).
pub fn event(i: usize, count: usize) -> EventSpec {
    let span = Duration::days(360).num_seconds();
    let offset = span * i64::try_from(i).unwrap_or(0) / i64::try_from(count.max(1)).unwrap_or(1);
    let utc = FixedOffset::east_opt(0).expect("UTC is a valid offset");
    let start = (Utc::now() - Duration::days(180) + Duration::seconds(offset)).with_timezone(&utc);
    let end = start + Duration::minutes(45);
    let mut spec = EventSpec::new(
        &format!("Weekly planning #{i}: roadmap and staffing"),
        EventTime::DateTime { at: start, time_zone: None },
        EventTime::DateTime { at: end, time_zone: None },
    )
    .described(
        "Agenda: review last week's numbers, go through the open items on the board, agree on \
         owners for the next steps. Dial-in details are in the invitation; notes go to the shared \
         folder afterwards.",
    );
    spec.location = Some(format!("Meeting room {} (3rd floor)", i % 12 + 1));
    spec
}

/// Starts the fake Google with the benchmark's client and user, and `events` events in the
/// user's primary calendar (inserted under one lock).
pub async fn start_google(events: usize) -> FakeGoogle {
    let google = FakeGoogle::start().await;
    google.register_client(CLIENT_ID, CLIENT_SECRET, &[REDIRECT]);
    google.add_user(SUB, EMAIL);
    google.insert_events(SUB, "primary", (0..events).map(|i| event(i, events)));
    google
}

/// The OAuth registry with Google pointed at the fake.
pub fn registry(google: &FakeGoogle) -> Registry {
    Registry::new().with(
        ProviderConfig::google(CLIENT_ID, SecretString::from(CLIENT_SECRET))
            .with_authorize_url(google.auth_url())
            .with_token_url(google.token_url())
            .with_revoke_url(Some(google.revoke_url()))
            .with_identity_url(google.userinfo_url()),
    )
}

/// The OAuth client and `Tokens` a server over `store` and `vault` would have.
pub fn tokens(store: Arc<dyn Store>, vault: Vault, registry: &Registry) -> (Arc<OAuthClient>, Arc<Tokens>) {
    let http = OutboundClient::builder()
        .allow_registry(registry)
        .allow_insecure_loopback(true)
        .build()
        .expect("the outbound client builds");
    let oauth = Arc::new(OAuthClient::new(http));
    let credentials: Arc<dyn CredentialStore> = store;
    let tokens = Arc::new(Tokens::new(credentials, vault, oauth.clone(), registry.clone(), "bench".into()));
    (oauth, tokens)
}

/// Sync dependencies against the fake, with Google pages of `page_size` events.
pub fn sync_deps(store: Arc<dyn Store>, tokens: Arc<Tokens>, google: &FakeGoogle, page_size: u32) -> SyncDeps {
    let monday = Url::parse("http://127.0.0.1:9/v2").expect("a valid URL");
    let mut settings = SyncSettings::new(google.base_url(), monday);
    settings.google_client_id = CLIENT_ID.into();
    settings.google_page_size = page_size;
    SyncDeps {
        store,
        tokens,
        settings: Arc::new(settings),
        http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client"),
        clock: Arc::new(patchbay_store::jobs::SystemClock),
    }
}

/// An active Google connection of `user` for the fake's [`SUB`], with tokens the fake issued.
pub async fn connect(
    store: &dyn Store,
    oauth: &OAuthClient,
    tokens: &Tokens,
    registry: &Registry,
    google: &FakeGoogle,
    user: &AppUser,
) -> anyhow::Result<Connection> {
    let config = registry.get(ProviderId::Google).ok_or_else(|| anyhow::anyhow!("Google is not configured"))?;
    let redirect = Url::parse(REDIRECT)?;
    let pkce = Pkce::generate();
    let back = google.authorize_headless(&config.authorize_url(&new_state(), Some(&pkce.challenge), &redirect), SUB);
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| SecretString::from(v.into_owned()))
        .ok_or_else(|| anyhow::anyhow!("the fake's consent did not redirect with a code"))?;
    let set = oauth.exchange_code(config, &code, Some(&pkce.verifier), &redirect).await?;
    let now = Utc::now();
    let new: SaveGrant = {
        let mut new = grant(user, SUB, None, now);
        new.provider = ProviderId::Google;
        new.provider_user_id = Some(SUB.into());
        new.account_name = Some("Bench User".into());
        new.account_email = Some(EMAIL.into());
        new.scopes = set.scopes.clone();
        new.initial_job = None;
        new.credential = tokens.seal(user.tenant_id, new.connection_id, TokenFlow::Google, &set);
        new
    };
    Ok(store.save_grant(new).await?)
}

/// VmRSS and VmHWM of this process, in kB.
pub fn own_memory_kb() -> (Option<u64>, Option<u64>) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}
