//! Postgres-only checks of the sync store: a run's whole path through one page, and (ignored,
//! run by hand) the page-write throughput against a COPY of the same rows.

use chrono::{DateTime, Utc};
use patchbay_store::*;
use patchbay_store_postgres::{PgOptions, PgStore};
use patchbay_testkit::conformance::{claim_any, new_connection, secs, t0, tenant_with_user};
use std::sync::Arc;

fn event(connection: ConnectionId, calendar: RecordId, n: usize, hash: u8) -> RecordWrite {
    let provider_id = format!("event-{n:06}");
    let start = t0() + chrono::Duration::minutes(n as i64);
    RecordWrite {
        kind: RecordKind::GoogleEvent,
        id: RecordId::derive(connection, RecordKind::GoogleEvent, &provider_id),
        provider_id,
        parent_id: Some(calendar),
        change: RecordChange::Upsert(RecordFields {
            hash: vec![hash; 32],
            sealed: vec![7; 600],
            key_id: 1,
            starts_at: Some(start),
            ends_at: Some(start + chrono::Duration::minutes(30)),
            series_id: None,
            status: Some("confirmed".into()),
            provider_updated_at: Some(start),
        }),
    }
}

fn state(part: &str, expected_version: i64, generation: i64) -> StateWrite {
    StateWrite {
        part: part.into(),
        expected_version,
        checkpoint: serde_json::json!({ "page": expected_version }),
        generation,
        success_at: None,
        full_at: None,
    }
}

/// A Google connection with a claimed sync run job.
async fn leased_run(store: &Arc<PgStore>) -> (TenantScope, ConnectionId, SyncRun, LeaseRef) {
    let (scope, user) = tenant_with_user(store.as_ref(), "org:pg-sync").await;
    let mut new = new_connection(&user, "pg-sync");
    new.provider = ProviderId::Google;
    let connection = store.create_connection(new).await.unwrap().id;
    let request = SyncRequest {
        tenant_id: scope.tenant_id(),
        connection_id: connection,
        resource: SyncResource::GoogleCalendar,
        trigger: SyncTrigger::Initial,
        run_at: t0(),
        priority: SyncRequest::BACKFILL_PRIORITY,
    };
    let created = store.request_sync(request.clone(), t0()).await.unwrap();
    assert!(matches!(created, SyncRequested::Created(_)));
    let again = store.request_sync(request, t0()).await.unwrap();
    assert_eq!(again, SyncRequested::AlreadyQueued(created.run().clone()));
    let leased = store.claim(claim_any("w", secs(t0(), 1))).await.unwrap().expect("the run's job");
    let run = store.start_sync_run(&leased.lease, created.run().id, t0()).await.unwrap();
    (scope, connection, run, leased.lease)
}

#[tokio::test]
async fn a_run_writes_pages_sweeps_and_finishes_with_its_event() {
    let Some(url) = patchbay_testkit::db::postgres_url().await else { return };
    let store = Arc::new(PgStore::connect(&url, PgOptions::default()).await.unwrap());
    store.migrate().await.unwrap();
    let (scope, connection, run, lease) = leased_run(&store).await;
    let calendar = RecordId::derive(connection, RecordKind::GoogleCalendar, "primary");
    let now = t0();
    let page = |records, sweeps, state| PageWrite {
        tenant_id: scope.tenant_id(),
        connection_id: connection,
        lease,
        generation: 1,
        records,
        sweeps,
        state,
        now,
    };
    let first = (0..4).map(|n| event(connection, calendar, n, 1)).collect();
    let outcome = store.apply_page(page(first, vec![], state("events:primary", 0, 1))).await.unwrap();
    assert_eq!(outcome, PageOutcome { upserted: 4, unchanged: 0, deleted: 0, state_version: 1 });
    let stale = store.apply_page(page(vec![], vec![], state("events:primary", 0, 1))).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");

    let mut second: Vec<_> = vec![event(connection, calendar, 0, 1), event(connection, calendar, 1, 2)];
    let mut gone = event(connection, calendar, 2, 1);
    gone.change = RecordChange::Delete;
    second.push(gone);
    let sweep = Sweep { kind: RecordKind::GoogleEvent, parent_id: Some(calendar), generation: 2 };
    let mut write = page(second, vec![sweep], state("events:primary", 1, 2));
    write.generation = 2;
    let outcome = store.apply_page(write).await.unwrap();
    assert_eq!(outcome, PageOutcome { upserted: 1, unchanged: 1, deleted: 2, state_version: 2 });

    let feed = store.change_feed(scope, connection, &[RecordKind::GoogleEvent], 0, 100).await.unwrap();
    assert_eq!(feed.high_water, 7, "4 inserts, 1 change, 1 delete, 1 swept");
    let seqs: Vec<(String, i64, bool)> =
        feed.records.iter().map(|r| (r.provider_id.clone(), r.change_seq, r.deleted_at.is_some())).collect();
    assert_eq!(
        seqs,
        [("event-000000", 1, false), ("event-000001", 5, false), ("event-000002", 6, true), ("event-000003", 7, true)]
            .map(|(p, s, d)| (p.to_string(), s, d))
    );
    let live = store
        .list_records(scope, connection, RecordKind::GoogleEvent, &RecordFilter::default(), Page::first())
        .await
        .unwrap();
    assert_eq!(live.items.len(), 2);

    let finish = RunFinish {
        status: SyncRunStatus::Succeeded,
        api_calls: 2,
        upserted: 5,
        deleted: 2,
        error_code: None,
        error_message: None,
    };
    let done = store.finish_sync_run(&lease, run.id, finish.clone(), now).await.unwrap();
    assert_eq!(done.status, SyncRunStatus::Succeeded);
    let events = store.list_events(scope, 0, 100).await.unwrap();
    assert_eq!(events.last().unwrap().event_type, EventType::SyncCompleted);
    store.complete(&lease, now).await.unwrap();
    let fenced = store.finish_sync_run(&lease, run.id, finish, now).await;
    assert!(matches!(fenced, Err(StoreError::LeaseLost)), "{fenced:?}");
    assert!(store.purge_connection_records(connection, 3).await.unwrap() > 0);
    while store.purge_connection_records(connection, 3).await.unwrap() > 0 {}
    assert!(store.sync_states(connection).await.unwrap().is_empty());
}

