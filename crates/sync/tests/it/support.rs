//! The sync tests' world: a real store (SQLite or Postgres), both provider fakes, an OAuth client
//! and `Tokens` pointed at them, and [`SyncDeps`] over it all. Connections are seeded with tokens
//! the fakes really issued (headless consent and a real code exchange), so provider calls are
//! authenticated exactly as in production; no Patchbay HTTP server is involved.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::Utc;
use patchbay_oauth::{
    new_state, MondayFlow, OAuthClient, OutboundClient, Pkce, ProviderConfig, ProviderId, Registry, TokenSet,
};
use patchbay_store::jobs::SystemClock;
use patchbay_store::*;
use patchbay_sync::call::Session;
use patchbay_sync::{SyncDeps, SyncSettings};
use patchbay_testkit::conformance::{grant, tenant_with_user};
use patchbay_testkit::db::{postgres_store, sqlite_store, TempDirGuard};
use patchbay_testkit::fakes::{FakeGoogle, FakeMonday};
use patchbay_token_vault::{KeyRing, Tokens, Vault};
use secrecy::SecretString;
use std::sync::Arc;
use url::Url;

pub const GOOGLE_CLIENT: &str = "google-client";
pub const MONDAY_CLIENT: &str = "monday-client";
pub const MONDAY_ACCOUNT: u64 = 1001;
pub const MONDAY_USER: u64 = 501;
const REDIRECT: &str = "https://patchbay.test/oauth/callback";
const MONDAY_SCOPES: [&str; 5] = ["me:read", "account:read", "boards:read", "boards:write", "webhooks:write"];

/// Which store backend a scenario runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each scenario (an `async fn(World)`) on SQLite and on Postgres, as
/// `<module>::sqlite::<name>` and `<module>::postgres::<name>`.
#[macro_export]
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let world = $crate::support::World::start($crate::support::Backend::Sqlite).await;
                    super::$scenario(world.expect("SQLite is always available")).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let Some(world) = $crate::support::World::start($crate::support::Backend::Postgres).await else { return };
                    super::$scenario(world).await;
                }
            )*
        }
    };
}

/// One scenario's world.
pub struct World {
    pub store: Arc<dyn Store>,
    pub google: FakeGoogle,
    pub monday: FakeMonday,
    pub registry: Registry,
    pub oauth: Arc<OAuthClient>,
    pub tokens: Arc<Tokens>,
    pub deps: SyncDeps,
    _dir: Option<TempDirGuard>,
}

/// The test key ring: one fixed key (id 1), in the `PATCHBAY_VAULT_KEYS` format.
pub fn vault_ring() -> String {
    format!("1:{}", STANDARD.encode([0x5A; 32]))
}

/// A vault over a key ring such as [`vault_ring`].
pub fn vault_over(ring: &str) -> Vault {
    Vault::new(KeyRing::parse(&SecretString::from(ring.to_owned())).expect("test ring parses"))
}

/// The test vault: one fixed key (id 1).
pub fn vault() -> Vault {
    vault_over(&vault_ring())
}

/// Where the fakes listen: all an instance needs to reach them. A worker process started by a
/// test gets it through its environment (see `ratelimit`), hence (de)serialisable.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Endpoints {
    #[serde(with = "as_str")]
    pub google_api: Url,
    #[serde(with = "as_str")]
    pub google_auth: Url,
    #[serde(with = "as_str")]
    pub google_token: Url,
    #[serde(with = "as_str")]
    pub google_revoke: Url,
    #[serde(with = "as_str")]
    pub google_userinfo: Url,
    #[serde(with = "as_str")]
    pub monday_api: Url,
    #[serde(with = "as_str")]
    pub monday_auth: Url,
    #[serde(with = "as_str")]
    pub monday_token: Url,
    #[serde(with = "as_str")]
    pub monday_revoke: Url,
}

/// A URL as its string (the `url` crate is built without its serde feature here).
mod as_str {
    use serde::{Deserialize, Deserializer, Serializer};
    use url::Url;

