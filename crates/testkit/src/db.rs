//! Throwaway databases for tests: a fresh SQLite file in a temp dir, or a fresh schema in the
//! test Postgres database.

use patchbay_store_postgres::{PgOptions, PgStore};
use patchbay_store_sqlite::{SqliteOptions, SqliteStore};
use sqlx::Connection;
use std::sync::Arc;

/// Where the test Postgres lives when `PATCHBAY_TEST_DATABASE_URL` is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Keeps a SQLite test database's directory alive; dropping it deletes the files.
pub type TempDirGuard = tempfile::TempDir;

/// The `sqlite://` URL of a database file inside `dir`.
pub fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("patchbay.db").display())
}

/// A migrated SQLite store in a fresh temp dir (kept until the guard drops).
pub async fn sqlite_store() -> (Arc<SqliteStore>, TempDirGuard) {
    let dir = tempfile::tempdir().expect("create a temp dir for the test database");
    let store = SqliteStore::open(&sqlite_url(dir.path()), SqliteOptions::default()).await.expect("open SQLite");
    store.migrate().await.expect("migrate SQLite");
    (Arc::new(store), dir)
}

/// A URL for a fresh, empty schema in the test Postgres database: the URL's `options` set
/// `search_path` to it, so anything connecting with this URL (a store, the API under test)
/// works inside that schema only. `None` when `PATCHBAY_TEST_POSTGRES=skip`.
///
/// Panics when Postgres cannot be reached: a missing database must fail loudly, not turn the
/// Postgres half of the suite into silent passes.
pub async fn postgres_url() -> Option<String> {
    if std::env::var("PATCHBAY_TEST_POSTGRES").is_ok_and(|v| v == "skip") {
        println!("skipped: Postgres unavailable (PATCHBAY_TEST_POSTGRES=skip)");
        return None;
    }
    let base = std::env::var("PATCHBAY_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach the test Postgres at {} ({e}); start Postgres or set PATCHBAY_TEST_DATABASE_URL \
             (or PATCHBAY_TEST_POSTGRES=skip to skip the Postgres tests)",
            redacted(&base)
        )
    });
    // A v7 id makes every schema name unique (no two tests race for one) and dates it, so old
    // schemas from earlier runs can be swept.
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await.expect("create the test schema");
    sweep_old_schemas(&mut admin).await;
    admin.close().await.ok();
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{separator}options=-c%20search_path%3D{schema}"))
}

/// A migrated Postgres store in a fresh schema; `None` when Postgres tests are skipped.
pub async fn postgres_store() -> Option<Arc<PgStore>> {
    let url = postgres_url().await?;
    let store = PgStore::connect(&url, PgOptions::default()).await.expect("connect to the test Postgres");
    store.migrate().await.expect("migrate Postgres");
    Some(Arc::new(store))
}

/// Drops test schemas older than an hour. Best effort: another test process may be dropping
/// the same schema, and a failure here must not fail the test that asked for a new one.
async fn sweep_old_schemas(admin: &mut sqlx::PgConnection) {
    let cutoff_ms = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let Ok(names) = sqlx::query_scalar::<_, String>("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'")
        .fetch_all(&mut *admin)
        .await
    else {
        return;
    };
    for name in names {
        let created_ms = name
            .strip_prefix("t_")
            .and_then(|hex| uuid::Uuid::try_parse(hex).ok())
            .and_then(|id| id.get_timestamp())
            .map(|ts| ts.to_unix().0 as i64 * 1000);
        if created_ms.is_some_and(|ms| ms < cutoff_ms) {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).execute(&mut *admin).await;
        }
    }
}

/// The URL with its password replaced, for messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(an unparsable URL)".to_owned(),
    }
}
