//! Maps sqlx/Postgres failures onto [`StoreError`], never quoting bound values.

use patchbay_store::StoreError;
use sqlx::error::ErrorKind;

/// Converts a sqlx error into the store's error type.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolTimedOut => StoreError::Unavailable("timed out waiting for a Postgres connection".into()),
        sqlx::Error::PoolClosed => StoreError::Unavailable("the Postgres store is closed".into()),
        sqlx::Error::Io(io) => StoreError::Unavailable(format!("Postgres I/O error: {io}")),
        sqlx::Error::Tls(tls) => StoreError::Unavailable(format!("Postgres TLS error: {tls}")),
        sqlx::Error::Protocol(p) => StoreError::Unavailable(format!("Postgres protocol error: {p}")),
        sqlx::Error::WorkerCrashed => StoreError::Unavailable("a Postgres connection worker stopped".into()),
        sqlx::Error::ColumnDecode { index, source } => StoreError::Corrupt(format!("column {index}: {source}")),
        sqlx::Error::Decode(source) => StoreError::Corrupt(source.to_string()),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let constraint = db.constraint().unwrap_or("unknown constraint").to_owned();
            match db.kind() {
                // The constraint name says what collided; the detail (which quotes the values) is dropped.
                ErrorKind::UniqueViolation => StoreError::Conflict(constraint),
                // A row pointing at a missing (or other tenant's) parent: the parent is not found.
                ErrorKind::ForeignKeyViolation => StoreError::NotFound,
                // 08: connection exceptions; 57P: the server is shutting down or not yet accepting.
                _ if code.starts_with("08") || code.starts_with("57P") || code == "53300" => {
                    StoreError::Unavailable(format!("Postgres {code}: {}", db.message()))
                }
                // Class 22 (data exceptions) messages can quote the offending value: code only.
                _ if code.starts_with("22") => StoreError::Other(format!("Postgres data exception {code}")),
                _ => StoreError::Other(format!("Postgres {code}: {}", db.message())),
            }
        }
        other => StoreError::Other(other.to_string()),
    }
}
