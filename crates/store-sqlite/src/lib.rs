#![forbid(unsafe_code)]
//! Patchbay's embedded SQLite store: one file, WAL, `synchronous=FULL`, one writer connection.
//!
//! Every write goes through a pool of exactly one connection (multi-statement operations in one
//! transaction on it), and reads through a separate pool, so callers queue in the pool instead of
//! ever seeing `SQLITE_BUSY`. An exclusive lock file next to the database keeps a second process
//! away: SQLite is the single-process backend (architecture §1).

mod audit;
mod budgets;
mod codec;
mod connect;
mod connections;
mod credentials;
mod error;
mod event_out;
mod idempotency;
mod identity;
mod instances;
mod jobs;
mod lifecycle;
mod lock;
mod monday_webhooks;
mod outbox;
mod pages;
mod records;
mod retention;
mod rows;
mod sealed_secrets;
mod sync;
mod watch_channels;
mod webhook_processing;
mod webhooks;

use patchbay_store::{StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use error::db_err;

/// How long a write waits for the single writer connection before giving up. Generous: under
/// load, writers queue here rather than fail.
const WRITER_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Rows a read connection may buffer ahead of its caller: the largest page and its look-ahead row.
const READ_ROW_BUFFER: usize = patchbay_store::Page::MAX_LIMIT as usize + 1;

/// Tunables of the SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// How long SQLite itself retries a locked database (a checkpoint, another tool reading).
    pub busy_timeout: Duration,
    /// Connections in the read pool.
    pub read_connections: u32,
    /// Take the exclusive lock file. `serve` always does (SQLite is single-process); short
    /// command-line tools (`api-keys`) do not, so they work beside a running server — SQLite's
    /// own locking and the busy timeout keep their few writes safe.
    pub exclusive: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { busy_timeout: Duration::from_secs(5), read_connections: 4, exclusive: true }
    }
}

/// The SQLite implementation of every Patchbay store trait.
pub struct SqliteStore {
    pub(crate) writer: SqlitePool,
    pub(crate) reader: SqlitePool,
    path: PathBuf,
    lock: Option<lock::LockFile>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://<path>` or `sqlite:<path>`)
    /// and takes its lock file; a second process on the same file gets `Conflict`.
    pub async fn open(url: &str, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path_from_url(url)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!("cannot create directory {}: {}", parent.display(), e.kind()))
            })?;
        }
        let lock = if options.exclusive { Some(lock::LockFile::acquire(&path)?) } else { None };
        let base = SqliteConnectOptions::new()
            .filename(&path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        // The writer opens first: it creates the file and switches it to WAL before any reader.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(WRITER_ACQUIRE_TIMEOUT)
            .idle_timeout(None)
            .max_lifetime(None)
            // A sync page rewrites thousands of index entries in one transaction: a 16 MiB page
            // cache (SQLite's default is 2 MiB) keeps its dirty pages from spilling into the WAL
            // and being read back before the commit, and statement journals (every multi-row
            // upsert keeps one) stay in memory instead of going to a temporary file. Both are
            // bounded, and only the one writer connection has them.
            //
            // The WAL is checkpointed into the database file every 10,000 pages (40 MiB) rather
            // than SQLite's 1,000: a sync page of 2,500 events dirties thousands of index pages,
            // so the default checkpointed after nearly every page, copying (and fsyncing) the
            // same index pages again each time. Durability is unchanged: every commit still
            // fsyncs the WAL (`synchronous=FULL`), and a checkpoint only copies committed pages;
            // a crash replays a longer WAL on the next open. The file is cut back to 64 MiB after
            // a checkpoint so one large sync does not leave it large.
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .pragma("cache_size", "-16384")
                    .pragma("temp_store", "MEMORY")
                    .pragma("wal_autocheckpoint", "10000")
                    .pragma("journal_size_limit", "67108864"),
            )
            .await
            .map_err(db_err)?;
        // `query_only` rather than a read-only open: read-only WAL connections need the -shm file
        // to exist, and a stray write through the read pool should fail loudly, not take a lock.
        // A read connection hands its rows to the caller through a bounded channel (50 by
        // default); a page of up to 500 records plus the look-ahead row then stalls the
        // connection's thread until the caller catches up, a context switch each time on a
        // small machine. Room for a whole page keeps one page one hand-over.
        let reader = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(base.pragma("query_only", "ON").row_buffer_size(READ_ROW_BUFFER))
            .await
            .map_err(db_err)?;
        Ok(Self { writer, reader, path, lock })
    }

    /// Applies the embedded migrations. Migrations unknown to this binary (applied by a newer
    /// one) are ignored, so rolling back the binary does not brick the database.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut migrator = sqlx::migrate!("../../migrations/sqlite");
        migrator.set_ignore_missing(true);
        migrator.run(&self.writer).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => db_err(e),
            other => StoreError::Other(format!("SQLite migration failed: {other}")),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Extracts the file path from `sqlite://<path>` or `sqlite:<path>` (query parameters ignored).
fn path_from_url(url: &str) -> StoreResult<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).ok_or_else(|| {
        StoreError::Other("a SQLite URL starts with `sqlite://` (e.g. sqlite://data/patchbay.db)".into())
    })?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return Err(StoreError::Other(
            "a SQLite URL must name a database file (in-memory databases are not supported)".into(),
        ));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::path_from_url;
    use std::path::PathBuf;

    #[test]
    fn sqlite_urls_name_a_file_path() {
        let cases = [
            ("sqlite://data/patchbay.db", Some("data/patchbay.db")),
            ("sqlite:///var/lib/patchbay.db", Some("/var/lib/patchbay.db")),
            ("sqlite:patchbay.db", Some("patchbay.db")),
            ("sqlite://patchbay.db?mode=rwc", Some("patchbay.db")),
            ("sqlite::memory:", None),
            ("postgres://localhost/db", None),
            ("sqlite://", None),
        ];
        for (url, expected) in cases {
            let got = path_from_url(url).ok();
            assert_eq!(got, expected.map(PathBuf::from), "url {url}");
        }
    }
}
