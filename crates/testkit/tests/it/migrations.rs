//! Migrations are expand/contract: an older binary still opens a database that a newer one
//! migrated further (the migrator ignores versions it does not know).

use patchbay_store::HealthStore;
use patchbay_store_postgres::{PgOptions, PgStore};
use patchbay_store_sqlite::{SqliteOptions, SqliteStore};
use sqlx::Connection;

/// What a newer binary leaves in `_sqlx_migrations`: a version this binary has never seen.
const FUTURE_MIGRATION: &str = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
     VALUES (99990101000000, 'from a newer binary', TRUE, X'00', 0)";

#[tokio::test]
async fn sqlite_starts_against_a_database_migrated_by_a_newer_binary() {
    let dir = tempfile::tempdir().unwrap();
    let url = patchbay_testkit::db::sqlite_url(dir.path());
    let store = SqliteStore::open(&url, SqliteOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(FUTURE_MIGRATION).execute(&mut raw).await.unwrap();
    raw.close().await.unwrap();

    let store = SqliteStore::open(&url, SqliteOptions::default()).await.unwrap();
    store.migrate().await.expect("an unknown newer migration is ignored");
    store.close().await;
}

#[tokio::test]
async fn postgres_starts_against_a_database_migrated_by_a_newer_binary() {
    let Some(url) = patchbay_testkit::db::postgres_url().await else { return };
    let store = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let mut raw = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&FUTURE_MIGRATION.replace("X'00'", "'\\x00'::bytea")).execute(&mut raw).await.unwrap();
    raw.close().await.unwrap();

    store.migrate().await.expect("an unknown newer migration is ignored");
    assert!(store.ping().await.unwrap().starts_with("PostgreSQL"));
    store.close().await;
}
