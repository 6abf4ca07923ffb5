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

/// Migration 4 destroys the credentials an older binary kept for dead grants (`needs_reauth`,
/// `revoked`), and leaves every other credential alone.
#[tokio::test]
async fn sqlite_migration_4_destroys_credentials_kept_for_dead_grants() {
    use patchbay_store::{CredentialStore, KeyUsage, Store};
    use patchbay_testkit::conformance::{grant, t0, tenant_with_user};
    let dir = tempfile::tempdir().unwrap();
    let url = patchbay_testkit::db::sqlite_url(dir.path());
    let store = SqliteStore::open(&url, SqliteOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let (_, user) = tenant_with_user(&store as &dyn Store, "org:migration-4").await;
    for account in ["dead", "revoked", "alive"] {
        store.save_grant(grant(&user, account, None, t0())).await.unwrap();
    }
    store.close().await;
    // What an older binary left behind: dead grants with their ciphertext, migration 4 not run.
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for (account, status) in [("dead", "needs_reauth"), ("revoked", "revoked")] {
        sqlx::query("UPDATE connection SET status = ? WHERE provider_account_id = ?")
            .bind(status)
            .bind(account)
            .execute(&mut raw)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 20250101000004").execute(&mut raw).await.unwrap();
    raw.close().await.unwrap();

    let store = SqliteStore::open(&url, SqliteOptions::default()).await.unwrap();
    assert_eq!(store.credential_key_usage().await.unwrap(), [KeyUsage { key_id: 1, credentials: 3 }]);
    store.migrate().await.unwrap();
    let left = store.credential_key_usage().await.unwrap();
    assert_eq!(left, [KeyUsage { key_id: 1, credentials: 1 }], "only the live grant keeps its credential");
    store.close().await;
}
