//! SQLite-only behaviour: the single-process lock file and migrations on reopen.

use patchbay_store::{HealthStore, IdentityStore, StoreError};
use patchbay_store_sqlite::{SqliteOptions, SqliteStore};
use patchbay_testkit::db::sqlite_url;

#[tokio::test]
async fn a_second_store_on_the_same_file_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let first = SqliteStore::open(&url, SqliteOptions::default()).await.expect("first open");
    first.migrate().await.unwrap();

    let refused = SqliteStore::open(&url, SqliteOptions::default()).await.expect_err("second open is refused");
    let db = dir.path().join("patchbay.db");
    let expected = format!("another Patchbay process is using {} (lock file {}.lock)", db.display(), db.display());
    assert!(matches!(&refused, StoreError::Conflict(message) if *message == expected), "got {refused:?}");

    first.close().await;
    let second = SqliteStore::open(&url, SqliteOptions::default()).await.expect("open after close");
    second.migrate().await.expect("migrating an up-to-date database is a no-op");
    assert!(second.find_tenant("org:none").await.unwrap().is_none());
    second.close().await;
}

#[tokio::test]
async fn opening_creates_the_database_and_its_missing_parent_directory() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("nested/data/patchbay.db").display());
    let store = SqliteStore::open(&url, SqliteOptions::default()).await.expect("open");
    store.migrate().await.unwrap();
    assert!(dir.path().join("nested/data/patchbay.db").exists());
    assert_eq!(store.backend(), "sqlite");
    store.close().await;
}

/// A rough timing of the page write path: 100,000 events in pages of 500 (sealed 600 bytes),
/// then the same pages again unchanged (equal hashes). Ignored by default; run with
/// `cargo nextest run -p patchbay-testkit --release --run-ignored only -E 'test(/page_write_timing/)' --no-capture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a timing, not a test: run it on purpose"]
async fn page_write_timing_100k_records_in_pages_of_500() {
    use patchbay_store::*;
    use patchbay_testkit::conformance::{claim_any, job, new_connection, t0, tenant_with_user};
    let (store, _dir) = patchbay_testkit::db::sqlite_store().await;
    let now = t0();
    let (_, user) = tenant_with_user(&*store, "org:timing").await;
    let connection = store.create_connection(new_connection(&user, "acct-timing")).await.unwrap();
    store.enqueue(job("sync.run", now), now).await.unwrap();
    let lease = store.claim(claim_any("timing", now)).await.unwrap().unwrap().lease;
    let calendar = RecordId::derive(connection.id, RecordKind::GoogleCalendar, "primary");
    let total = std::env::var("PATCHBAY_TIMING_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000_usize);
    let per_page = 500_usize;
    let mut version = 0;
    for pass in ["insert", "unchanged"] {
        let started = std::time::Instant::now();
        for page in 0..total / per_page {
            let records = (0..per_page)
                .map(|n| {
                    let pid = format!("event-{page}-{n}");
                    let fields = RecordFields {
                        hash: vec![(n % 251) as u8; 32],
                        sealed: vec![7; 600],
                        key_id: 1,
                        starts_at: Some(now),
                        ends_at: Some(now + chrono::Duration::hours(1)),
                        status: Some("confirmed".into()),
                        provider_updated_at: Some(now),
                        ..RecordFields::default()
                    };
                    RecordWrite {
                        kind: RecordKind::GoogleEvent,
                        id: RecordId::derive(connection.id, RecordKind::GoogleEvent, &pid),
                        provider_id: pid,
                        parent_id: Some(calendar),
                        change: RecordChange::Upsert(fields),
                    }
                })
                .collect();
            let state = StateWrite {
                part: "events:primary".into(),
                expected_version: version,
                checkpoint: serde_json::json!({ "page": page }),
                generation: 1,
                success_at: None,
                full_at: None,
            };
            let write = PageWrite {
                tenant_id: connection.tenant_id,
                connection_id: connection.id,
                lease,
                generation: 1,
                records,
                sweeps: vec![],
                state,
                now,
            };
            version = store.apply_page(write).await.unwrap().state_version;
        }
        let elapsed = started.elapsed();
        println!(
            "{pass}: {total} records in pages of {per_page}: {:.2} s ({:.0} records/s)",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64()
        );
    }
}
