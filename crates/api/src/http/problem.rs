//! RFC 9457 problem details: every error Patchbay answers is one of these, with a stable `code`
//! and a `type` URI derived from it. Internal causes are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Every problem code Patchbay answers with (listed in the OpenAPI document).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    BadRequest,
    InvalidJson,
    InvalidQuery,
    InvalidPath,
    Unauthorized,
    Forbidden,
    InsufficientScope,
    NotFound,
    RouteNotFound,
    MethodNotAllowed,
    RequestTimeout,
    Conflict,
    PayloadTooLarge,
    UriTooLong,
    UnsupportedMediaType,
    RateLimited,
    HeadersTooLarge,
    Internal,
    Unavailable,
    InvalidIdempotencyKey,
    IdempotencyKeyReused,
    IdempotencyKeyInFlight,
    InvalidColumn,
    InvalidColumnValue,
    BoardLocked,
    ProviderRejected,
    ProviderForbidden,
    ProviderUnavailable,
    CircuitOpen,
    ConnectionUnavailable,
    ProxyPathNotAllowed,
    ProxyResponseTooLarge,
}

impl ProblemCode {
    /// Every code, for the OpenAPI test and docs.
    pub const ALL: [ProblemCode; 32] = [
        Self::BadRequest,
        Self::InvalidJson,
        Self::InvalidQuery,
        Self::InvalidPath,
        Self::Unauthorized,
        Self::Forbidden,
        Self::InsufficientScope,
        Self::NotFound,
        Self::RouteNotFound,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::UriTooLong,
        Self::UnsupportedMediaType,
        Self::RateLimited,
        Self::HeadersTooLarge,
        Self::Internal,
        Self::Unavailable,
        Self::InvalidIdempotencyKey,
        Self::IdempotencyKeyReused,
        Self::IdempotencyKeyInFlight,
        Self::InvalidColumn,
        Self::InvalidColumnValue,
        Self::BoardLocked,
        Self::ProviderRejected,
        Self::ProviderForbidden,
        Self::ProviderUnavailable,
        Self::CircuitOpen,
        Self::ConnectionUnavailable,
        Self::ProxyPathNotAllowed,
        Self::ProxyResponseTooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::InvalidJson => "invalid_json",
            Self::InvalidQuery => "invalid_query",
            Self::InvalidPath => "invalid_path",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::InsufficientScope => "insufficient_scope",
            Self::NotFound => "not_found",
            Self::RouteNotFound => "route_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UriTooLong => "uri_too_long",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited => "rate_limited",
            Self::HeadersTooLarge => "headers_too_large",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::InvalidIdempotencyKey => "invalid_idempotency_key",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            Self::InvalidColumn => "invalid_column",
            Self::InvalidColumnValue => "invalid_column_value",
            Self::BoardLocked => "board_locked",
            Self::ProviderRejected => "provider_rejected",
            Self::ProviderForbidden => "provider_forbidden",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::CircuitOpen => "circuit_open",
            Self::ConnectionUnavailable => "connection_unavailable",
            Self::ProxyPathNotAllowed => "proxy_path_not_allowed",
            Self::ProxyResponseTooLarge => "proxy_response_too_large",
        }
    }

    /// The HTTP status this code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest | Self::InvalidJson | Self::InvalidQuery | Self::InvalidPath => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::NotFound | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::InvalidIdempotencyKey => StatusCode::BAD_REQUEST,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            Self::InvalidColumn => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InvalidColumnValue => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BoardLocked => StatusCode::CONFLICT,
            Self::ProviderRejected => StatusCode::UNPROCESSABLE_ENTITY,
            Self::ProviderForbidden => StatusCode::FORBIDDEN,
            Self::ProviderUnavailable => StatusCode::BAD_GATEWAY,
            Self::CircuitOpen => StatusCode::SERVICE_UNAVAILABLE,
            Self::ConnectionUnavailable => StatusCode::CONFLICT,
            Self::ProxyPathNotAllowed => StatusCode::NOT_FOUND,
            Self::ProxyResponseTooLarge => StatusCode::BAD_GATEWAY,
        }
    }

    /// A short human title.
    pub fn title(self) -> &'static str {
        match self {
            Self::BadRequest => "Bad request",
            Self::InvalidJson => "The request body is not valid JSON for this route",
            Self::InvalidQuery => "The query string is not valid for this route",
            Self::InvalidPath => "A path parameter is malformed",
            Self::Unauthorized => "Authentication required",
            Self::Forbidden => "Not allowed",
            Self::InsufficientScope => "The API key lacks the scope this route needs",
            Self::NotFound => "Not found",
            Self::RouteNotFound => "No such route",
            Self::MethodNotAllowed => "Method not allowed on this route",
            Self::RequestTimeout => "The request took too long",
            Self::Conflict => "Conflict",
            Self::PayloadTooLarge => "The request body is too large",
            Self::UriTooLong => "The request URI is too long",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::RateLimited => "Too many requests",
            Self::HeadersTooLarge => "The request headers are too large",
            Self::Internal => "Internal error",
            Self::Unavailable => "Service unavailable",
            Self::InvalidIdempotencyKey => "The Idempotency-Key header is missing or malformed",
            Self::IdempotencyKeyReused => "This Idempotency-Key was used with another request",
            Self::IdempotencyKeyInFlight => "The first request with this Idempotency-Key is still running",
            Self::InvalidColumn => "The board has no such column",
            Self::InvalidColumnValue => "A column value is not valid for its column",
            Self::BoardLocked => "The board is locked by another update",
            Self::ProviderRejected => "The provider refused the request",
            Self::ProviderForbidden => "The provider denied the connection access",
            Self::ProviderUnavailable => "The provider did not answer usefully",
            Self::CircuitOpen => "Calls to the provider are paused after repeated failures",
            Self::ConnectionUnavailable => "The connection is not active",
            Self::ProxyPathNotAllowed => "The proxy does not forward this path or method",
            Self::ProxyResponseTooLarge => "The provider's answer is larger than the proxy passes back",
        }
    }

    /// The stable `type` URI of this code.
    pub fn type_uri(self) -> String {
        format!("urn:patchbay:problem:{}", self.as_str())
    }

    /// The code a bare status (from a layer, not a handler) is reported as.
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => Self::RequestTimeout,
            StatusCode::CONFLICT => Self::Conflict,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::URI_TOO_LONG => Self::UriTooLong,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Self::HeadersTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable,
            s if s.is_server_error() => Self::Internal,
            _ => Self::BadRequest,
        }
    }
}

