//! Runs that cover only dirty parts, and a rough throughput figure for a large full sync.

use super::*;
use crate::support::Backend;
use patchbay_testkit::fakes::google::EventSpec;

on_both_stores!(a_dirty_only_run_syncs_dirty_and_unfinished_parts_only, a_cancelled_run_stops_before_its_next_page);

async fn a_dirty_only_run_syncs_dirty_and_unfinished_parts_only(world: World) {
    let conn = world.google_connection("acme", USER).await;
    world.google.add_calendar(USER, "side", "Side");
    world.google.insert_event(USER, "primary", EventSpec::timed("One", &day_at(1, 9, 0), &day_at(1, 10, 0)));
    sync_ok(&world, &conn).await;

    // Nothing dirty and the list polled just now: no provider call at all.
    world.google.insert_event(USER, "primary", EventSpec::timed("Two", &day_at(2, 9, 0), &day_at(2, 10, 0)));
    let calls = world.google.api_calls();
    let (result, _) = sync_scoped(&world, &conn, Scope::DirtyOnly).await;
    result.expect("the run succeeds");
    assert_eq!(world.google.api_calls(), calls);

    // A change signal marks the primary calendar dirty: only that part is read, and it is clean after.
    let part = format!("events:{}", primary());
    world.store.mark_dirty(conn.id, &part, Utc::now()).await.unwrap();
    let (result, _) = sync_scoped(&world, &conn, Scope::DirtyOnly).await;
    result.expect("the run succeeds");
    assert_eq!(world.google.api_calls(), calls + 1);
    assert_matches(&world, &conn, &primary(), "after the dirty-only run").await;
    assert!(!world.store.sync_state(conn.id, &part).await.unwrap().unwrap().dirty);
}

async fn a_cancelled_run_stops_before_its_next_page(world: World) {
    let conn = world.google_connection("acme", USER).await;
    let lease = world.lease().await;
    let session = world.session(&conn).await;
    let sealer = world.deps.sealer();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let engine = Engine::new(&session, &sealer, lease, SyncRunId::new(), cancel, Scope::Everything);
    let result = google::run(&engine).await;
    assert!(matches!(result, Err(SyncError::Store(StoreError::LeaseLost))), "{result:?}");
    assert_eq!(world.google.api_calls(), 0, "no request after the cancel");
}

/// `cargo nextest run --release -p patchbay-sync --test it google::scope::full_sync_throughput
/// --run-ignored only --no-capture`: events per second of one full sync of 20,000 events on
/// SQLite (fake, HTTP, sealing and page writes included).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, not a check"]
async fn full_sync_throughput() {
    const EVENTS: i64 = 20_000;
    let mut world = World::start(Backend::Sqlite).await.expect("SQLite is always available");
    world.tune(|s| s.google_page_size = 2500);
    let conn = world.google_connection("acme", USER).await;
    for n in 0..EVENTS {
        let start = day_at(-(n % 300), (n % 20) as u32, 0);
        world.google.insert_event(USER, "primary", EventSpec::timed(&format!("Event {n}"), &start, &start));
    }
    let started = std::time::Instant::now();
    let counts = sync_ok(&world, &conn).await;
    let took = started.elapsed();
    assert_eq!(counts.upserted, EVENTS + 1);
    eprintln!("full sync of {EVENTS} events: {took:?}, {:.0} events/s", EVENTS as f64 / took.as_secs_f64());
}
