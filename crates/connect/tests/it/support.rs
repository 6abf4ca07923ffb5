//! A `Connect`, a `DisconnectJob` and a job `Worker` over a real throwaway store and the provider
//! fakes, with no HTTP server of Patchbay's own. Tests drive the worker one step at a time and
//! move its clock by hand.

use chrono::{DateTime, Utc};
use patchbay_connect::{
    CallbackQuery, Connect, ConnectSettings, CreatedSession, DisconnectJob, Finished, ProviderRedirect, SessionRequest,
    StateCookie,
};
use patchbay_oauth::{MondayFlow, OAuthClient, OutboundClient, ProviderConfig, ProviderId, Registry};
use patchbay_store::{
    AppUser, Clock, ConnectMode, ConnectionId, CredentialStore, DisconnectPayload, EndUser, JobKind, JobPayload,
    JobStatus, JobStore, NewAuditEvent, Outcome, Page, Store, StoreError, TenantScope, UserId, Worker, WorkerSettings,
};
use patchbay_testkit::db::TempDirGuard;
use patchbay_testkit::fakes::{FakeGoogle, FakeMonday};
use patchbay_token_vault::{KeyRing, Tokens, Vault};
use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, Mutex};
use url::Url;

/// The app's origin (the only allowlisted return target).
pub const APP: &str = "https://app.example";
/// Patchbay's public URL in these tests (plain http: cookies are not `__Host-`).
pub const PUBLIC_URL: &str = "http://patchbay.test";
/// The Google account the tests consent as, and a second one.
pub const GOOGLE_SUB: &str = "g-sub-1";
pub const GOOGLE_SUB_2: &str = "g-sub-2";
/// The monday.com user the tests consent as.
pub const MONDAY_USER: &str = "501";
/// Revocation attempts before the disconnect job gives a failing provider up.
pub const REVOKE_ATTEMPTS: i32 = 3;

/// Which store a scenario runs on.
#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs one scenario on SQLite and on Postgres.
#[macro_export]
macro_rules! both_stores {
    ($body:ident) => {
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body($crate::support::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body($crate::support::Db::Postgres).await
            }
        }
    };
}

/// The worker's clock: the wall clock plus an offset the test moves forward (so jobs enqueued
/// at the real `now` are always due, and retries become due when the test says so).
#[derive(Debug, Default)]
pub struct TestClock {
    offset: Mutex<chrono::Duration>,
}

impl TestClock {
    pub fn advance(&self, by: chrono::Duration) {
        *self.offset.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset.lock().unwrap()
    }
}

/// Everything a scenario needs.
pub struct World {
    pub store: Arc<dyn Store>,
    pub connect: Connect,
    pub tokens: Arc<Tokens>,
    pub worker: Worker,
    pub clock: Arc<TestClock>,
    pub google: FakeGoogle,
    pub monday: FakeMonday,
    _dir: Option<TempDirGuard>,
}

/// A fresh store of `db`; `None` (after printing "skipped") when Postgres tests are skipped.
async fn open(db: Db) -> Option<(Arc<dyn Store>, Option<TempDirGuard>)> {
    match db {
        Db::Sqlite => {
            let (store, dir) = patchbay_testkit::db::sqlite_store().await;
            Some((store, Some(dir)))
        }
        Db::Postgres => {
            let store = patchbay_testkit::db::postgres_store().await?;
            Some((store, None))
        }
    }
}

pub fn redirect_uri(provider: &str) -> String {
    format!("{PUBLIC_URL}/oauth/{provider}/callback")
}

/// Google and monday.com (OAuth 2.1 flow) pointed at the fakes.
pub fn registry(google: &FakeGoogle, monday: &FakeMonday) -> Registry {
    let google_config = ProviderConfig::google("google-client", SecretString::from("google-secret"))
        .with_authorize_url(google.auth_url())
        .with_token_url(google.token_url())
        .with_revoke_url(Some(google.revoke_url()))
        .with_identity_url(google.userinfo_url());
    let monday_config = ProviderConfig::monday("monday-client", SecretString::from("monday-secret"), MondayFlow::V2)
        .with_authorize_url(monday.auth_url())
        .with_token_url(monday.token_url())
        .with_revoke_url(Some(monday.revoke_url()))
        .with_identity_url(monday.api_url())
        .with_migrate_url(Some(monday.migrate_url()));
    Registry::new().with(google_config).with(monday_config)
}