/// The body of every error response.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:patchbay:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// What went wrong with this request, for a person; never a secret or an internal cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub code: ProblemCode,
}

/// An error a handler returns; becomes a problem response.
#[derive(Debug)]
pub struct ApiError {
    pub code: ProblemCode,
    pub detail: Option<String>,
    pub retry_after: Option<u64>,
    /// Logged in the request span, never sent.
    pub internal: Option<String>,
}

impl ApiError {
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self { code, detail: Some(detail.into()), retry_after: None, internal: None }
    }

    pub fn bare(code: ProblemCode) -> Self {
        Self { code, detail: None, retry_after: None, internal: None }
    }

    pub fn unauthorized() -> Self {
        Self::new(ProblemCode::Unauthorized, "send a valid user JWT or API key as `Authorization: Bearer …`")
    }

    pub fn not_found() -> Self {
        Self::bare(ProblemCode::NotFound)
    }

    /// A failure whose cause stays in the logs.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self { code: ProblemCode::Internal, detail: None, retry_after: None, internal: Some(cause.to_string()) }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl From<patchbay_store::StoreError> for ApiError {
    fn from(error: patchbay_store::StoreError) -> Self {
        use patchbay_store::StoreError as E;
        match error {
            E::NotFound => Self::not_found(),
            E::Conflict(what) => Self::new(ProblemCode::Conflict, what),
            E::Unavailable(cause) => Self {
                code: ProblemCode::Unavailable,
                detail: Some("the database is unreachable; retry shortly".into()),
                retry_after: Some(5),
                internal: Some(cause),
            },
            other => Self::internal(other),
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(error: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError as E;
        match error {
            E::Unauthenticated => Self::unauthorized(),
            E::KeyUnusable | E::NoTenantClaim(_) => Self::new(ProblemCode::Unauthorized, error.to_string()),
            E::IdentityProviderUnavailable(cause) => Self {
                code: ProblemCode::Unavailable,
                detail: Some("the identity provider's keys cannot be fetched; retry shortly".into()),
                retry_after: Some(5),
                internal: Some(cause),
            },
            E::RateLimited { retry_after_seconds } => {
                Self::new(ProblemCode::RateLimited, error.to_string()).with_retry_after(retry_after_seconds)
            }
            E::AdminApiOff => Self::new(ProblemCode::NotFound, error.to_string()),
            E::NeedsAdminRole => Self::new(ProblemCode::Forbidden, error.to_string()),
            E::MissingScope(_) => Self::new(ProblemCode::InsufficientScope, error.to_string()),
            E::Store(store) => store.into(),
        }
    }
}

impl From<patchbay_connect::ConnectError> for ApiError {
    fn from(error: patchbay_connect::ConnectError) -> Self {
        use patchbay_connect::ConnectError as E;
        match error {
            E::Store(store) => store.into(),
            E::NotFound => Self::not_found(),
            E::Internal(cause) => Self::internal(cause),
            // Everything else is the caller's to fix; the message names the field, never echoes it.
            other => Self::new(ProblemCode::BadRequest, other.to_string()),
        }
    }
}

/// The JSON body of a problem (stored as-is by idempotent routes to replay it).
pub fn problem_body(code: ProblemCode, detail: Option<String>) -> Vec<u8> {
    let status = code.status().as_u16();
    let body = Problem { type_uri: code.type_uri(), title: code.title().to_string(), status, detail, code };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Builds a problem response (also used by layers that answer before any handler).
pub fn problem_response(code: ProblemCode, detail: Option<String>) -> Response {
    let status = code.status();
    let bytes = problem_body(code, detail);
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.internal {
            if self.code == ProblemCode::Internal {
                tracing::error!(code = self.code.as_str(), cause = %cause, "request failed");
            } else {
                tracing::warn!(code = self.code.as_str(), cause = %cause, "request failed");
            }
        }
        let mut response = problem_response(self.code, self.detail);
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
