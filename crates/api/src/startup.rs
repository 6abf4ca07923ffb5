//! The `Application`: opens the store, binds its listeners (port 0 in tests), runs the HTTP
//! servers, the job worker and the fleet heartbeat, and shuts all of it down in order.

use crate::auth::Auth;
use crate::config::Settings;
use crate::health::Readiness;
use crate::http::records::cache::ReadCache;
use crate::http::{self, RateLimiters};
use crate::state::AppState;
use anyhow::Context;
use patchbay_connect::{Connect, ConnectSettings};
use patchbay_store::{
    Clock, CredentialStore, EventsDeliverPayload, Instance, InstanceId, JobPayload, JobStore, ProviderId,
    RetentionPrunePayload, Store, SyncRepairPayload, SystemClock, Worker, WorkerSettings,
};
use patchbay_sync::SyncDeps;
use patchbay_token_vault::{RefreshSweep, Tokens, Vault};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

/// A built, bound, not yet running Patchbay instance.
pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    limiters: RateLimiters,
    instance: Instance,
    worker: Worker,
    /// Whether `run_until_stopped` runs the worker loop (tests turn it off and step it).
    background_jobs: bool,
}

impl Application {
    /// Opens the store (migrating when configured), registers this instance and binds.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Like [`Application::build`], with the clock every scheduler reads (sync runs and their
    /// backstops, the repair sweep, channel renewal, webhook coalescing, the job worker's idea of
    /// "due"). Production passes the system clock; a test passes one it moves by hand, so a
    /// simulated day does not take a day.
    pub async fn build_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let store = crate::database::open(
            &settings.database,
            settings.database.run_migrations,
            crate::database::Access::Exclusive,
        )
        .await
        .context("opening the database (PATCHBAY_DATABASE_URL)")?;
        Self::assemble(settings, store, clock).await
    }

    /// Like [`Application::build`], with a store opened by the caller.
    pub async fn build_with_store(settings: Settings, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        Self::assemble(settings, store, Arc::new(SystemClock)).await
    }

    async fn assemble(settings: Settings, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        crate::metrics::handle();
        let listener = TcpListener::bind(settings.http.listen)
            .await
            .with_context(|| format!("binding PATCHBAY_LISTEN {}", settings.http.listen))?;
        let metrics_listener = match settings.http.metrics_listen {
            Some(addr) => {
                Some(TcpListener::bind(addr).await.with_context(|| format!("binding PATCHBAY_METRICS_LISTEN {addr}"))?)
            }
            None => None,
        };
        let client = crate::clients::jwks_client()?;
        let auth = Auth::new(store.clone(), &settings.auth, settings.http.rate_limits.principal, client);
        let readiness = Readiness::new(settings.http.readyz_cache, settings.http.readyz_degraded_after);
        let now = clock.now();
        let instance = Instance {
            id: InstanceId::new(),
            key_ids: settings.vault_keys.ids(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: now,
            heartbeat_at: now,
        };
        store.register_instance(&instance).await.context("registering this instance")?;
        let oauth = Arc::new(crate::clients::provider_client(&settings)?);
        let registry = settings.providers.registry.clone();
        let vault = Vault::new(settings.vault_keys.clone());
        let credentials: Arc<dyn CredentialStore> = store.clone();
        let tokens =
            Arc::new(Tokens::new(credentials, vault, oauth.clone(), registry.clone(), instance.id.to_string()));
        let connect = Arc::new(Connect::new(
            store.clone(),
            tokens.clone(),
            oauth.clone(),
            registry,
            ConnectSettings {
                public_url: settings.http.public_url.clone(),
                return_to_origins: settings.http.return_to_origins.clone(),
                app_name: settings.app_name.clone(),
            },
        ));
        let sync = SyncDeps {
            store: store.clone(),
            tokens: tokens.clone(),
            settings: Arc::new(settings.sync.clone()),
            http: crate::clients::sync_client(&settings)?,
            clock: clock.clone(),
        };
        // One repair sweep for the fleet: its dedup key merges this into a sweep already queued.
        store.enqueue(SyncRepairPayload {}.job(now), now).await.context("queueing the sync repair sweep")?;
        let jobs: Arc<dyn JobStore> = store.clone();
        let worker_settings = WorkerSettings {
            concurrency: settings.worker_concurrency,
            lease: settings.worker_lease,
            poll_interval: settings.worker_poll,
            ..WorkerSettings::default()
        };
        let limiters = RateLimiters::new(&settings);
        let read_cache = Arc::new(ReadCache::new(settings.read_cache_bytes, &settings.vault_keys.ids()));
        let (inbox, monday_hooks) = inbox(&settings, &store, tokens.vault().clone(), &clock);
        let events_out = events_out(&settings, &store, tokens.vault().clone())?;
        // One delivery loop for the fleet: its dedup key merges this into one already queued.
        store.enqueue(EventsDeliverPayload {}.job(now), now).await.context("queueing the events-out loop")?;
        // One retention sweep for the fleet, likewise; its first run comes after a full interval
        // so a restart loop does not turn into a delete loop.
        let mut retention = RetentionPrunePayload {}.job(now);
        retention.run_at = now + chrono::Duration::from_std(settings.retention.every).unwrap_or_default();
        store.enqueue(retention, now).await.context("queueing the retention sweep")?;
        let state = AppState {
            read_cache,
            store,
            auth: Arc::new(auth),
            settings: Arc::new(settings),
            readiness: Arc::new(readiness),
            tokens,
            oauth,
            connect,
            sync,
            inbox,
            events_out,
            monday_hooks,
            clock: clock.clone(),
        };
        let worker = Worker::new(jobs, instance.id.to_string(), worker_settings).with_clock(clock);
        let worker = crate::jobs::register(worker, &state);
        Ok(Self { listener, metrics_listener, state, limiters, instance, worker, background_jobs: true })
    }

    /// The bound HTTP port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The bound metrics port, if the metrics listener is on.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.port())
    }

    /// Shared state (tests reach the store through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The job worker, with every handler registered (tests drive it with `try_execute_next`).
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Serves without running the worker loop: jobs run only when the caller steps the worker,
    /// so tests observe each job's effect without waiting.
    pub fn without_background_jobs(mut self) -> Self {
        self.background_jobs = false;
        self
    }

    /// Replaces the job worker (to register handlers before running).
    pub fn with_worker(mut self, configure: impl FnOnce(Worker) -> Worker) -> Self {
        self.worker = configure(self.worker);
        self
    }

    /// Serves until `shutdown` completes, then: `/readyz` turns 503, waits the drain delay,
    /// stops accepting, lets in-flight requests and jobs finish (bounded), gives leases back,
    /// deregisters the instance and closes the store.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self { listener, metrics_listener, state, limiters, instance, worker, background_jobs } = self;
        let settings = state.settings.clone();
        let stop_serving = CancellationToken::new();
        let stop_background = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();

        let app = http::router(state.clone(), &limiters).into_make_service_with_connect_info::<SocketAddr>();
        let token = stop_serving.clone();
        tasks.spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()).await;
        });
        if let Some(listener) = metrics_listener {
            let app = crate::metrics::router(state.clone()).into_make_service();
            let token = stop_serving.clone();
            tasks.spawn(async move {
                let _ = axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()).await;
            });
        }
        if background_jobs {
            tasks.spawn(worker.clone().run(stop_background.clone()));
        }
        tasks.spawn(housekeeping(state.clone(), limiters, instance.id, stop_background.clone()));
        tracing::info!(instance = %instance.id, backend = state.store.backend(), "patchbay is serving");

        shutdown.await;
        tracing::info!(
            drain_seconds = settings.http.drain_delay.as_secs(),
            "shutting down: readiness now reports unhealthy"
        );
        state.readiness.start_draining();
        tokio::time::sleep(settings.http.drain_delay).await;
        stop_serving.cancel();
        stop_background.cancel();
        let drained =
            tokio::time::timeout(settings.http.shutdown_timeout, async { while tasks.join_next().await.is_some() {} })
                .await;
        if drained.is_err() {
            tracing::warn!("shutdown timeout reached with work still running; aborting it");
            tasks.abort_all();
        }
        let now = chrono::Utc::now();
        match state.store.release_owner(worker.owner(), now).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "gave job leases back"),
            Err(e) => tracing::warn!(error = %e, "could not give job leases back; they will lapse"),
        }
        if let Err(e) = state.store.deregister_instance(instance.id).await {
            tracing::warn!(error = %e, "could not deregister this instance");
        }
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The webhook inbox and its batcher: one committer on SQLite (its writer is one connection),
/// a few on Postgres so one batch's flush overlaps the next one's gathering.
fn inbox(
    settings: &Settings,
    store: &Arc<dyn Store>,
    vault: Vault,
    clock: &Arc<dyn Clock>,
) -> (patchbay_webhooks::Inbox, patchbay_webhooks::MondayHooks) {
    let committers = if store.backend() == "sqlite" { 1 } else { 4 };
    let batch = patchbay_webhooks::BatchSettings {
        max_items: settings.webhooks.batch_max_items,
        max_wait: settings.webhooks.batch_max_wait,
        committers,
    };
    let batcher = patchbay_webhooks::Batcher::spawn(store.clone(), batch);
    let monday = patchbay_webhooks::MondaySecrets {
        public_url: settings.http.public_url.to_string(),
        signing_secret: settings.providers.monday_signing_secret.clone(),
        client_secret: settings.providers.registry.get(ProviderId::Monday).map(|c| c.client_secret.clone()),
    };
    let monday =
        patchbay_webhooks::MondayHooks::new(store.clone(), vault.clone(), batcher.clone(), clock.clone(), monday);
    let sources =
        patchbay_webhooks::Sources::with_key_cache(store.clone(), vault.clone(), settings.webhooks.source_cache_ttl);
    (patchbay_webhooks::Inbox::with_sources(sources, vault, batcher, clock.clone()), monday)
}

