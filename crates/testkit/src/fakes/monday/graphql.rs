//! `POST /v2` (providers.md A2.1, A3, C1): injected failures, the token (raw or `Bearer`), the
//! `API-Version` header (echoed), the JSON body, admission by the minute / concurrency / daily
//! limits, injected latency or a hold, then the GraphQL engine ([`super::schema`]); the answer
//! carries monday's envelope (`account_id`, `extensions.request_id`), its error shape and the
//! `RateLimit-Policy` / `RateLimit` headers.

use super::errors::{refusal_body, shape_body};
use super::limits::Refusal;
use super::meter::Meter;
use super::schema::{Caller, SCHEMA};
use super::Shared;
use crate::fakes::common::{bearer, has_content_type, json, random_token};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// The version answered when the request names none (or a well-formed unknown one).
pub const CURRENT_API_VERSION: &str = "2026-10";

const KNOWN_VERSIONS: [&str; 4] = ["2026-04", "2026-07", "2026-10", "2027-01"];

/// What the checks before the engine let through.
struct Admitted {
    caller: Caller,
    version: String,
    query: String,
    request: Value,
}

/// Releases the request's concurrency slot however the handler ends.
struct InFlight {
    shared: Shared,
    account_id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.lock().unwrap().api.limiter.release(self.account_id);
    }
}

