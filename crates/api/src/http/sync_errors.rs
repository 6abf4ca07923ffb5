//! How sync's errors (provider calls, write-back, the proxy) answer as problem details. Waits
//! (budget, breaker) carry `Retry-After`; provider text never reaches the detail.

use super::problem::{ApiError, ProblemCode};
use chrono::Utc;
use patchbay_sync::proxy::ProxyError;
use patchbay_sync::writeback::WriteError;
use patchbay_sync::SyncError;

/// Seconds from now until `at`, at least one.
fn seconds_until(at: chrono::DateTime<Utc>) -> u64 {
    u64::try_from((at - Utc::now()).num_seconds()).unwrap_or(0).max(1)
}

impl From<SyncError> for ApiError {
    fn from(error: SyncError) -> Self {
        let code = error.code();
        match error {
            SyncError::RateLimited(at) => {
                ApiError::new(ProblemCode::RateLimited, "the provider budget of this connection is spent; retry later")
                    .with_retry_after(seconds_until(at))
            }
            SyncError::CircuitOpen(at) => {
                ApiError::new(ProblemCode::CircuitOpen, "calls to the provider are paused after repeated failures")
                    .with_retry_after(seconds_until(at))
            }
            SyncError::Transient(cause) | SyncError::Protocol(cause) => ApiError {
                code: ProblemCode::ProviderUnavailable,
                detail: Some(format!("the provider did not answer usefully ({code})")),
                retry_after: None,
                internal: Some(cause),
            },
            SyncError::NeedsReauth(_) | SyncError::Inactive => ApiError::new(
                ProblemCode::ConnectionUnavailable,
                "the connection is not active; it may need to be re-authorized",
            ),
            SyncError::Permission(reason) => ApiError::new(
                ProblemCode::ProviderForbidden,
                format!("the provider denied this connection access ({reason})"),
            ),
            SyncError::Rejected { code, .. } => {
                ApiError::new(ProblemCode::ProviderRejected, format!("the provider refused the request ({code})"))
            }
            SyncError::Decrypt => ApiError::internal("a stored record or answer cannot be decrypted"),
            SyncError::Store(store) => store.into(),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::InvalidColumn(_) => ApiError::new(ProblemCode::InvalidColumn, error.to_string()),
            WriteError::InvalidValue(_) => ApiError::new(ProblemCode::InvalidColumnValue, error.to_string()),
            WriteError::NotFound => ApiError::new(ProblemCode::NotFound, error.to_string()),
            WriteError::Locked => ApiError::new(ProblemCode::BoardLocked, error.to_string()).with_retry_after(1),
            WriteError::Sync(sync) => sync.into(),
        }
    }
}

impl From<ProxyError> for ApiError {
    fn from(error: ProxyError) -> Self {
        match error {
            ProxyError::NotAllowed(why) => ApiError::new(ProblemCode::ProxyPathNotAllowed, why),
            ProxyError::RequestTooLarge => ApiError::new(ProblemCode::PayloadTooLarge, error.to_string()),
            ProxyError::ResponseTooLarge => ApiError::new(ProblemCode::ProxyResponseTooLarge, error.to_string()),
            ProxyError::Sync(sync) => sync.into(),
        }
    }
}
