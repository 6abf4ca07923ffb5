//! Crash: the real `patchbay` binary is killed (SIGKILL) at random points of a large Google
//! calendar sync on Postgres. After each restart the sync continues; at the end the local copy
//! equals the fake, no provider object has two rows, and no part's checkpoint ever went
//! backwards. The seed of the kill points is printed, so a failure can be replayed with
//! `PATCHBAY_CRASH_SEED=<seed>`.

use chrono::{Duration as Span, Utc};
use patchbay_oauth::{OAuthClient, OutboundClient, ProviderConfig, Registry, TokenSet};
use patchbay_store::*;
use patchbay_store_postgres::{PgOptions, PgStore};
use patchbay_testkit::app::{JWT_SECRET, VAULT_KEYS};
use patchbay_testkit::conformance::{grant, tenant_with_user};
use patchbay_testkit::fakes::google::EventSpec;
use patchbay_testkit::fakes::FakeGoogle;
use patchbay_tests::binary::{command as patchbay, Served};
use patchbay_token_vault::{KeyRing, Tokens, Vault};
use rand::{Rng, SeedableRng};
use secrecy::SecretString;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

const USER: &str = "crash-user";
const EVENTS: usize = 6_000;
const KILLS: usize = 10;

/// Seeds an active Google connection holding a token the fake issued, and queues its initial
/// sync, exactly as a finished connect would have.
async fn seed(store: &Arc<PgStore>, google: &FakeGoogle) -> Connection {
    let access = google.issue_access_token(USER, &["https://www.googleapis.com/auth/calendar.readonly"]);
    let set = TokenSet {
        access_token: SecretString::from(access),
        refresh_token: None,
        expires_at: Some(Utc::now() + Span::hours(1)),
        scopes: vec!["https://www.googleapis.com/auth/calendar.readonly".into()],
    };
    let vault = Vault::new(KeyRing::parse(&SecretString::from(VAULT_KEYS)).unwrap());
    let http = OutboundClient::builder().allow_insecure_loopback(true).build().unwrap();
    let registry = Registry::new().with(ProviderConfig::google("crash-client", SecretString::from("crash-secret")));
    let credentials: Arc<dyn CredentialStore> = store.clone();
    let tokens = Tokens::new(credentials, vault, Arc::new(OAuthClient::new(http)), registry, "seed".into());
    let (_, user) = tenant_with_user(&**store, "org:crash").await;
    let mut new = grant(&user, USER, None, Utc::now());
    new.provider = ProviderId::Google;
    new.provider_user_id = Some(USER.into());
    new.initial_job = None;
    new.credential = tokens.seal(user.tenant_id, new.connection_id, TokenFlow::Google, &set);
    let connection = store.save_grant(new).await.unwrap();
    let request = SyncRequest {
        tenant_id: connection.tenant_id,
        connection_id: connection.id,
        resource: SyncResource::GoogleCalendar,
        trigger: SyncTrigger::Initial,
        run_at: Utc::now(),
        priority: SyncRequest::BACKFILL_PRIORITY,
    };
    store.request_sync(request, Utc::now()).await.unwrap();
    connection
}

fn server(dir: &std::path::Path, url: &str, google: &FakeGoogle) -> Served {
    let mut command = patchbay(dir);
    let api = google.base_url();
    command
        .env("PATCHBAY_DATABASE_URL", url)
        .env("PATCHBAY_VAULT_KEYS", VAULT_KEYS)
        .env("PATCHBAY_AUTH_JWT_SECRET", JWT_SECRET)
        .env("PATCHBAY_GOOGLE_CLIENT_ID", "crash-client")
        .env("PATCHBAY_GOOGLE_CLIENT_SECRET", "crash-secret")
        .env("PATCHBAY_GOOGLE_AUTH_URL", google.auth_url().as_str())
        .env("PATCHBAY_GOOGLE_TOKEN_URL", google.token_url().as_str())
        .env("PATCHBAY_GOOGLE_REVOKE_URL", google.revoke_url().as_str())
        .env("PATCHBAY_GOOGLE_USERINFO_URL", google.userinfo_url().as_str())
        .env("PATCHBAY_GOOGLE_API_URL", api.as_str())
        .env("PATCHBAY_GOOGLE_PAGE_SIZE", "100")
        // A killed worker's lease lapses quickly, so the next start takes the run over.
        .env("PATCHBAY_WORKER_LEASE_SECONDS", "2")
        .env("PATCHBAY_WORKER_POLL_MS", "50");
    Served::start(command)
}