/// Two stores with their own pools (two processes, as far as Postgres can tell), four tasks
/// each, hammering one bucket: never more than its burst admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_racing_on_one_bucket_never_over_admit() {
    let Some(url) = patchbay_testkit::db::postgres_url().await else { return };
    let first = Arc::new(PgStore::connect(&url, PgOptions::default()).await.unwrap());
    first.migrate().await.unwrap();
    let second = Arc::new(PgStore::connect(&url, PgOptions::default()).await.unwrap());
    let key = BucketKey { provider: ProviderId::Monday, key: "account:race".into(), bucket: "read".into() };
    let step = GcraStep { increment_us: 1_000_000, capacity_us: 25_000_000, force: false };
    let now = t0();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { first.clone() } else { second.clone() };
            let key = key.clone();
            tokio::spawn(async move {
                let mut admitted = 0;
                for _ in 0..10 {
                    admitted += i32::from(store.gcra(&key, step, now).await.unwrap().admitted);
                }
                admitted
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += task.await.unwrap();
    }
    assert_eq!(admitted, 25, "80 racing steps from two pools admit exactly the burst");
}

/// `cargo nextest run -p patchbay-testkit --run-ignored only -E 'test(page_write_throughput)'
/// --no-capture`: 100,000 events in pages of 500, then the same rows by COPY.
#[tokio::test]
#[ignore = "a benchmark, run by hand"]
async fn page_write_throughput_against_copy() {
    const TOTAL: usize = 100_000;
    const PAGE: usize = 500;
    let Some(url) = patchbay_testkit::db::postgres_url().await else { return };
    let store = Arc::new(PgStore::connect(&url, PgOptions::default()).await.unwrap());
    store.migrate().await.unwrap();
    let (scope, connection, _run, lease) = leased_run(&store).await;
    let calendar = RecordId::derive(connection, RecordKind::GoogleCalendar, "primary");
    let now = t0();
    let pages = TOTAL / PAGE;
    // Pass 1 inserts every event; pass 2 (a full re-sync, nothing changed) only marks them seen.
    let mut passes = Vec::new();
    for pass in 1..=2_i64 {
        let started = std::time::Instant::now();
        for (i, chunk) in (0..TOTAL).collect::<Vec<_>>().chunks(PAGE).enumerate() {
            let records = chunk.iter().map(|&n| event(connection, calendar, n, 1)).collect();
            let write = PageWrite {
                tenant_id: scope.tenant_id(),
                connection_id: connection,
                lease,
                generation: pass,
                records,
                sweeps: vec![],
                state: state("events:primary", (pass - 1) * pages as i64 + i as i64, pass),
                now,
            };
            store.apply_page(write).await.unwrap();
        }
        passes.push(started.elapsed());
    }
    let paged = passes[0];

    let mut raw = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE copied (LIKE google_event INCLUDING ALL)").execute(&mut raw).await.unwrap();
    let mut text = String::new();
    for n in 0..TOTAL {
        let RecordChange::Upsert(f) = event(connection, calendar, n, 1).change else { unreachable!() };
        let ts = |t: Option<DateTime<Utc>>| t.unwrap().to_rfc3339();
        text.push_str(&format!(
            "{}\t{}\t{}\tevent-{n:06}\t{}\t\\\\x{}\t\\\\x{}\t1\t{}\t{}\t\\N\tconfirmed\t{}\t1\t{}\t\\N\t{}\t{}\n",
            uuid::Uuid::now_v7(),
            scope.tenant_id(),
            connection,
            calendar,
            hex(&f.hash),
            hex(&f.sealed),
            ts(f.starts_at),
            ts(f.ends_at),
            ts(f.provider_updated_at),
            n + 1,
            now.to_rfc3339(),
            now.to_rfc3339(),
        ));
    }
    let started = std::time::Instant::now();
    let mut copy = raw.copy_in_raw("COPY copied FROM STDIN").await.unwrap();
    copy.send(text.as_bytes()).await.unwrap();
    copy.finish().await.unwrap();
    let copied = started.elapsed();
    let rate = |d: std::time::Duration| TOTAL as f64 / d.as_secs_f64();
    println!(
        "apply_page: {TOTAL} events in pages of {PAGE}: {paged:?} ({:.0}/s); COPY: {copied:?} ({:.0}/s); ratio {:.2}",
        rate(paged),
        rate(copied),
        rate(paged) / rate(copied)
    );
    println!("apply_page re-sync of the same {TOTAL} unchanged events: {:?} ({:.0}/s)", passes[1], rate(passes[1]));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
