//! The monday GraphQL client (providers.md A2.1, A3): one POST to the pinned endpoint and
//! version through [`Session::call`] (token, budget, breaker, refresh), then the body read for
//! GraphQL errors in both shapes and the query's real complexity reconciled with the estimate
//! the budget reserved. Sync and write-back both go through [`query`].

use super::errors::{read_errors, sanitize_message, worst, ErrorKind, GraphqlError};
use crate::budget::Spend;
use crate::call::{ApiRequest, Session};
use crate::SyncError;
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};

/// The selection to put at the root of every query or mutation so its real cost comes back
/// (`complexity` is free); [`query`] reconciles the budget with it.
pub const COMPLEXITY: &str = "complexity { before after query }";

/// When a rate-limit error names no wait.
const DEFAULT_RETRY_SECONDS: i64 = 30;

/// Sends `query` with `variables` and returns its `data`.
///
/// `spend` is what the call draws on (`session.monday_spend(write, estimated complexity)`); when
/// the query selects [`COMPLEXITY`], the budget is corrected to what monday charged. A body with
/// errors becomes: [`SyncError::RateLimited`] (the budget held until then, for every instance),
/// [`SyncError::Transient`], [`SyncError::Permission`], or [`SyncError::Rejected`] with the
/// sanitised code and message (never values from the body).
pub async fn query(session: &Session, spend: Spend, query: &str, variables: Value) -> Result<Value, SyncError> {
    let request = request(session, spend.clone(), query, variables)?;
    // 429s, and the rate-limit, permission and transient codes of 200 answers, are turned into
    // errors (and held) by the session already; what comes back here is a 2xx body.
    let response = session.call(&request).await?;
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|_| SyncError::Protocol("monday answered with a body that is not JSON".into()))?;
    if let Some(charged) = body.pointer("/data/complexity/query").and_then(Value::as_i64) {
        session.budgets().reconcile(&spend, charged).await?;
    }
    if let Some(error) = worst(read_errors(&body)) {
        return Err(failure(session, &spend, &error).await);
    }
    match body.get("data") {
        Some(data @ Value::Object(_)) => Ok(data.clone()),
        _ => Err(SyncError::Protocol("monday answered without data or errors".into())),
    }
}

fn request(session: &Session, spend: Spend, query: &str, variables: Value) -> Result<ApiRequest, SyncError> {
    let settings = &session.deps().settings;
    let version = HeaderValue::from_str(&settings.monday_api_version)
        .map_err(|_| SyncError::Protocol("the configured monday API version is not a header value".into()))?;
    let body = serde_json::to_vec(&json!({ "query": query, "variables": variables }))
        .map_err(|_| SyncError::Protocol("the query does not serialise".into()))?;
    Ok(ApiRequest {
        method: Method::POST,
        url: settings.monday_api_url.clone(),
        headers: vec![
            (HeaderName::from_static("api-version"), version),
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        ],
        body: Some(body.into()),
        spend,
    })
}

/// The error a GraphQL error body means; a rate limit also holds the budget until it lifts.
async fn failure(session: &Session, spend: &Spend, error: &GraphqlError) -> SyncError {
    let code = error.safe_code();
    match error.kind() {
        ErrorKind::RateLimited => {
            let wait = error.retry_in.map_or(DEFAULT_RETRY_SECONDS, |s| i64::try_from(s).unwrap_or(i64::MAX / 2));
            let until = session.deps().clock.now() + chrono::Duration::seconds(wait.min(86_400));
            if let Err(e) = session.budgets().hold_until(spend, until).await {
                return e;
            }
            metrics::counter!("patchbay_provider_rate_limited_total", "provider" => "monday").increment(1);
            SyncError::RateLimited(until)
        }
        ErrorKind::Transient => SyncError::Transient(code),
        ErrorKind::Permission => SyncError::Permission(code),
        ErrorKind::Rejected => SyncError::Rejected { code, message: sanitize_message(&error.message) },
    }
}
