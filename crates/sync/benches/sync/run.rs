//! One store's run: a fresh store, the fake loaded with N events, a seeded connection; on
//! Postgres the `COPY` of the same rows; then the timed sync (run requested, its job claimed and
//! started as the worker does) and the count of stored events.

use crate::common::{self, EMAIL, SUB};
use crate::copy::{self, CopyRow, FreshDatabase};
use crate::report::{StoreResult, SyncMeasured};
use crate::{say, StoreKind};
use anyhow::{anyhow, ensure, Context};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use patchbay_store_postgres::{PgOptions, PgStore};
use patchbay_store_sqlite::{SqliteOptions, SqliteStore};
use patchbay_sync::call::Session;
use patchbay_sync::engine::{Engine, Scope};
use patchbay_sync::{google, SyncDeps};
use patchbay_testkit::conformance::tenant_with_user;
use patchbay_token_vault::{KeyRing, Vault};
use rand::RngCore as _;
use secrecy::SecretString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// `maxResults` asked of Google: its maximum, so the page count does not dominate.
pub const PAGE_SIZE: u32 = 2500;
/// The server used when PATCHBAY_BENCH_DATABASE_URL is not set.
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Runs everything for one store; a failure is recorded in the result, never propagated.
pub async fn run(kind: StoreKind, events: usize) -> StoreResult {
    let mut result = StoreResult::new(kind, events);
    let mut database = None;
    if let Err(e) = attempt(kind, events, &mut result, &mut database).await {
        result.error = Some(format!("{e:#}"));
    }
    if let Some(database) = database {
        if let Err(e) = database.drop_database().await {
            say(&format!("could not drop the benchmark database: {e:#}"));
        }
    }
    result
}

async fn attempt(
    kind: StoreKind,
    events: usize,
    result: &mut StoreResult,
    database: &mut Option<FreshDatabase>,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let store: Arc<dyn Store> = match kind {
        StoreKind::Sqlite => {
            let url = format!("sqlite://{}", dir.path().join("patchbay.db").display());
            let store = SqliteStore::open(&url, SqliteOptions::default()).await.context("opening SQLite")?;
            store.migrate().await.context("migrating SQLite")?;
            Arc::new(store)
        }
        StoreKind::Postgres => {
            let url = std::env::var("PATCHBAY_BENCH_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into());
            let fresh = database.insert(FreshDatabase::create(&url).await?);
            let store = PgStore::connect(&fresh.url, PgOptions::default()).await.context("connecting to Postgres")?;
            store.migrate().await.context("migrating Postgres")?;
            Arc::new(store)
        }
    };

    say(&format!("loading {} events into the fake Google", crate::report::thousands(events)));
    let started = Instant::now();
    let fake = common::start_google(events).await;
    result.fake_load = Some(started.elapsed());
    let registry = common::registry(&fake);
    let (oauth, tokens) = common::tokens(store.clone(), random_vault()?, &registry);
    let (_, user) = tenant_with_user(&*store, "bench-org").await;
    let connection = common::connect(&*store, &oauth, &tokens, &registry, &fake, &user).await?;
    let deps = common::sync_deps(store.clone(), tokens, &fake, PAGE_SIZE);

    say(&format!("full sync (pages of {PAGE_SIZE})"));
    // Spawned so that a stub still panicking with `todo!()` is reported, not fatal.
    let sync_deps = deps.clone();
    let sync = tokio::spawn(sync_once(deps, connection.clone(), events)).await;
    let synced: anyhow::Result<SyncMeasured> = match sync {
        Ok(measured) => measured,
        Err(join) if join.is_panic() => {
            let panic = join.into_panic();
            let message =
                panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            let message = message.unwrap_or_else(|| "(no message)".into());
            if message.contains("not yet implemented") {
                Err(anyhow!(
                    "the sync engine is not available: the sync path still reaches a stub ({message}); the \
                     store backends and the Google engine arrive with the sqlite, postgres and google branches"
                ))
            } else {
                Err(anyhow!("the sync panicked: {message}"))
            }
        }
        Err(join) => Err(anyhow!("the sync task did not finish: {join}")),
    };

    // After the sync, so that the rows and the COPY buffer (hundreds of MB the allocator keeps)
    // do not inflate the memory measured during the sync.
    let rows = copy_rows(&sync_deps, &connection, &fake.events(SUB, "primary"));
    result.sealed_bytes = Some(rows.iter().map(|r| r.sealed.len()).sum::<usize>() / rows.len().max(1));
    if let Some(database) = database.as_ref() {
        say("Postgres COPY of the same rows into a fresh table shaped like google_event");
        result.copy = Some(copy::measure(&database.url, &rows).await?);
    }
    result.sync = Some(synced?);
    drop(store);
    Ok(())
}

/// A vault with one random key, as a fresh deployment has.
fn random_vault() -> anyhow::Result<Vault> {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    let ring = format!("1:{}", base64::engine::general_purpose::STANDARD.encode(key));
    Ok(Vault::new(KeyRing::parse(&SecretString::from(ring)).map_err(|e| anyhow!("key ring: {e}"))?))
}

/// The rows a sync of these events writes, as the engine's record builder makes them: derived
/// ids, the calendar as parent, the keyed hash and the sealed JSON, the clear times.
fn copy_rows(deps: &SyncDeps, connection: &Connection, events: &[serde_json::Value]) -> Vec<CopyRow> {
    let sealer = deps.sealer();
    let parent = RecordId::derive(connection.id, RecordKind::GoogleCalendar, EMAIL);
    let time = |v: &serde_json::Value| {
        v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
    };
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let provider_id = event["id"].as_str().unwrap_or_default().to_owned();
            let id = RecordId::derive_event(connection.id, EMAIL, &provider_id);
            let sealed = sealer.seal(connection.tenant_id, connection.id, RecordKind::GoogleEvent, id, event);
            CopyRow {
                id: id.0,
                tenant_id: connection.tenant_id.0,
                connection_id: connection.id.0,
                provider_id,
                parent_id: parent.0,
                hash: sealed.hash,
                sealed: sealed.sealed,
                key_id: sealed.key_id,
                starts_at: time(&event["start"]["dateTime"]),
                ends_at: time(&event["end"]["dateTime"]),
                status: event["status"].as_str().map(str::to_owned),
                provider_updated_at: time(&event["updated"]),
                change_seq: i as i64 + 1,
            }
        })
        .collect()
}