impl World {
    /// A world on a fresh store of `db`, or `None` when that store is skipped.
    pub async fn new(db: Db) -> Option<World> {
        let (store, dir) = open(db).await?;
        let google = FakeGoogle::start().await;
        google.register_client("google-client", "google-secret", &[&redirect_uri("google")]);
        google.add_user(GOOGLE_SUB, "alice@gmail.test");
        google.add_user(GOOGLE_SUB_2, "bob@gmail.test");
        let monday = FakeMonday::start().await;
        let scopes = ["me:read", "account:read", "boards:read", "boards:write", "webhooks:write", "webhooks:read"];
        monday.register_client("monday-client", "monday-secret", &[&redirect_uri("monday")], &scopes);
        monday.add_account(1001, "acme", "Acme");
        monday.add_user(501, 1001, "Alice", "alice@acme.test");

        let registry = registry(&google, &monday);
        let http = OutboundClient::builder()
            .allow_registry(&registry)
            .allow_insecure_loopback(true)
            .build()
            .expect("build the provider HTTP client");
        let oauth = Arc::new(OAuthClient::new(http));
        let (ring, _) = KeyRing::generate();
        let credentials: Arc<dyn CredentialStore> = store.clone();
        let tokens =
            Arc::new(Tokens::new(credentials, Vault::new(ring), oauth.clone(), registry.clone(), "instance-1".into()));
        let connect = Connect::new(
            store.clone(),
            tokens.clone(),
            oauth.clone(),
            registry.clone(),
            ConnectSettings {
                public_url: Url::parse(PUBLIC_URL).unwrap(),
                return_to_origins: vec![APP.to_string()],
                app_name: "Acme Scheduler".into(),
            },
        );
        let disconnect = DisconnectJob {
            store: store.clone(),
            tokens: tokens.clone(),
            oauth,
            registry,
            revoke_attempts: REVOKE_ATTEMPTS,
        };
        let clock = Arc::new(TestClock::default());
        let jobs: Arc<dyn JobStore> = store.clone();
        let worker = Worker::new(jobs, "worker-1", WorkerSettings::default())
            .with_clock(clock.clone())
            .handle(JobKind::ConnectionDisconnect.as_str(), Arc::new(disconnect));
        Some(World { store, connect, tokens, worker, clock, google, monday, _dir: dir })
    }

    /// A tenant (by external key) with one user (by subject).
    pub async fn user(&self, tenant: &str, subject: &str) -> (TenantScope, AppUser) {
        let tenant = self.store.upsert_tenant(tenant).await.expect("upsert tenant");
        let scope = TenantScope::new(tenant.id);
        let user = self.store.upsert_user(scope, "https://issuer.test", subject).await.expect("upsert user");
        (scope, user)
    }

    /// Creates a session and consumes it: what the browser holds on its way to the provider.
    pub async fn start(&self, request: SessionRequest) -> (CreatedSession, ProviderRedirect) {
        let created = self.connect.create_session(request).await.expect("session created");
        let redirect = self.connect.begin(&created.token, Utc::now()).await.expect("the session begins");
        (created, redirect)
    }

    /// The provider's redirect back after `who` approves (or the switches say otherwise).
    pub fn consent(&self, provider: ProviderId, redirect: &ProviderRedirect, who: &str) -> Url {
        match provider {
            ProviderId::Google => self.google.authorize_headless(&redirect.location, who),
            ProviderId::Monday => self.monday.authorize_headless(&redirect.location, who),
        }
    }

    /// The callback at `provider`'s redirect URI with the query of `back` and this cookie.
    pub async fn callback(
        &self,
        provider: &str,
        back: &Url,
        cookie: Option<&StateCookie>,
    ) -> Result<Finished, patchbay_connect::ConnectError> {
        let query = CallbackQuery::parse(back.query().unwrap_or_default());
        let cookie = cookie.cloned();
        let cookies = move |name: &str| match &cookie {
            Some(c) if c.name == name => vec![c.value.clone()],
            _ => Vec::new(),
        };
        self.connect.callback(provider, query, cookies, Some("203.0.113.7".into())).await
    }

