//! Google API error bodies (providers.md B8):
//! `{"error":{"errors":[{domain,reason,message,locationType?,location?}],"code","message"}}`.

use super::ApiFailure;
use crate::fakes::common::json;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An error answer: status, JSON body and the headers some errors carry. Small, so helpers can
/// return it in a `Result`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
    www_authenticate: bool,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json(StatusCode::from_u16(self.status).expect("a valid HTTP status"), self.body);
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.www_authenticate {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\""),
            );
        }
        response
    }
}

/// One error in Google's shape; `location` is `(locationType, location)`.
pub(crate) fn api_error(
    status: u16,
    domain: &str,
    reason: &str,
    message: &str,
    location: Option<(&str, &str)>,
) -> ApiError {
    let mut item = json!({ "domain": domain, "reason": reason, "message": message });
    if let Some((kind, at)) = location {
        item["locationType"] = kind.into();
        item["location"] = at.into();
    }
    let body = json!({ "error": { "errors": [item], "code": status, "message": message } });
    ApiError { status, body, retry_after: None, www_authenticate: false }
}

/// 400 about one query parameter.
pub(crate) fn bad_param(reason: &str, message: &str, parameter: &str) -> ApiError {
    api_error(400, "global", reason, message, Some(("parameter", parameter)))
}

/// 401 for a missing, unknown, expired or revoked access token, with `WWW-Authenticate`.
pub(crate) fn auth_error() -> ApiError {
    let error = api_error(401, "global", "authError", "Invalid Credentials", Some(("header", "Authorization")));
    ApiError { www_authenticate: true, ..error }
}

/// 403 for a token without a Calendar scope (shape as Google's frontends send it; providers.md
/// marks it unconfirmed).
pub(crate) fn insufficient_scopes() -> ApiError {
    let body = json!({ "error": {
        "code": 403,
        "message": "Request had insufficient authentication scopes.",
        "errors": [{ "message": "Insufficient Permission", "domain": "global", "reason": "insufficientPermissions" }],
        "status": "PERMISSION_DENIED",
    }});
    ApiError { status: 403, body, retry_after: None, www_authenticate: false }
}

/// 404 for a calendar the user does not have (or deleted).
pub(crate) fn not_found() -> ApiError {
    api_error(404, "global", "notFound", "Not Found", None)
}

/// The per-user quota's answer.
pub(crate) fn user_rate_limit() -> ApiError {
    api_error(403, "usageLimits", "userRateLimitExceeded", "User Rate Limit Exceeded", None)
}

impl ApiFailure {
    /// The answer an injected failure gives.
    pub(crate) fn error(&self) -> ApiError {
        match self {
            ApiFailure::Server(status) => {
                let message = if *status == 503 { "Service Unavailable" } else { "Backend Error" };
                api_error(*status, "global", "backendError", message, None)
            }
            ApiFailure::TooManyRequests { retry_after } => {
                let error = api_error(429, "usageLimits", "rateLimitExceeded", "Rate Limit Exceeded", None);
                ApiError { retry_after: *retry_after, ..error }
            }
            ApiFailure::RateLimitExceeded => {
                api_error(403, "usageLimits", "rateLimitExceeded", "Rate Limit Exceeded", None)
            }
            ApiFailure::UserRateLimitExceeded => user_rate_limit(),
            ApiFailure::QuotaExceeded => {
                api_error(403, "usageLimits", "quotaExceeded", "Calendar usage limits exceeded.", None)
            }
        }
    }

    /// Whether this failure is a rate or quota limit (counted by `rate_limited()`).
    pub(crate) fn is_rate_limit(&self) -> bool {
        !matches!(self, ApiFailure::Server(_))
    }
}
