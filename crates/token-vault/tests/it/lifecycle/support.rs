//! The lifecycle tests' world: a real store (SQLite or Postgres), the provider fakes, an OAuth
//! client pointed at them, and `Tokens` instances over the store. Credentials are seeded
//! directly through the store with tokens the fakes really issued (a headless consent and a
//! real code exchange), so no Patchbay HTTP server is involved.
//!
//! The store is wrapped in [`Observed`], which delegates every call and records refresh-lease
//! attempts (so a test can wait until another instance was refused the lease) and can run one
//! injected action right after a lease is given back (to land a concurrent write exactly there).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use patchbay_oauth::{
    new_state, MondayFlow, OAuthClient, OutboundClient, Pkce, ProviderConfig, ProviderId, Registry, TokenSet,
};
use patchbay_store::*;
use patchbay_testkit::conformance::{grant, tenant_with_user};
use patchbay_testkit::db::{postgres_store, sqlite_store, TempDirGuard};
use patchbay_testkit::fakes::{FakeGoogle, FakeMonday};
use patchbay_token_vault::Tokens;
use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
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

/// One scenario's world.
pub struct World {
    pub store: Arc<Observed>,
    pub google: FakeGoogle,
    pub monday: FakeMonday,
    pub registry: Registry,
    pub oauth: Arc<OAuthClient>,
    _dir: Option<TempDirGuard>,
}

/// A seeded connection.
#[derive(Clone, Copy, Debug)]
pub struct Seeded {
    pub scope: TenantScope,
    pub id: ConnectionId,
    pub version: i64,
}

impl World {
    /// A fresh store and fresh fakes; `None` when the Postgres tests are skipped (testkit prints
    /// "skipped").
    pub async fn start(backend: Backend) -> Option<World> {
        let (store, dir): (Arc<dyn Store>, _) = match backend {
            Backend::Sqlite => {
                let (store, dir) = sqlite_store().await;
                (store, Some(dir))
            }
            Backend::Postgres => (postgres_store().await?, None),
        };
        let google = FakeGoogle::start().await;
        google.register_client(GOOGLE_CLIENT, "google-secret", &[REDIRECT]);
        let monday = FakeMonday::start().await;
        monday.register_client(MONDAY_CLIENT, "monday-secret", &[REDIRECT], &MONDAY_SCOPES);
        monday.add_account(MONDAY_ACCOUNT, "acme", "Acme");
        monday.add_user(MONDAY_USER, MONDAY_ACCOUNT, "Alice", "alice@acme.test");
        let registry = Registry::new()
            .with(
                ProviderConfig::google(GOOGLE_CLIENT, SecretString::from("google-secret"))
                    .with_authorize_url(google.auth_url())
                    .with_token_url(google.token_url())
                    .with_revoke_url(Some(google.revoke_url()))
                    .with_identity_url(google.userinfo_url()),
            )
            .with(
                ProviderConfig::monday(MONDAY_CLIENT, SecretString::from("monday-secret"), MondayFlow::V2)
                    .with_authorize_url(monday.auth_url())
                    .with_token_url(monday.token_url())
                    .with_revoke_url(Some(monday.revoke_url()))
                    .with_identity_url(monday.api_url())
                    .with_migrate_url(Some(monday.migrate_url())),
            );
        let http = OutboundClient::builder().allow_registry(&registry).allow_insecure_loopback(true).build().unwrap();
        let oauth = Arc::new(OAuthClient::new(http));
        Some(World { store: Arc::new(Observed::new(store)), google, monday, registry, oauth, _dir: dir })
    }

    /// A `Tokens` instance named `owner` over the shared store, with a ring of these key ids
    /// (first = primary).
    pub fn tokens(&self, ring: &[u32], owner: &str) -> Arc<Tokens> {
        let store: Arc<dyn CredentialStore> = self.store.clone();
        Arc::new(Tokens::new(
            store,
            crate::support::vault(ring),
            self.oauth.clone(),
            self.registry.clone(),
            owner.to_owned(),
        ))
    }

    fn config(&self, provider: ProviderId) -> &ProviderConfig {
        self.registry.get(provider).expect("both providers are configured")
    }

    /// Real tokens from a consent by Google user `sub` and a code exchange; the access token
    /// expires in `expires_in` seconds at the fake and in the set.
    pub async fn google_grant(&self, sub: &str, expires_in: u64) -> TokenSet {
        self.google.add_user(sub, &format!("{sub}@gmail.test"));
        self.google_consent(sub, expires_in).await
    }

