//! `POST /v2`, GraphQL just far enough for identity: the `me` query, token checks (raw or
//! `Bearer`), `API-Version` echo and monday's response envelope.

use super::Shared;
use crate::fakes::common::{bearer, has_content_type, json, random_token};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

/// The version answered when the request names none (or a well-formed unknown one).
pub const CURRENT_API_VERSION: &str = "2026-10";

const KNOWN_VERSIONS: [&str; 4] = ["2026-04", "2026-07", "2026-10", "2027-01"];

pub(super) async fn graphql(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = shared.lock().unwrap();
    st.counters.graphql_calls += 1;
    let Some((_, grant)) = bearer(&headers, true).and_then(|token| st.live_access(&token)) else {
        let body =
            json!({ "errors": [{ "message": "Not Authenticated", "extensions": { "code": "UNAUTHENTICATED" } }] });
        return json(StatusCode::UNAUTHORIZED, body);
    };
    let Some(version) = api_version(&headers) else {
        let error = error_object("Invalid API version; use YYYY-MM", "InvalidVersionException");
        return json(StatusCode::BAD_REQUEST, json!({ "errors": [error] }));
    };
    let query = if has_content_type(&headers, "application/json") {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|b| b.get("query").and_then(Value::as_str).map(str::to_owned))
    } else {
        None
    };
    let Some(query) = query else {
        let error = error_object("POST a JSON body with a query", "BadRequest");
        return json(StatusCode::BAD_REQUEST, json!({ "errors": [error] }));
    };
    let account_id = grant.account_id;
    let envelope = |mut body: Value| {
        body["account_id"] = account_id.into();
        body["extensions"] = json!({ "request_id": random_token("req-") });
        body
    };
    let answer = if !mentions_field(&query, "me") {
        envelope(json!({ "errors": [error_object("The fake answers only the `me` query", "undefinedField")] }))
    } else if !grant.scopes.iter().any(|s| s == "me:read") {
        let error =
            error_object("Permission Denied! Your token doesn't grant access to me:read", "missingRequiredPermissions");
        envelope(json!({ "data": null, "errors": [error] }))
    } else {
        let user = st.users.iter().find(|u| u.id == grant.user_id);
        let account = st.account(account_id);
        let me = match (user, account) {
            (Some(user), Some(account)) => json!({
                "id": user.id.to_string(), "name": user.name, "email": user.email,
                "account": { "id": account.id.to_string(), "name": account.name, "slug": account.slug },
            }),
            _ => Value::Null,
        };
        envelope(json!({ "data": { "me": me } }))
    };
    let mut response = json(StatusCode::OK, answer);
    let value = HeaderValue::from_str(&version).expect("a validated version is a header value");
    response.headers_mut().insert(HeaderName::from_static("api-version"), value);
    response
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

/// Whether `name` appears in the query as a whole word (good enough to spot a field).
fn mentions_field(query: &str, name: &str) -> bool {
    query.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|word| word == name)
}