/// Every part's checkpoint version, polled while the servers run: each must only grow.
async fn watch_checkpoints(store: Arc<PgStore>, connection: ConnectionId, stop: tokio_util::sync::CancellationToken) {
    let mut seen: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    while !stop.is_cancelled() {
        for state in store.sync_states(connection).await.unwrap() {
            let page = state.checkpoint.get("pages").and_then(|p| p.as_i64()).unwrap_or(0);
            let now = (state.version, page);
            if let Some(before) = seen.insert(state.part.clone(), now) {
                assert!(now.0 >= before.0, "part {} went from version {} back to {}", state.part, before.0, now.0);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// In the normal suite: about 30-45 s (`.config/nextest.toml` gives it every test thread, so
// the kill windows hold on a 2-core runner). Each kill spends the attempt of the claim it
// interrupts, so sync runs get 20 attempts; a run whose job still dies is finished `abandoned` by
// the repair sweep, which then queues a new one (conformance: `a_run_whose_job_died_…`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sync_killed_at_random_points_completes_exactly_once_after_restarts() {
    let Some(url) = patchbay_testkit::db::postgres_url().await else { return };
    let seed_value: u64 =
        std::env::var("PATCHBAY_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("crash seed: {seed_value} (replay with PATCHBAY_CRASH_SEED={seed_value})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed_value);

    let google = FakeGoogle::start().await;
    google.add_user(USER, "crash@gmail.test");
    let base = Utc::now() - Span::days(30);
    for n in 0..EVENTS {
        let start = base + Span::minutes(n as i64 * 7);
        let end = start + Span::minutes(30);
        let spec = EventSpec::timed(&format!("event {n}"), &start.to_rfc3339(), &end.to_rfc3339());
        google.insert_event(USER, "primary", spec);
    }
    // About 9 s of paging in all (60 pages), so ten kills land inside the sync.
    google.set_calendar_latency(Duration::from_millis(150));

    let store = Arc::new(PgStore::connect(&url, PgOptions::default()).await.unwrap());
    store.migrate().await.unwrap();
    let connection = seed(&store, &google).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn(watch_checkpoints(store.clone(), connection.id, stop.clone()));

    let dir = tempfile::tempdir().unwrap();
    let scope = TenantScope::new(connection.tenant_id);
    let mut kills = 0;
    while kills < KILLS {
        let mut served = server(dir.path(), &url, &google);
        served.wait_ready().await;
        // The first start takes the run at once; later ones wait for the killed worker's lease
        // (2 s) to lapse first. Kill somewhere in the next stretch of work.
        let wait = if kills == 0 { rng.gen_range(200..1_200) } else { rng.gen_range(2_100..3_000) };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        served.kill();
        kills += 1;
        let runs = store.list_sync_runs(scope, connection.id, Page::first()).await.unwrap();
        if runs.items.iter().any(|r| r.status == SyncRunStatus::Succeeded) {
            break;
        }
    }
    assert!(
        kills >= KILLS,
        "the sync outlived {KILLS} kills (make it larger if this fails: it finished after {kills})"
    );
    // The latency only spreads the kills over the sync; the rest may run at full speed.
    google.set_calendar_latency(Duration::ZERO);

    let mut served = server(dir.path(), &url, &google);
    served.wait_ready().await;
    let started = std::time::Instant::now();
    loop {
        let runs = store.list_sync_runs(scope, connection.id, Page::first()).await.unwrap();
        if runs.items.iter().any(|r| r.status == SyncRunStatus::Succeeded) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the sync finished after the restarts");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served.terminate().success());
    stop.cancel();
    watcher.await.expect("no checkpoint went backwards");

    let calendar = store
        .list_records(scope, connection.id, RecordKind::GoogleCalendar, &RecordFilter::default(), Page::first())
        .await
        .unwrap();
    let primary = calendar.items.first().expect("the calendar is synced").id;
    let mut local = Vec::new();
    let mut page = Page::new(Some(500), None);
    loop {
        let filter = RecordFilter { parent_id: Some(primary), ..RecordFilter::default() };
        let got = store.list_records(scope, connection.id, RecordKind::GoogleEvent, &filter, page).await.unwrap();
        local.extend(got.items.iter().map(|r| r.provider_id.clone()));
        match got.next_cursor {
            Some(after) => page = Page::new(Some(500), Some(after)),
            None => break,
        }
    }
    let distinct: HashSet<_> = local.iter().cloned().collect();
    assert_eq!(distinct.len(), local.len(), "no provider event has two rows");
    let remote: HashSet<String> =
        google.events(USER, "primary").iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(distinct, remote, "the local copy equals the fake");
}