    /// Like [`World::google_grant`] for a user already registered (a new consent: a new grant).
    pub async fn google_consent(&self, sub: &str, expires_in: u64) -> TokenSet {
        self.google.set_expires_in(expires_in);
        let set = self.exchange(ProviderId::Google, |url| self.google.authorize_headless(url, sub)).await;
        self.google.set_expires_in(3599);
        assert!(set.refresh_token.is_some(), "a first Google consent issues a refresh token");
        set
    }

    /// Real monday.com v2 tokens (a rotating refresh token); the access JWT expires in
    /// `lifetime` seconds.
    pub async fn monday_grant(&self, lifetime: u64) -> TokenSet {
        self.monday.set_access_token_lifetime(lifetime);
        let set = self
            .exchange(ProviderId::Monday, |url| self.monday.authorize_headless(url, &MONDAY_USER.to_string()))
            .await;
        self.monday.set_access_token_lifetime(3600);
        assert!(set.refresh_token.is_some(), "monday.com v2 issues a refresh token");
        assert!(set.expires_at.is_some(), "the access JWT carries exp");
        set
    }

    /// A real monday.com legacy token (never expires, no refresh token).
    pub fn monday_legacy_grant(&self) -> TokenSet {
        let token = self.monday.issue_legacy_token(MONDAY_CLIENT, MONDAY_USER, &MONDAY_SCOPES);
        TokenSet {
            access_token: SecretString::from(token),
            refresh_token: None,
            expires_at: None,
            scopes: MONDAY_SCOPES.iter().map(|s| s.to_string()).collect(),
        }
    }

    async fn exchange(&self, provider: ProviderId, consent: impl FnOnce(&Url) -> Url) -> TokenSet {
        let config = self.config(provider);
        let redirect = Url::parse(REDIRECT).unwrap();
        let pkce = Pkce::generate();
        let back = consent(&config.authorize_url(&new_state(), Some(&pkce.challenge), &redirect));
        let code = back.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
        let code = SecretString::from(code.expect("the consent redirects with a code"));
        self.oauth.exchange_code(config, &code, Some(&pkce.verifier), &redirect).await.expect("the code exchange")
    }

    /// Saves an active connection of a new tenant `org` holding `set`, sealed by `tokens`.
    pub async fn seed(&self, tokens: &Tokens, org: &str, flow: TokenFlow, set: &TokenSet) -> Seeded {
        let (scope, user) = tenant_with_user(&*self.store.inner, org).await;
        let mut new = grant(&user, &format!("{org}-account"), None, Utc::now());
        new.provider = flow.provider();
        new.credential = tokens.seal(user.tenant_id, new.connection_id, flow, set);
        let connection = self.store.save_grant(new).await.expect("save the grant");
        let version = self.store.get_credential(scope, connection.id).await.expect("the seeded credential").version;
        Seeded { scope, id: connection.id, version }
    }

    /// A reconnect: saves `set` onto the connection `seed(.., org, ..)` created.
    pub async fn reconnect(&self, tokens: &Tokens, org: &str, at: Seeded, flow: TokenFlow, set: &TokenSet) {
        let (_, user) = tenant_with_user(&*self.store.inner, org).await;
        let mut again = grant(&user, &format!("{org}-account"), Some(at.id), Utc::now());
        again.provider = flow.provider();
        again.credential = tokens.seal(user.tenant_id, at.id, flow, set);
        self.store.save_grant(again).await.expect("save the reconnect");
    }

    /// The stored credential and its token set, opened by `tokens`.
    pub async fn stored(&self, tokens: &Tokens, at: Seeded) -> (Credential, TokenSet) {
        let credential = self.store.get_credential(at.scope, at.id).await.expect("the credential is stored");
        let set = tokens.open(&credential).expect("the stored credential opens");
        (credential, set)
    }

    /// The connection in any state (for its status after a dead grant).
    pub async fn connection(&self, at: Seeded) -> Connection {
        self.store.connection_for_job(at.scope, at.id).await.expect("the connection exists")
    }

    /// The event types of the tenant's outbox, in order.
    pub async fn events(&self, scope: TenantScope) -> Vec<String> {
        self.store
            .inner
            .list_events(scope, 0, 500)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type.as_str().to_string())
            .collect()
    }
}

/// A secret's text (for comparisons only; never put it in an assertion message).
pub fn text(secret: &SecretString) -> &str {
    secret.expose_secret()
}

/// The refresh token of a set (for comparisons only).
pub fn refresh_text(set: &TokenSet) -> &str {
    set.refresh_token.as_ref().map(ExposeSecret::expose_secret).expect("the set holds a refresh token")
}

/// Whether the set expires later than `at`.
pub fn expires_after(set: &TokenSet, at: DateTime<Utc>) -> bool {
    set.expires_at.is_some_and(|e| e > at)
}

type Action = BoxFuture<'static, ()>;

