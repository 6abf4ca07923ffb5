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