/// Requests a run, claims and starts its job as the worker does, and times `google::run`.
async fn sync_once(deps: SyncDeps, connection: Connection, events: usize) -> anyhow::Result<SyncMeasured> {
    let store = deps.store.clone();
    let now = Utc::now();
    let request = SyncRequest {
        tenant_id: connection.tenant_id,
        connection_id: connection.id,
        resource: SyncResource::GoogleCalendar,
        trigger: SyncTrigger::Manual,
        run_at: now,
        priority: SyncRequest::INCREMENTAL_PRIORITY,
    };
    let run = store.request_sync(request, now).await.context("requesting the run")?.run().clone();
    let kinds = [JobKind::SyncRun.as_str()];
    let claim = Claim { owner: "bench", kinds: &kinds, lease: chrono::Duration::minutes(30), now };
    let lease = store.claim(claim).await.context("claiming")?.context("the run's job is not due")?.lease;
    store.start_sync_run(&lease, run.id, Utc::now()).await.context("starting the run")?;
    let session = Session::open(&deps, connection.clone()).await.context("opening the provider session")?;
    let sealer = deps.sealer();
    let engine = Engine::new(&session, &sealer, lease, run.id, CancellationToken::new(), Scope::Everything);

    let rss_before_kb = common::own_memory_kb().0;
    let sampler = Sampler::start();
    let started = Instant::now();
    let outcome = google::run(&engine).await;
    let wall = started.elapsed();
    let rss_peak_kb = sampler.peak();
    drop(sampler);
    outcome.map_err(|e| anyhow!("google::run failed: {e}"))?;
    let hwm_kb = common::own_memory_kb().1;

    let finish = RunFinish {
        status: SyncRunStatus::Succeeded,
        api_calls: session.api_calls(),
        upserted: engine.upserted(),
        deleted: engine.deleted(),
        error_code: None,
        error_message: None,
    };
    store.finish_sync_run(&lease, run.id, finish, Utc::now()).await.context("finishing the run")?;
    let stored = live_events(&*store, &connection).await?;
    ensure!(stored == events, "the store holds {stored} live events after the sync, not {events}");
    Ok(SyncMeasured {
        wall,
        api_calls: session.api_calls(),
        upserted: engine.upserted(),
        stored,
        rss_before_kb,
        rss_peak_kb,
        hwm_kb,
    })
}

/// Live Google events of the connection, counted through the change feed.
async fn live_events(store: &dyn Store, connection: &Connection) -> anyhow::Result<usize> {
    let scope = TenantScope::new(connection.tenant_id);
    let (mut after, mut live) = (0, 0);
    loop {
        let page = store.change_feed(scope, connection.id, &[RecordKind::GoogleEvent], after, 5_000).await?;
        let Some(last) = page.records.last() else { return Ok(live) };
        after = last.change_seq;
        live += page.records.iter().filter(|r| r.deleted_at.is_none()).count();
    }
}

/// Samples this process's VmRSS every 5 ms on its own thread until dropped.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kb) = common::own_memory_kb().0 {
                    p.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Sampler { stop, peak, thread: Some(thread) }
    }

    fn peak(&self) -> Option<u64> {
        Some(self.peak.load(Ordering::Relaxed)).filter(|&kb| kb > 0)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
