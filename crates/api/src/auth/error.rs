//! Why a caller was refused. The HTTP layer maps each variant to problem details once
//! (`http::problem`); nothing here knows about status codes.

use patchbay_store::{ApiKeyScope, StoreError};

/// An authentication or authorization failure.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No usable credential, or one that does not verify (deliberately unspecific).
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("this API key is revoked or expired")]
    KeyUnusable,
    #[error("the token has no `{0}` claim naming its tenant")]
    NoTenantClaim(String),
    /// The identity provider's keys cannot be fetched (JWKS down and the cache too old).
    #[error("the identity provider's keys cannot be fetched; retry shortly")]
    IdentityProviderUnavailable(String),
    #[error("too many requests for this API key or tenant")]
    RateLimited { retry_after_seconds: u64 },
    #[error("the admin API is off (PATCHBAY_ADMIN_TOKENS is not set)")]
    AdminApiOff,
    #[error("this route needs the tenant admin role")]
    NeedsAdminRole,
    #[error("this route needs an API key with the `{}` scope", .0.as_str())]
    MissingScope(ApiKeyScope),
    #[error(transparent)]
    Store(#[from] StoreError),
}