    pub fn serialize<S: Serializer>(url: &Url, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(url.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
        let text = String::deserialize(d)?;
        Url::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Endpoints {
    pub fn of(google: &FakeGoogle, monday: &FakeMonday) -> Endpoints {
        Endpoints {
            google_api: google.base_url(),
            google_auth: google.auth_url(),
            google_token: google.token_url(),
            google_revoke: google.revoke_url(),
            google_userinfo: google.userinfo_url(),
            monday_api: monday.api_url(),
            monday_auth: monday.auth_url(),
            monday_token: monday.token_url(),
            monday_revoke: monday.revoke_url(),
        }
    }

    /// Both providers' configuration against the fakes.
    pub fn registry(&self) -> Registry {
        Registry::new()
            .with(
                ProviderConfig::google(GOOGLE_CLIENT, SecretString::from("google-secret"))
                    .with_authorize_url(self.google_auth.clone())
                    .with_token_url(self.google_token.clone())
                    .with_revoke_url(Some(self.google_revoke.clone()))
                    .with_identity_url(self.google_userinfo.clone()),
            )
            .with(
                ProviderConfig::monday(MONDAY_CLIENT, SecretString::from("monday-secret"), MondayFlow::V2)
                    // Write-back needs `boards:write` in the grant.
                    .with_write_back(true)
                    .with_authorize_url(self.monday_auth.clone())
                    .with_token_url(self.monday_token.clone())
                    .with_revoke_url(Some(self.monday_revoke.clone()))
                    .with_identity_url(self.monday_api.clone()),
            )
    }
}

/// What one Patchbay instance builds over a store to reach the fakes: the same in a test's
/// world and in a worker process a test starts.
pub struct Instance {
    pub registry: Registry,
    pub oauth: Arc<OAuthClient>,
    pub tokens: Arc<Tokens>,
    pub deps: SyncDeps,
}

impl Instance {
    pub fn over(store: Arc<dyn Store>, endpoints: &Endpoints, vault: Vault) -> Instance {
        let registry = endpoints.registry();
        let http = OutboundClient::builder().allow_registry(&registry).allow_insecure_loopback(true).build().unwrap();
        let oauth = Arc::new(OAuthClient::new(http));
        let credentials: Arc<dyn CredentialStore> = store.clone();
        let tokens = Arc::new(Tokens::new(credentials, vault, oauth.clone(), registry.clone(), "test".into()));
        let mut settings = SyncSettings::new(endpoints.google_api.clone(), endpoints.monday_api.clone());
        settings.google_client_id = GOOGLE_CLIENT.into();
        let deps = SyncDeps {
            store,
            tokens: tokens.clone(),
            settings: Arc::new(settings),
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            clock: Arc::new(SystemClock),
        };
        Instance { registry, oauth, tokens, deps }
    }
}

impl World {
    /// A fresh store and fresh fakes; `None` when the Postgres tests are skipped.
    pub async fn start(backend: Backend) -> Option<World> {
        let (store, dir): (Arc<dyn Store>, _) = match backend {
            Backend::Sqlite => {
                let (store, dir) = sqlite_store().await;
                (store, Some(dir))
            }
            Backend::Postgres => (postgres_store().await?, None),
        };
        Some(Self::over(store, dir).await)
    }

    /// A world over an existing store (a second instance shares the store, not the fakes).
    pub async fn over(store: Arc<dyn Store>, dir: Option<TempDirGuard>) -> World {
        let google = FakeGoogle::start().await;
        google.register_client(GOOGLE_CLIENT, "google-secret", &[REDIRECT]);
        let monday = FakeMonday::start().await;
        monday.register_client(MONDAY_CLIENT, "monday-secret", &[REDIRECT], &MONDAY_SCOPES);
        monday.add_account(MONDAY_ACCOUNT, "acme", "Acme");
        monday.add_user(MONDAY_USER, MONDAY_ACCOUNT, "Alice", "alice@acme.test");
        let Instance { registry, oauth, tokens, deps } =
            Instance::over(store.clone(), &Endpoints::of(&google, &monday), vault());
        World { store, google, monday, registry, oauth, tokens, deps, _dir: dir }
    }

    /// Changes the sync settings (before sessions are opened).
    pub fn tune(&mut self, change: impl FnOnce(&mut SyncSettings)) {
        let mut settings = (*self.deps.settings).clone();
        change(&mut settings);
        self.deps.settings = Arc::new(settings);
    }

    /// An active Google connection of a new tenant `org` for fake user `sub` (registered here).
    pub async fn google_connection(&self, org: &str, sub: &str) -> Connection {
        self.google.add_user(sub, &format!("{sub}@gmail.test"));
        let set = self.exchange(ProviderId::Google, |url| self.google.authorize_headless(url, sub)).await;
        self.seed(org, TokenFlow::Google, sub, sub, &set).await
    }

    /// An active monday connection (OAuth 2.1 tokens) of a new tenant `org` for the fake's
    /// account [`MONDAY_ACCOUNT`].
    pub async fn monday_connection(&self, org: &str) -> Connection {
        let user = MONDAY_USER.to_string();
        let set = self.exchange(ProviderId::Monday, |url| self.monday.authorize_headless(url, &user)).await;
        self.seed(org, TokenFlow::MondayV2, &MONDAY_ACCOUNT.to_string(), &user, &set).await
    }

    async fn exchange(&self, provider: ProviderId, consent: impl FnOnce(&Url) -> Url) -> TokenSet {
        let config = self.registry.get(provider).expect("both providers are configured");
        let redirect = Url::parse(REDIRECT).unwrap();
        let pkce = Pkce::generate();
        let back = consent(&config.authorize_url(&new_state(), Some(&pkce.challenge), &redirect));
        let code = back.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
        let code = SecretString::from(code.expect("the consent redirects with a code"));
        self.oauth.exchange_code(config, &code, Some(&pkce.verifier), &redirect).await.expect("the code exchange")
    }

    async fn seed(&self, org: &str, flow: TokenFlow, account: &str, user_id: &str, set: &TokenSet) -> Connection {
        let (_, user) = tenant_with_user(&*self.store, org).await;
        let mut new = grant(&user, account, None, Utc::now());
        new.provider = flow.provider();
        new.provider_user_id = Some(user_id.to_owned());
        new.initial_job = None;
        new.credential = self.tokens.seal(user.tenant_id, new.connection_id, flow, set);
        self.store.save_grant(new).await.expect("save the grant")
    }

    /// A held job lease, as a worker running a sync would have (fences page writes).
    pub async fn lease(&self) -> LeaseRef {
        let now = Utc::now();
        let job = NewJob::new("test.lease", serde_json::json!({}), now);
        self.store.enqueue(job, now).await.expect("enqueue");
        let claim = Claim { owner: "test", kinds: &["test.lease"], lease: chrono::Duration::minutes(10), now };
        self.store.claim(claim).await.expect("claim").expect("the job is due").lease
    }

    /// A provider session for `connection`.
    pub async fn session(&self, connection: &Connection) -> Session {
        Session::open(&self.deps, connection.clone()).await.expect("the session opens")
    }
}
