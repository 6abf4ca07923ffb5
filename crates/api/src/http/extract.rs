//! Extractors whose rejections are problem details, so a malformed body, query or path answers
//! the same shape as every other error; and the extractors that authenticate the caller.

use super::problem::{ApiError, ProblemCode};
use crate::auth::{short, Operator, Principal};
use crate::state::AppState;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::StatusCode;

/// `axum::Json` with problem-details rejections.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` with problem-details rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` with problem-details rejections that name the parameter but never
/// echo its value (a malformed id may be anything a client pasted, up to the URI limit).
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => {
                let template = parts.extensions.get::<MatchedPath>().map(|m| m.as_str().to_owned());
                Err(path_rejection(&rejection, template.as_deref()))
            }
        }
    }
}

/// An optional JSON body: empty (or only white space) means the defaults; otherwise it must be
/// `application/json` of `T`'s shape.
pub(crate) fn optional_json<T: Default + serde::de::DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(ApiError::new(ProblemCode::UnsupportedMediaType, "a body must be `application/json`"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::new(ProblemCode::InvalidJson, e.to_string()))
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let code = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ProblemCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ProblemCode::UnsupportedMediaType,
            _ => ProblemCode::InvalidJson,
        };
        ApiError::new(code, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(ProblemCode::InvalidQuery, rejection.body_text())
    }
}

/// A malformed id names no existing resource: say which parameter, not whether it exists, and
/// not what was sent.
fn path_rejection(rejection: &PathRejection, template: Option<&str>) -> ApiError {
    let PathRejection::FailedToDeserializePathParams(failed) = rejection else {
        return ApiError::internal(rejection.body_text());
    };
    let key = match failed.kind() {
        ErrorKind::ParseErrorAtKey { key, .. }
        | ErrorKind::DeserializeError { key, .. }
        | ErrorKind::InvalidUtf8InPathParam { key } => Some(key.clone()),
        // A route with one parameter deserializes it without its name: take it from the template.
        _ => template.and_then(single_parameter),
    };
    let detail = match key {
        Some(key) => format!("path parameter `{key}` is malformed: ids in paths are UUIDs"),
        None => "a path parameter is malformed: ids in paths are UUIDs".to_owned(),
    };
    ApiError::new(ProblemCode::InvalidPath, detail)
}

/// The name of the only `{parameter}` of a route template.
fn single_parameter(template: &str) -> Option<String> {
    let mut names = template.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'));
    match (names.next(), names.next()) {
        (Some(name), None) => Some(name.trim_start_matches('*').to_owned()),
        _ => None,
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let principal = state.auth.authenticate(&parts.headers).await?;
        tracing::Span::current().record("tenant", tracing::field::display(short(&principal.tenant_id.to_string())));
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(state.auth.authenticate_operator(&parts.headers)?)
    }
}
