//! Maps sqlx/SQLite failures onto [`StoreError`], never quoting bound values.

use patchbay_store::StoreError;
use sqlx::error::ErrorKind;

/// Converts a sqlx error into the store's error type.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolTimedOut => StoreError::Unavailable("timed out waiting for a SQLite connection".into()),
        sqlx::Error::PoolClosed => StoreError::Unavailable("the SQLite store is closed".into()),
        sqlx::Error::Io(io) => StoreError::Unavailable(format!("SQLite I/O error: {}", io.kind())),
        sqlx::Error::WorkerCrashed => StoreError::Unavailable("the SQLite connection worker stopped".into()),
        sqlx::Error::ColumnDecode { index, source } => StoreError::Corrupt(format!("column {index}: {source}")),
        sqlx::Error::Decode(source) => StoreError::Corrupt(source.to_string()),
        sqlx::Error::Database(db) => {
            // SQLite's messages name tables and columns ("UNIQUE constraint failed: tenant.external_key"),
            // never the values, so they are safe to pass on.
            let message = db.message().to_owned();
            match db.kind() {
                ErrorKind::UniqueViolation => StoreError::Conflict(message),
                // A row pointing at a missing (or other tenant's) parent: the parent is not found.
                ErrorKind::ForeignKeyViolation => StoreError::NotFound,
                _ if message.contains("database is locked") || message.contains("disk I/O") => {
                    StoreError::Unavailable(message)
                }
                _ => StoreError::Other(format!("SQLite: {message}")),
            }
        }
        other => StoreError::Other(other.to_string()),
    }
}
