//! Sync's error type: what a caller (a job handler, an API route) can act on.

use chrono::{DateTime, Utc};
use patchbay_store::StoreError;

/// Why a sync step, a write-back or a proxied call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Out of provider budget (ours or the provider's 429): come back at this time. Not a failure.
    #[error("rate limited until {0}")]
    RateLimited(DateTime<Utc>),
    /// The circuit breaker of the connection or provider is open until this time.
    #[error("circuit open until {0}")]
    CircuitOpen(DateTime<Utc>),
    /// A passing provider failure (5xx, timeout, connection error).
    #[error("provider unavailable: {0}")]
    Transient(String),
    /// The grant is dead; the connection was marked (`needs_reauth` / `revoked`).
    #[error("the connection needs to be re-authorized: {0}")]
    NeedsReauth(String),
    /// The token lacks permission for this resource; the connection stays active.
    #[error("permission denied by the provider: {0}")]
    Permission(String),
    /// The provider refused the request itself (bad column, bad value): `code` is the
    /// provider's sanitised error code, never body text.
    #[error("the provider refused the request: {code}")]
    Rejected { code: String, message: String },
    /// The provider answered something this version cannot read.
    #[error("unexpected provider answer: {0}")]
    Protocol(String),
    /// The connection is not active (disconnecting, deleted, needs reauth).
    #[error("the connection is not active")]
    Inactive,
    /// A stored record could not be opened (wrong or missing vault key).
    #[error("a stored record cannot be decrypted")]
    Decrypt,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SyncError {
    /// The stable class written to a failed run's `error_code` and the `sync.failed` event.
    pub fn code(&self) -> &'static str {
        match self {
            Self::RateLimited(_) => "rate_limited",
            Self::CircuitOpen(_) => "circuit_open",
            Self::Transient(_) => "provider_unavailable",
            Self::NeedsReauth(_) => "needs_reauth",
            Self::Permission(_) => "permission_denied",
            Self::Rejected { .. } => "provider_rejected",
            Self::Protocol(_) => "provider_protocol",
            Self::Inactive => "connection_inactive",
            Self::Decrypt => "decrypt_failed",
            Self::Store(StoreError::LeaseLost) => "lease_lost",
            Self::Store(_) => "store_error",
        }
    }

    /// When the work should be tried again without counting a failure, if this is a wait.
    pub fn wait_until(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::RateLimited(at) | Self::CircuitOpen(at) => Some(*at),
            _ => None,
        }
    }
}