    /// A whole connect of `request`, consenting as `who`; returns how it finished.
    pub async fn connect_as(&self, request: SessionRequest, who: &str) -> Finished {
        let provider = request.provider;
        let (_, redirect) = self.start(request).await;
        let back = self.consent(provider, &redirect, who);
        self.callback(provider.as_str(), &back, Some(&redirect.cookie)).await.expect("a valid state")
    }

    /// A connected account: connects and returns the connection's id.
    pub async fn connected(&self, scope: TenantScope, user: UserId, provider: ProviderId, who: &str) -> ConnectionId {
        let finished = self.connect_as(request(scope, user, provider), who).await;
        finished.outcome.unwrap_or_else(|e| panic!("connect failed: {}", e.code()))
    }

    /// What the app does on `DELETE /v1/connections/{id}`.
    pub async fn begin_disconnect(&self, scope: TenantScope, id: ConnectionId) -> Result<(), StoreError> {
        let now = Utc::now();
        let job = DisconnectPayload { tenant_id: scope.tenant_id(), connection_id: id }.job(now);
        let audit = NewAuditEvent {
            tenant_id: Some(scope.tenant_id()),
            actor: "user:test".into(),
            action: "connection.disconnect".into(),
            target: Some(format!("connection:{id}")),
            request_id: None,
            ip: None,
        };
        self.store.begin_disconnect(scope, id, job, audit).await
    }

    /// One worker step.
    pub async fn step(&self) -> Outcome {
        self.worker.try_execute_next().await.expect("the worker reaches the store")
    }

    /// Worker steps until nothing is due (at the clock's current time); returns what ran.
    pub async fn drain(&self) -> Vec<Outcome> {
        let mut ran = Vec::new();
        loop {
            match self.step().await {
                Outcome::Empty => return ran,
                done => ran.push(done),
            }
            assert!(ran.len() < 50, "the queue keeps producing work: {ran:?}");
        }
    }

    /// The tenant's audit actions, oldest first.
    pub async fn audit_actions(&self, scope: TenantScope) -> Vec<String> {
        let page = self.store.list_audit_events(scope, Page::new(Some(500), None)).await.expect("audit log");
        page.items.into_iter().map(|e| e.action).collect()
    }

    /// The tenant's outbox event types, oldest first.
    pub async fn events(&self, scope: TenantScope) -> Vec<(String, Option<ConnectionId>)> {
        let events = self.store.list_events(scope, 0, 500).await.expect("outbox");
        events.into_iter().map(|e| (e.event_type.as_str().to_string(), e.connection_id)).collect()
    }

    /// How many jobs of `kind` are in `status`.
    pub async fn jobs(&self, kind: JobKind, status: JobStatus) -> i64 {
        let counts = self.store.job_counts().await.expect("job counts");
        counts.iter().filter(|c| c.kind == kind.as_str() && c.status == status).map(|c| c.count).sum()
    }

    /// How many jobs of `kind` exist in any status.
    pub async fn all_jobs(&self, kind: JobKind) -> i64 {
        let counts = self.store.job_counts().await.expect("job counts");
        counts.iter().filter(|c| c.kind == kind.as_str()).map(|c| c.count).sum()
    }

    /// The refresh token stored for a connection (read the way the disconnect job reads it).
    pub async fn stored_refresh_token(&self, scope: TenantScope, id: ConnectionId) -> String {
        let credential = self.store.credential_for_disconnect(scope, id).await.expect("a stored credential");
        let set = self.tokens.open(&credential).expect("the credential opens");
        set.refresh_token.expect("a refresh token").expose_secret().to_string()
    }
}

/// A redirect-mode session request for `user`, returning to `{APP}/done`.
pub fn request(scope: TenantScope, user: UserId, provider: ProviderId) -> SessionRequest {
    SessionRequest {
        scope,
        user_id: user,
        provider,
        mode: ConnectMode::Redirect,
        return_to: Some(format!("{APP}/done")),
        opener_origin: None,
        reconnect: None,
        end_user: EndUser::default(),
    }
}

/// The query pairs of a URL, as a map.
pub fn query(url: &Url) -> std::collections::HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}
