//! The storage error type: small on purpose, each variant a thing a caller can act on.

/// A storage failure. Messages never carry bound values (tokens, secrets), only what failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist, or belongs to another tenant (indistinguishable on purpose).
    #[error("not found")]
    NotFound,
    /// A uniqueness or state rule refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A fenced job write whose lease has passed to another worker, or finished.
    #[error("the job lease was lost")]
    LeaseLost,
    /// The database cannot be reached (connection refused, pool timeout, I/O).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The data in the store is not what this binary expects (a corrupt row, a bad enum value).
    #[error("invalid stored data: {0}")]
    Corrupt(String),
    /// Anything else the backend reported.
    #[error("store error: {0}")]
    Other(String),
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;
