//! A minimal monday GraphQL post for write-back: the request (pinned `API-Version`, JSON body)
//! and a reading of the answer in both error shapes (current `errors[].extensions.code`, legacy
//! top-level `error_code`). Kept small on purpose: it should be folded onto the monday client
//! (`crate::monday`) once that lands.

use crate::budget::Spend;
use crate::call::{ApiRequest, ApiResponse};
use crate::SyncError;
use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};
use url::Url;

/// One application error of an answer. `message` is kept for matching only, never reported
/// (it may quote record data).
#[derive(Clone, Debug, Default)]
pub(super) struct GraphqlError {
    pub code: Option<String>,
    pub message: String,
    pub data: Value,
}

/// A monday answer: its data, its errors (either shape) and what the query cost.
#[derive(Clone, Debug)]
pub(super) struct Answer {
    pub status: u16,
    pub data: Value,
    pub errors: Vec<GraphqlError>,
    /// `complexity { before after }`: points charged, when the answer says.
    pub charged: Option<i64>,
}

/// A POST of `query` with `variables` to the GraphQL endpoint.
pub(super) fn post(url: &Url, version: &str, query: &str, variables: Value, spend: Spend) -> ApiRequest {
    let body = json!({ "query": query, "variables": variables });
    let mut headers = vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    if let Ok(version) = HeaderValue::from_str(version) {
        headers.push((HeaderName::from_static("api-version"), version));
    }
    ApiRequest {
        method: Method::POST,
        url: url.clone(),
        headers,
        body: Some(Bytes::from(serde_json::to_vec(&body).expect("a JSON value always serialises"))),
        spend,
    }
}

/// Reads an answer's body; a body that is not JSON is a protocol error.
pub(super) fn read(response: &ApiResponse) -> Result<Answer, SyncError> {
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|_| SyncError::Protocol(format!("monday answered HTTP {} without JSON", response.status)))?;
    let mut errors = Vec::new();
    for item in body.get("errors").and_then(Value::as_array).into_iter().flatten() {
        let extensions = item.get("extensions");
        errors.push(GraphqlError {
            code: extensions.and_then(|e| e.get("code")).and_then(Value::as_str).map(str::to_owned),
            message: item.get("message").and_then(Value::as_str).unwrap_or_default().to_owned(),
            data: extensions.and_then(|e| e.get("error_data")).cloned().unwrap_or(Value::Null),
        });
    }
    // The legacy shape (and the 2024-10 transition, which carries both: the legacy code is
    // then the same error, so it is only added when `errors` named no code).
    if let Some(code) = body.get("error_code").and_then(Value::as_str) {
        if !errors.iter().any(|e| e.code.is_some()) {
            errors.push(GraphqlError {
                code: Some(code.to_owned()),
                message: body.get("error_message").and_then(Value::as_str).unwrap_or_default().to_owned(),
                data: body.get("error_data").cloned().unwrap_or(Value::Null),
            });
        }
    }
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    let charged = data.get("complexity").and_then(|c| {
        let before = c.get("before")?.as_i64()?;
        let after = c.get("after")?.as_i64()?;
        Some((before - after).max(0))
    });
    Ok(Answer { status: response.status.as_u16(), data, errors, charged })
}

/// Lower-case alphanumerics: monday spells codes several ways (`ResourceLocked`,
/// `RESOURCE_LOCKED`).
pub(super) fn fold(text: &str) -> String {
    text.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// A provider code fit to report: short, code-like, else `fallback`.
pub(super) fn safe_code(code: Option<&str>, fallback: &str) -> String {
    match code {
        Some(code)
            if !code.is_empty()
                && code.len() <= 64
                && code.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-')) =>
        {
            code.to_owned()
        }
        _ => fallback.to_owned(),
    }
}