/// Events out: endpoints, dispatch and the signed sender, resolving names with the system
/// resolver behind the private-address guard.
pub(crate) fn events_out(
    settings: &Settings,
    store: &Arc<dyn Store>,
    vault: Vault,
) -> anyhow::Result<patchbay_webhooks::EventsOut> {
    let out = patchbay_webhooks::OutSettings {
        allow_private: settings.allow_private_endpoints,
        timeout: settings.events_out.timeout,
        disable_after: settings.events_out.disable_after,
        batch: settings.events_out.batch,
        concurrency: settings.events_out.concurrency,
    };
    let resolver = Arc::new(patchbay_webhooks::out::resolve::SystemResolver);
    patchbay_webhooks::EventsOut::new(store.clone(), vault, out, resolver).map_err(anyhow::Error::msg)
}

/// Periodic chores: the instance heartbeat, pruning idle rate-limiter keys, and the refresh
/// sweep (tokens that expire before the next tick plus the refresh margin are renewed now).
async fn housekeeping(state: AppState, limiters: RateLimiters, instance: InstanceId, stop: CancellationToken) {
    let horizon = chrono::Duration::minutes(6) + chrono::Duration::from_std(HEARTBEAT_EVERY).unwrap_or_default();
    let credentials: Arc<dyn CredentialStore> = state.store.clone();
    let sweep = RefreshSweep::new(credentials, state.tokens.clone(), horizon);
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = state.store.heartbeat_instance(instance, chrono::Utc::now()).await {
            tracing::warn!(error = %e, "instance heartbeat failed");
        }
        limiters.retain_recent();
        state.auth.retain_recent();
        sweep.step(chrono::Utc::now()).await;
    }
}

/// Completes on SIGTERM or ctrl-c. The SIGTERM handler is installed when this is called, not
/// when the future is first polled: `/readyz` can answer before the serve loop awaits the
/// future, and a SIGTERM in that gap must still be a graceful stop, not the default kill.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let terminate = async move {
            match terminate {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate => {},
        }
    }
}
