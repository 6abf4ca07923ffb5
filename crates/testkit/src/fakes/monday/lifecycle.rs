//! New-flow revocation, legacy→new migration and the RFC 8414 discovery document.

use super::state::Grant;
use super::token::{authenticate, issue_access, issue_refresh};
use super::Shared;
use crate::fakes::common::{has_content_type, json, oauth_error, OAuthError, Revocation};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use serde_json::{json, Value};

fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    let parsed = if has_content_type(headers, "application/json") { serde_json::from_slice(body).ok() } else { None };
    parsed
        .filter(Value::is_object)
        .ok_or_else(|| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", Some("Body must be a JSON object")))
}

pub(super) async fn revoke(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = shared.lock().unwrap();
    let body = json_body(&headers, &body);
    let field = |name: &str| body.as_ref().ok().and_then(|b| b.get(name)).and_then(Value::as_str);
    // Every call is recorded, whatever the behaviour and the answer.
    let token = field("token").unwrap_or_default().to_owned();
    let kind = st.token_kind(&token);
    let hint = field("token_type_hint").map(str::to_owned);
    st.counters.revoked.push(token.clone());
    st.counters.revocations.push(Revocation { token: token.clone(), kind, via_query: false, hint, effective: false });
    if let Some(response) = st.switches.revoke.misbehave() {
        return response;
    }
    if let Err(error) = &body {
        return OAuthError::new(error.status, error.error, error.description).into_response();
    }
    if let Err(error) = authenticate(&st, field("client_id").unwrap_or_default(), field("client_secret")) {
        return error.into_response();
    }
    let grant_id =
        st.access_tokens.get(&token).map(|a| a.grant_id).or_else(|| st.refresh_tokens.get(&token).map(|r| r.grant_id));
    // Either token ends the grant. Unknown tokens succeed too (RFC 7009 §2.2).
    if let Some(grant_id) = grant_id {
        let alive = st.grants.get(&grant_id).is_some_and(|g| g.alive);
        st.kill_grant(grant_id);
        if let Some(last) = st.counters.revocations.last_mut() {
            last.effective = alive;
        }
    }
    json(StatusCode::OK, json!({ "success": true }))
}

pub(super) async fn migrate(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = shared.lock().unwrap();
    st.counters.migrate_calls += 1;
    if st.switches.migrate_throttled {
        return oauth_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", Some("Try again in 5 minutes"));
    }
    let body = match json_body(&headers, &body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    let client_id = field("client_id").unwrap_or_default();
    if let Err(error) = authenticate(&st, client_id, field("client_secret")) {
        return error.into_response();
    }
    let api_token = field("api_token").unwrap_or_default();
    let Some((legacy_id, legacy)) = st.live_access(api_token) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", Some("The api_token is not valid"));
    };
    if !legacy.legacy {
        return oauth_error(StatusCode::BAD_REQUEST, "already_oauth_token", None);
    }
    if legacy.client_id != client_id {
        return oauth_error(StatusCode::BAD_REQUEST, "api_app_id_mismatch", None);
    }
    let successor = Grant {
        client_id: client_id.to_owned(),
        user_id: legacy.user_id,
        account_id: legacy.account_id,
        scopes: legacy.scopes.clone(),
        legacy: false,
        alive: true,
        current_refresh: None,
    };
    // Idempotent per legacy token: a second call answers with the same (live) grant.
    let existing = st.migrations.get(api_token).copied().filter(|id| st.grants.get(id).is_some_and(|g| g.alive));
    let (grant_id, already_migrated) = match existing {
        Some(grant_id) => (grant_id, true),
        None => {
            let grant_id = st.next_id();
            st.grants.insert(grant_id, successor);
            st.migrations.insert(api_token.to_owned(), grant_id);
            (grant_id, false)
        }
    };
    let access = issue_access(&mut st, grant_id);
    let refresh = match st.grants[&grant_id].current_refresh.clone() {
        Some(current) => current,
        None => issue_refresh(&mut st, grant_id),
    };
    json(
        StatusCode::OK,
        json!({
            "access_token": access, "refresh_token": refresh, "token_type": "Bearer",
            "expires_in": st.switches.access_lifetime, "already_migrated": already_migrated,
            "migrated_from": { "api_token_id": legacy_id },
        }),
    )
}

pub(super) async fn discovery(State(shared): State<Shared>) -> Response {
    let st = shared.lock().unwrap();
    let base = st.base.clone().expect("the base URL is set at start");
    let at = |path: &str| base.join(path).expect("a relative path joins the base URL").to_string();
    json(
        StatusCode::OK,
        json!({
            "issuer": st.switches.issuer,
            "authorization_endpoint": at("oauth2/authorize"),
            "token_endpoint": at("oauth_ms/oauth/token"),
            "registration_endpoint": at("oauth_ms/oauth/register"),
            "revocation_endpoint": at("oauth_ms/oauth/revoke"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
        }),
    )
}
