//! Why a connect, or a step of it, did not succeed. Each variant has a stable code the app sees
//! (`patchbay_status=error&error=<code>`, the session's `error`, problem details).

use patchbay_store::{ConnectionId, ProviderId, StoreError};

/// A connect failure.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("provider `{0}` is not enabled (set its PATCHBAY_*_CLIENT_ID)")]
    ProviderDisabled(ProviderId),
    #[error("{0}")]
    InvalidTarget(#[from] crate::targets::TargetError),
    #[error("redirect mode needs `return_to`")]
    MissingReturnTo,
    #[error("popup mode needs `opener_origin`")]
    MissingOpenerOrigin,
    #[error("`user_id` is only for API keys acting for a user")]
    UserIdNotAllowed,
    #[error("API keys must name the `user_id` the connection is for")]
    UserIdRequired,
    #[error("`end_user` fields must be at most 200 characters")]
    EndUserTooLong,
    /// The session, user or connection does not exist for this caller.
    #[error("not found")]
    NotFound,
    /// The connect link expired or was already used.
    #[error("this connect link has expired or was already used")]
    LinkUsed,
    /// The callback carried no state, several, or one that is unknown, used or expired.
    #[error("the sign-in response has no valid state")]
    InvalidState,
    #[error("the state was made for another provider")]
    ProviderMismatch,
    #[error("the callback did not come from the browser that started the connect")]
    InvalidBinding,
    #[error("the authorization response's `iss` is missing, repeated or wrong")]
    IssuerMismatch,
    #[error("the user denied access at the provider")]
    AccessDenied,
    #[error("the provider returned an error")]
    ProviderError,
    #[error("the callback carried no code")]
    MissingCode,
    #[error("the code exchange failed")]
    ExchangeFailed,
    #[error("the account identity lookup failed")]
    IdentityFailed,
    #[error("the connection to reconnect no longer exists")]
    ConnectionNotFound,
    #[error("a reconnect must consent with the same provider account")]
    AccountMismatch,
    /// The grant lacks a required scope: the connection was stored (`insufficient_scope`) and
    /// will not sync until the user reconnects with every permission.
    #[error("the grant lacks required permissions")]
    InsufficientScope(ConnectionId),
    #[error("the store failed: {0}")]
    Store(#[source] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ConnectError {
    /// The stable code the app sees.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ProviderDisabled(_) => "provider_disabled",
            Self::InvalidTarget(_)
            | Self::MissingReturnTo
            | Self::MissingOpenerOrigin
            | Self::UserIdNotAllowed
            | Self::UserIdRequired
            | Self::EndUserTooLong => "bad_request",
            Self::NotFound => "not_found",
            Self::LinkUsed => "expired",
            Self::InvalidState => "invalid_state",
            Self::ProviderMismatch => "provider_mismatch",
            Self::InvalidBinding => "invalid_binding",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::AccessDenied => "access_denied",
            Self::ProviderError => "provider_error",
            Self::MissingCode => "missing_code",
            Self::ExchangeFailed => "exchange_failed",
            Self::IdentityFailed => "identity_failed",
            Self::ConnectionNotFound => "connection_not_found",
            Self::AccountMismatch => "account_mismatch",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::Store(StoreError::NotFound) => "not_found",
            Self::Store(_) | Self::Internal(_) => "internal_error",
        }
    }

    /// The connection a failed connect still stored (a partial grant).
    pub fn connection_id(&self) -> Option<ConnectionId> {
        match self {
            Self::InsufficientScope(id) => Some(*id),
            _ => None,
        }
    }
}

impl From<StoreError> for ConnectError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            other => Self::Store(other),
        }
    }
}