/// A store that delegates everything and observes refresh leases.
pub struct Observed {
    pub inner: Arc<dyn Store>,
    /// Every `try_lease_refresh`: (owner, granted), in order.
    leases: watch::Sender<Vec<(String, bool)>>,
    /// Runs once, right after the next `release_refresh_lease`.
    after_release: Mutex<Option<Action>>,
}

impl Observed {
    fn new(inner: Arc<dyn Store>) -> Self {
        Observed { inner, leases: watch::Sender::new(Vec::new()), after_release: Mutex::new(None) }
    }

    /// Resolves once `owner` has been refused the refresh lease at least once.
    pub async fn lease_refused_to(&self, owner: &str) {
        let mut leases = self.leases.subscribe();
        leases.wait_for(|seen| seen.iter().any(|(o, granted)| o == owner && !granted)).await.ok();
    }

    /// Every lease attempt so far.
    pub fn lease_attempts(&self) -> Vec<(String, bool)> {
        self.leases.borrow().clone()
    }

    /// Runs `action` right after the next lease release (before the caller sees it return).
    pub fn after_next_release(&self, action: Action) {
        *self.after_release.lock().unwrap() = Some(action);
    }
}

#[async_trait]
impl CredentialStore for Observed {
    async fn find_connection_by_account(
        &self,
        scope: TenantScope,
        user_id: UserId,
        provider: ProviderId,
        provider_account_id: &str,
    ) -> StoreResult<Option<Connection>> {
        self.inner.find_connection_by_account(scope, user_id, provider, provider_account_id).await
    }
    async fn save_grant(&self, grant: SaveGrant) -> StoreResult<Connection> {
        self.inner.save_grant(grant).await
    }
    async fn get_credential(&self, scope: TenantScope, connection_id: ConnectionId) -> StoreResult<Credential> {
        self.inner.get_credential(scope, connection_id).await
    }
    async fn try_lease_refresh(
        &self,
        connection_id: ConnectionId,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let granted = self.inner.try_lease_refresh(connection_id, owner, until, now).await?;
        self.leases.send_modify(|seen| seen.push((owner.to_owned(), granted)));
        Ok(granted)
    }
    async fn store_refreshed(
        &self,
        connection_id: ConnectionId,
        expected_version: i64,
        credential: NewCredential,
        now: DateTime<Utc>,
    ) -> StoreResult<Credential> {
        self.inner.store_refreshed(connection_id, expected_version, credential, now).await
    }
    async fn release_refresh_lease(&self, connection_id: ConnectionId, owner: &str) -> StoreResult<()> {
        self.inner.release_refresh_lease(connection_id, owner).await?;
        let action = self.after_release.lock().unwrap().take();
        if let Some(action) = action {
            action.await;
        }
        Ok(())
    }
    async fn set_connection_status(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        change: StatusChange,
    ) -> StoreResult<Connection> {
        self.inner.set_connection_status(scope, id, change).await
    }
    async fn credentials_expiring(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(TenantScope, ConnectionId)>> {
        self.inner.credentials_expiring(before, limit).await
    }
    async fn credential_for_disconnect(&self, scope: TenantScope, id: ConnectionId) -> StoreResult<Credential> {
        self.inner.credential_for_disconnect(scope, id).await
    }
    async fn grant_sharers(&self, connection: &Connection) -> StoreResult<u64> {
        self.inner.grant_sharers(connection).await
    }
    async fn begin_disconnect(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        job: NewJob,
        audit: NewAuditEvent,
    ) -> StoreResult<()> {
        self.inner.begin_disconnect(scope, id, job, audit).await
    }
    async fn connection_for_job(&self, scope: TenantScope, id: ConnectionId) -> StoreResult<Connection> {
        self.inner.connection_for_job(scope, id).await
    }
    async fn finish_disconnect(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner.finish_disconnect(scope, id, audit, now).await
    }
    async fn credential_key_usage(&self) -> StoreResult<Vec<KeyUsage>> {
        self.inner.credential_key_usage().await
    }
    async fn credentials_to_rewrap(&self, primary_key_id: u32, limit: u32) -> StoreResult<Vec<Credential>> {
        self.inner.credentials_to_rewrap(primary_key_id, limit).await
    }
    async fn credentials_with_flow(&self, flow: TokenFlow, limit: u32) -> StoreResult<Vec<Credential>> {
        self.inner.credentials_with_flow(flow, limit).await
    }
    async fn rewrap_credential(
        &self,
        connection_id: ConnectionId,
        expected_version: i64,
        key_id: u32,
        ciphertext: Vec<u8>,
    ) -> StoreResult<bool> {
        self.inner.rewrap_credential(connection_id, expected_version, key_id, ciphertext).await
    }
}