pub(super) async fn graphql(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    shared.lock().unwrap().api.last_headers = headers.clone();
    let admitted = match admit(&shared, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let account_id = admitted.caller.account_id;
    let _slot = InFlight { shared: shared.clone(), account_id };
    let (latency, hold) = {
        let st = shared.lock().unwrap();
        (st.api.latency, st.api.hold.clone())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(hold) = hold {
        hold.pass().await;
    }
    let meter = Arc::new(Mutex::new(Meter::default()));
    let mut request = async_graphql::Request::new(admitted.query.clone())
        .variables(async_graphql::Variables::from_json(admitted.request["variables"].clone()))
        .data(shared.clone())
        .data(admitted.caller)
        .data(meter.clone());
    if let Some(name) = admitted.request["operationName"].as_str() {
        request = request.operation_name(name);
    }
    let response = SCHEMA.execute(request).await;
    let meter = std::mem::take(&mut *meter.lock().unwrap());
    let mut st = shared.lock().unwrap();
    let now = st.clock.unix_ms();
    let tenths = if meter.probe_only || meter.rate_limited { 1 } else { 10 };
    st.api.limiter.count_daily(account_id, now, tenths);
    let body = serde_json::to_value(&response).unwrap_or_default();
    let mut body = shape_body(body, st.api.shape, meter.parse_failed, &admitted.query);
    body["account_id"] = account_id.into();
    body["extensions"] = json!({ "request_id": random_token("req-") });
    let status = StatusCode::from_u16(meter.status.unwrap_or(200)).unwrap_or(StatusCode::OK);
    let mut response = json(status, body);
    set_header(&mut response, "api-version", &admitted.version);
    if let Some(seconds) = meter.retry_after {
        set_header(&mut response, "retry-after", &seconds.to_string());
    }
    rate_headers(&mut response, &mut st, account_id);
    response
}

/// The checks before the engine runs, in monday's order of failure.
fn admit(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Admitted, Box<Response>> {
    let mut st = shared.lock().unwrap();
    st.counters.graphql_calls += 1;
    if let Some(status) = st.api.fail.take() {
        return Err(Box::new(json(
            status,
            json!({ "error_message": "Internal server error", "status_code": status.as_u16() }),
        )));
    }
    let Some((_, grant)) = bearer(headers, true).and_then(|token| st.live_access(&token)) else {
        let body =
            json!({ "errors": [{ "message": "Not Authenticated", "extensions": { "code": "UNAUTHENTICATED" } }] });
        return Err(Box::new(json(StatusCode::UNAUTHORIZED, body)));
    };
    let caller = Caller { account_id: grant.account_id, user_id: grant.user_id, scopes: grant.scopes.clone() };
    let Some(version) = api_version(headers) else {
        let error = error_object("Invalid API version; use YYYY-MM", "InvalidVersionException");
        return Err(Box::new(json(StatusCode::BAD_REQUEST, json!({ "errors": [error] }))));
    };
    let request = has_content_type(headers, "application/json")
        .then(|| serde_json::from_slice::<Value>(body).ok())
        .flatten()
        .filter(|b| b["query"].is_string());
    let Some(request) = request else {
        let error = error_object("POST a JSON body with a query", "BadRequest");
        return Err(Box::new(json(StatusCode::BAD_REQUEST, json!({ "errors": [error] }))));
    };
    let now = st.clock.unix_ms();
    if let Err(refusal) = st.api.limiter.admit(caller.account_id, now) {
        let mut response = refused(refusal, st.api.shape, caller.account_id);
        set_header(&mut response, "api-version", &version);
        rate_headers(&mut response, &mut st, caller.account_id);
        return Err(Box::new(response));
    }
    let query = request["query"].as_str().unwrap_or_default().to_owned();
    Ok(Admitted { caller, version, query, request })
}

/// A request refused by the minute, concurrency or daily limit.
fn refused(refusal: Refusal, shape: super::errors::ErrorShape, account_id: u64) -> Response {
    let (status, retry, error, legacy) = match refusal {
        Refusal::Minute(retry) => (
            StatusCode::TOO_MANY_REQUESTS,
            retry,
            json!({ "message": "Minute limit rate exceeded", "extensions": { "code": "RATE_LIMIT_EXCEEDED",
                "retry_in_seconds": retry, "status_code": 429 } }),
            json!({ "error_message": "Rate Limit Exceeded.", "status_code": 429 }),
        ),
        Refusal::Concurrency(retry) => (
            StatusCode::TOO_MANY_REQUESTS,
            retry,
            json!({ "message": "Concurrency limit exceeded", "extensions": { "code": "maxConcurrencyExceeded",
                "retry_in_seconds": retry, "status_code": 429 } }),
            json!({ "error_message": "Concurrency limit exceeded for the field", "error_code": "FIELD_LIMIT_EXCEEDED",
                "error_data": { "retry_in_seconds": retry, "entity": "boards" }, "status_code": 429 }),
        ),
        // The errors page does not state this status; community reports say 200.
        Refusal::Daily(retry) => (
            StatusCode::OK,
            retry,
            json!({ "message": "Daily limit exceeded", "extensions": { "code": "DAILY_LIMIT_EXCEEDED",
                "retry_in_seconds": retry, "status_code": 429 } }),
            json!({ "error_message": "Daily limit exceeded", "error_code": "DAILY_LIMIT_EXCEEDED",
                "error_data": { "retry_in_seconds": retry }, "status_code": 429 }),
        ),
    };
    let mut body = refusal_body(shape, error, legacy, account_id);
    body["extensions"] = json!({ "request_id": random_token("req-") });
    let mut response = json(status, body);
    set_header(&mut response, "retry-after", &retry.to_string());
    response
}

fn rate_headers(response: &mut Response, st: &mut super::state::MondayState, account_id: u64) {
    let now = st.clock.unix_ms();
    let (policy, current) = st.api.limiter.headers(account_id, now);
    set_header(response, "ratelimit-policy", &policy);
    set_header(response, "ratelimit", &current);
}

fn set_header(response: &mut Response, name: &'static str, value: &str) {
    let value = HeaderValue::from_str(value).expect("fake headers are ASCII");
    response.headers_mut().insert(HeaderName::from_static(name), value);
}

/// The version to answer with, or `None` when the header is malformed.
fn api_version(headers: &HeaderMap) -> Option<String> {
    let Some(raw) = headers.get("api-version") else {
        return Some(CURRENT_API_VERSION.to_owned());
    };
    let raw = raw.to_str().ok()?.trim();
    let well_formed = raw.len() == 7
        && raw.as_bytes()[4] == b'-'
        && raw.bytes().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit());
    match raw {
        "current" => Some(CURRENT_API_VERSION.to_owned()),
        _ if well_formed && KNOWN_VERSIONS.contains(&raw) => Some(raw.to_owned()),
        _ if well_formed => Some(CURRENT_API_VERSION.to_owned()),
        _ => None,
    }
}

fn error_object(message: &str, code: &str) -> Value {
    json!({ "message": message, "extensions": { "code": code } })
}
