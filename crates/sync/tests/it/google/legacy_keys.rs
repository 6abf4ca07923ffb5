//! Upgrading a database written before events were keyed by calendar (migration 6): its event
//! rows carry ids derived without the calendar, and a meeting in two calendars was one row (the
//! last writer's). After the migration and the next run, every event is stored under its
//! calendar with its new id, and a change-feed reader that had read everything before the
//! upgrade sees each new row appear and each old one tombstoned: nothing vanishes silently.

use super::*;
use crate::support::Backend;
use patchbay_store_postgres::{PgOptions, PgStore};
use patchbay_store_sqlite::{SqliteOptions, SqliteStore};
use patchbay_sync::engine::Scope;
use patchbay_testkit::fakes::google::EventSpec;
use sqlx::Connection as _;
use std::sync::Arc;

/// The meeting in both calendars, and an event only in the primary calendar.
const SHARED: &str = "sharedmeet0001";
const SOLO: &str = "solomeeting001";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_an_upgraded_database_rekeys_its_events_with_tombstones_for_the_old_ids() {
    upgrade(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_an_upgraded_database_rekeys_its_events_with_tombstones_for_the_old_ids() {
    upgrade(Backend::Postgres).await;
}

/// A raw connection to the test database, for what an older binary left behind.
enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// A migrator holding migrations 1 to 5 of `backend` only (the released ones before 6).
async fn migrator_until_5(dialect: &str) -> (sqlx::migrate::Migrator, tempfile::TempDir) {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations").join(dialect);
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() <= "20250101000005_~" {
            std::fs::copy(&path, dir.path().join(name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    assert_eq!(migrator.iter().map(|m| m.version).max(), Some(20250101000005));
    (migrator, dir)
}

/// A store at migration 5, a raw connection beside it, and the migrated-later store handle.
async fn store_at_5(backend: Backend) -> Option<(Arc<dyn Store>, Raw, Option<tempfile::TempDir>, Migrate)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = patchbay_testkit::db::sqlite_url(dir.path());
            let store = Arc::new(SqliteStore::open(&url, SqliteOptions::default()).await.unwrap());
            let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
            migrator_until_5("sqlite").await.0.run(&mut raw).await.unwrap();
            Some((store.clone(), Raw::Sqlite(raw), Some(dir), Migrate::Sqlite(store)))
        }
        Backend::Postgres => {
            let url = patchbay_testkit::db::postgres_url().await?;
            let store = Arc::new(PgStore::connect(&url, PgOptions::default()).await.unwrap());
            let mut raw = sqlx::PgConnection::connect(&url).await.unwrap();
            migrator_until_5("postgres").await.0.run(&mut raw).await.unwrap();
            Some((store.clone(), Raw::Postgres(raw), None, Migrate::Postgres(store)))
        }
    }
}

/// The store, to migrate to the latest version later.
enum Migrate {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl Migrate {
    async fn run(&self) {
        match self {
            Migrate::Sqlite(store) => store.migrate().await.unwrap(),
            Migrate::Postgres(store) => store.migrate().await.unwrap(),
        }
    }
}

/// One event row as the old code wrote it: the id derived without the calendar.
struct Legacy<'a> {
    provider_id: &'a str,
    calendar: RecordId,
    summary: &'a str,
    seq: i64,
}

impl Raw {
    async fn insert_event(&mut self, world: &World, conn: &Connection, row: Legacy<'_>) -> RecordId {
        let id = RecordId::derive(conn.id, RecordKind::GoogleEvent, row.provider_id);
        let json = serde_json::json!({ "id": row.provider_id, "summary": row.summary, "status": "confirmed" });
        let sealed = world.deps.sealer().seal(conn.tenant_id, conn.id, RecordKind::GoogleEvent, id, &json);
        let now = Utc::now();
        let sql =
            "INSERT INTO google_event (id, tenant_id, connection_id, provider_id, parent_id, hash, sealed, key_id,
                       status, generation, change_seq, created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'confirmed', 1, $9, $10, $10)";
        match self {
            Raw::Sqlite(raw) => sqlx::query(sql)
                .bind(id.to_string())
                .bind(conn.tenant_id.to_string())
                .bind(conn.id.to_string())
                .bind(row.provider_id)
                .bind(row.calendar.to_string())
                .bind(sealed.hash)
                .bind(sealed.sealed)
                .bind(i64::from(sealed.key_id))
                .bind(row.seq)
                .bind(now.timestamp_micros())
                .execute(raw)
                .await
                .map(drop)
                .unwrap(),
            Raw::Postgres(raw) => sqlx::query(sql)
                .bind(id.0)
                .bind(conn.tenant_id.0)
                .bind(conn.id.0)
                .bind(row.provider_id)
                .bind(row.calendar.0)
                .bind(sealed.hash)
                .bind(sealed.sealed)
                .bind(i64::from(sealed.key_id))
                .bind(row.seq)
                .bind(now)
                .execute(raw)
                .await
                .map(drop)
                .unwrap(),
        }
        id
    }

    /// The sequence and a settled events part per calendar, as a finished incremental left them.
    async fn settle(&mut self, conn: &Connection, last_seq: i64, calendars: &[&str]) {
        let seq = "UPDATE sync_sequence SET last_seq = $1 WHERE connection_id = $2";
        let part = "INSERT INTO sync_state (connection_id, part, checkpoint, version, generation, updated_at)
                    VALUES ($1, $2, $3, 3, 1, $4)";
        let checkpoint = r#"{"phase":"incremental","sync_token":"from-before-the-upgrade"}"#;
        match self {
            Raw::Sqlite(raw) => {
                sqlx::query(seq).bind(last_seq).bind(conn.id.to_string()).execute(&mut *raw).await.unwrap();
                for calendar in calendars {
                    sqlx::query(part)
                        .bind(conn.id.to_string())
                        .bind(format!("events:{calendar}"))
                        .bind(checkpoint)
                        .bind(Utc::now().timestamp_micros())
                        .execute(&mut *raw)
                        .await
                        .unwrap();
                }
            }
            Raw::Postgres(raw) => {
                sqlx::query(seq).bind(last_seq).bind(conn.id.0).execute(&mut *raw).await.unwrap();
                for calendar in calendars {
                    sqlx::query(&part.replace("$3", "$3::jsonb"))
                        .bind(conn.id.0)
                        .bind(format!("events:{calendar}"))
                        .bind(checkpoint)
                        .bind(Utc::now())
                        .execute(&mut *raw)
                        .await
                        .unwrap();
                }
            }
        }
    }
}

/// Every change after `after`, read to the end in small pages: id → live.
async fn read_feed(world: &World, conn: &Connection, after: i64) -> (Vec<(RecordId, bool)>, i64) {
    let scope = TenantScope::new(conn.tenant_id);
    let kinds = RecordKind::of_provider(ProviderId::Google);
    let (mut changes, mut after) = (Vec::new(), after);
    loop {
        let page = world.store.change_feed(scope, conn.id, kinds, after, 7).await.unwrap();
        let Some(last) = page.records.last() else { return (changes, after) };
        after = last.change_seq;
        changes.extend(page.records.iter().map(|r| (r.id, r.deleted_at.is_none())));
    }
}

async fn upgrade(backend: Backend) {
    let Some((store, mut raw, dir, migrate)) = store_at_5(backend).await else { return };
    let world = World::over(store, dir).await;
    let conn = world.google_connection("acme", USER).await;
    let primary = primary();
    world.google.add_calendar(USER, "work", "Work");
    let (start, end) = (day_at(2, 9, 0), day_at(2, 10, 0));
    world.google.insert_event(USER, "primary", EventSpec::timed("Sync (organiser)", &start, &end).with_id(SHARED));
    world.google.insert_event(USER, "work", EventSpec::timed("Sync (attendee)", &start, &end).with_id(SHARED));
    world.google.insert_event(USER, "primary", EventSpec::timed("Solo", &start, &end).with_id(SOLO));

    // What the old binary left: both calendars (through the store: their key is unchanged), and
    // one row per event id: the meeting under the calendar that synced last.
    let sealer = world.deps.sealer();
    let calendars: Vec<RecordWrite> = [primary.as_str(), "work"]
        .iter()
        .map(|calendar| {
            let id = calendar_id(&conn, calendar);
            let entry = serde_json::json!({ "id": calendar, "summary": calendar });
            let sealed = sealer.seal(conn.tenant_id, conn.id, RecordKind::GoogleCalendar, id, &entry);
            let fields =
                RecordFields { hash: sealed.hash, sealed: sealed.sealed, key_id: sealed.key_id, ..Default::default() };
            RecordWrite {
                kind: RecordKind::GoogleCalendar,
                id,
                provider_id: calendar.to_string(),
                parent_id: None,
                change: RecordChange::Upsert(fields),
            }
        })
        .collect();
    let state = StateWrite {
        part: "calendars".into(),
        expected_version: 0,
        checkpoint: Value::Null,
        generation: 1,
        success_at: None,
        full_at: None,
    };
    let page = PageWrite {
        tenant_id: conn.tenant_id,
        connection_id: conn.id,
        lease: world.lease().await,
        generation: 1,
        records: calendars,
        sweeps: vec![],
        state,
        now: Utc::now(),
    };
    world.store.apply_page(page).await.expect("calendars are written at migration 5");
    let shared =
        Legacy { provider_id: SHARED, calendar: calendar_id(&conn, "work"), summary: "Sync (attendee)", seq: 3 };
    let old_shared = raw.insert_event(&world, &conn, shared).await;
    let solo = Legacy { provider_id: SOLO, calendar: calendar_id(&conn, &primary), summary: "Solo", seq: 4 };
    let old_solo = raw.insert_event(&world, &conn, solo).await;
    raw.settle(&conn, 4, &[primary.as_str(), "work"]).await;

    // A reader that had read everything before the upgrade.
    let (before, cursor) = read_feed(&world, &conn, 0).await;
    assert_eq!(before.len(), 4, "two calendars and two events: {before:?}");

    migrate.run().await;
    // The old rows are still served (and open) until the next run replaces them.
    let events = live_events(&world, &conn, "work").await;
    assert_eq!(events[SHARED].id, old_shared);
    assert_eq!(text(&opened(&world, &events[SHARED]), "summary"), "Sync (attendee)");
    for calendar in [primary.as_str(), "work"] {
        let state = world.store.sync_state(conn.id, &format!("events:{calendar}")).await.unwrap().unwrap();
        assert!(state.checkpoint.is_null() && state.dirty, "{calendar}: the part starts over: {state:?}");
        assert_eq!(state.version, 4, "{calendar}: an older writer's checkpoint is refused");
    }

    // The next run, even a quiet one that only syncs what is dirty or unsettled.
    let (result, _) = sync_scoped(&world, &conn, Scope::DirtyOnly).await;
    result.expect("the run after the upgrade succeeds");
    assert_matches(&world, &conn, &primary, "after the upgrade").await;
    assert_matches(&world, &conn, "work", "after the upgrade").await;
    let new_ids = BTreeSet::from([
        RecordId::derive_event(conn.id, &primary, SHARED),
        RecordId::derive_event(conn.id, "work", SHARED),
        RecordId::derive_event(conn.id, &primary, SOLO),
    ]);
    let live = live_set(&world, &conn).await;
    let calendar_ids = BTreeSet::from([calendar_id(&conn, &primary), calendar_id(&conn, "work")]);
    assert_eq!(live, new_ids.union(&calendar_ids).copied().collect(), "exactly the calendars and the new event ids");
    assert_eq!(feed_live_set(&world, &conn).await, live, "a reader from 0 ends with the live set");

    // The reader from before the upgrade: every old id it held is tombstoned after its cursor,
    // every new one appears; replaying its view ends with exactly the live set.
    let (after, _) = read_feed(&world, &conn, cursor).await;
    for old in [old_shared, old_solo] {
        assert!(after.contains(&(old, false)), "the old id {old} is tombstoned in the feed: {after:?}");
    }
    let mut view: BTreeMap<RecordId, bool> = before.into_iter().collect();
    view.extend(after);
    let seen: BTreeSet<RecordId> = view.into_iter().filter(|(_, alive)| *alive).map(|(id, _)| id).collect();
    assert_eq!(seen, live, "the reader's view after the upgrade is the live set: nothing vanished");
}
