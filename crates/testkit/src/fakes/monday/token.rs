//! The two token endpoints: legacy `POST /oauth2/token` (form, permanent token) and the new
//! `POST /oauth_ms/oauth/token` (JSON, PKCE, expiring JWTs, rotating refresh tokens with reuse
//! detection).

use super::state::{Access, Code, Grant, MondayState, Refresh};
use super::Shared;
use crate::fakes::common::{has_content_type, hold_if_refresh, json, oauth_error, random_token, OAuthError, Params};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use serde_json::{json, Value};

pub(super) async fn legacy_token(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = shared.lock().unwrap();
    *st.counters.token_calls.entry("legacy".to_owned()).or_default() += 1;
    if let Some(status) = st.switches.fail_token.take() {
        return oauth_error(status, "server_error", Some("Injected failure"));
    }
    if !has_content_type(&headers, "application/x-www-form-urlencoded") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", Some("Body must be form-encoded"));
    }
    let form = Params::parse(&body);
    let client_id = form.get("client_id").unwrap_or_default();
    if let Err(error) = authenticate(&st, client_id, form.get("client_secret")) {
        return error.into_response();
    }
    // The legacy flow has no PKCE: a `code_verifier` is ignored.
    let code = match redeem(&mut st, client_id, form.get("code"), form.get("redirect_uri")) {
        Ok(code) => code,
        Err(error) => return error.into_response(),
    };
    let grant_id = new_grant(&mut st, &code, true);
    let access = access_jwt(&st, grant_id, None);
    st.access_tokens.insert(access.clone(), Access { grant_id, exp: None });
    json(StatusCode::OK, json!({ "access_token": access, "token_type": "Bearer", "scope": code.scopes.join(" ") }))
}

pub(super) async fn v2_token(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let is_json = has_content_type(&headers, "application/json");
    let body: Value = if is_json { serde_json::from_slice(&body).unwrap_or(Value::Null) } else { Value::Null };
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    // A held refresh waits here, before it is counted or answered, without holding the lock.
    let hold = shared.lock().unwrap().switches.refresh_hold.clone();
    hold_if_refresh(hold, field("grant_type").unwrap_or_default()).await;
    let mut st = shared.lock().unwrap();
    *st.counters.token_calls.entry(field("grant_type").unwrap_or_default().to_owned()).or_default() += 1;
    if let Some(status) = st.switches.fail_token.take() {
        return oauth_error(status, "server_error", Some("Injected failure"));
    }
    if !body.is_object() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", Some("Body must be a JSON object"));
    }
    let client_id = field("client_id").unwrap_or_default();
    if let Err(error) = authenticate(&st, client_id, field("client_secret")) {
        return error.into_response();
    }
    match field("grant_type").unwrap_or_default() {
        "authorization_code" => exchange(&mut st, client_id, &body),
        "refresh_token" => refresh(&mut st, client_id, field("refresh_token").unwrap_or_default()),
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", None),
    }
}

fn exchange(st: &mut MondayState, client_id: &str, body: &Value) -> Response {
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    let code = match redeem(st, client_id, field("code"), field("redirect_uri")) {
        Ok(code) => code,
        Err(error) => return error.into_response(),
    };
    if let Some(challenge) = &code.challenge {
        if !field("code_verifier").is_some_and(|v| challenge.verifies(v)) {
            return invalid_grant("code_verifier is missing or does not match the code_challenge").into_response();
        }
    }
    let grant_id = new_grant(st, &code, false);
    json(StatusCode::OK, token_body(st, grant_id))
}

fn refresh(st: &mut MondayState, client_id: &str, presented: &str) -> Response {
    st.counters.presented_refresh_tokens.push(presented.to_owned());
    let Some(refresh) = st.refresh_tokens.get(presented) else {
        return invalid_grant("Unknown refresh token").into_response();
    };
    let grant_id = refresh.grant_id;
    let rotated = refresh.rotated;
    let Some(grant) = st.grants.get(&grant_id).filter(|g| g.client_id == client_id) else {
        return invalid_grant("Unknown refresh token").into_response();
    };
    if !grant.alive {
        return invalid_grant("The grant has been revoked").into_response();
    }
    if rotated {
        // Reuse of a rotated refresh token: someone holds a stale copy, so the whole grant dies
        // (RFC 9700 §4.14.2).
        st.kill_grant(grant_id);
        return invalid_grant("Refresh token reuse detected; the grant was revoked").into_response();
    }
    if let Some(old) = st.refresh_tokens.get_mut(presented) {
        old.rotated = true;
    }
    json(StatusCode::OK, token_body(st, grant_id))
}

/// New access and refresh tokens for a live new-flow grant, as the token response (no
/// `expires_in`: the JWT's `exp` says when it expires).
pub(super) fn token_body(st: &mut MondayState, grant_id: u64) -> Value {
    let access = issue_access(st, grant_id);
    let refresh = issue_refresh(st, grant_id);
    let scope = st.grants.get(&grant_id).map(|g| g.scopes.join(" ")).unwrap_or_default();
    json!({ "access_token": access, "refresh_token": refresh, "token_type": "Bearer", "scope": scope })
}

/// A new access JWT for a new-flow grant, expiring after the configured lifetime.
pub(super) fn issue_access(st: &mut MondayState, grant_id: u64) -> String {
    let exp = st.clock.unix() + st.switches.access_lifetime;
    let access = access_jwt(st, grant_id, Some(exp));
    st.access_tokens.insert(access.clone(), Access { grant_id, exp: Some(exp) });
    access
}

/// A new refresh token, which becomes the grant's only valid one.
pub(super) fn issue_refresh(st: &mut MondayState, grant_id: u64) -> String {
    let refresh = random_token("mrt-");
    st.refresh_tokens.insert(refresh.clone(), Refresh { grant_id, rotated: false });
    if let Some(grant) = st.grants.get_mut(&grant_id) {
        grant.current_refresh = Some(refresh.clone());
    }
    refresh
}

pub(super) fn authenticate(st: &MondayState, client_id: &str, secret: Option<&str>) -> Result<(), OAuthError> {
    match st.clients.get(client_id) {
        Some(client) if Some(client.secret.as_str()) == secret => Ok(()),
        _ => Err(OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", Some("Client authentication failed"))),
    }
}

fn invalid_grant(description: &'static str) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", Some(description))
}

/// Burns a code and checks it belongs to this client and this `redirect_uri`.
fn redeem(
    st: &mut MondayState,
    client_id: &str,
    code: Option<&str>,
    redirect_uri: Option<&str>,
) -> Result<Code, OAuthError> {
    let now = st.clock.now();
    let Some(record) = code.and_then(|c| st.codes.get_mut(c)) else {
        return Err(invalid_grant("Invalid authorization code"));
    };
    if record.used || record.expires_at <= now || record.client_id != client_id {
        return Err(invalid_grant("Invalid authorization code"));
    }
    record.used = true;
    // Sent at /authorize ⇒ required and equal here; defaulted ⇒ optional but equal if present.
    let redirect_ok = match redirect_uri {
        Some(uri) => uri == record.redirect_uri,
        None => !record.redirect_uri_sent,
    };
    if !redirect_ok {
        return Err(invalid_grant("redirect_uri is missing or does not match"));
    }
    Ok(record.clone())
}

fn new_grant(st: &mut MondayState, code: &Code, legacy: bool) -> u64 {
    let id = st.next_id();
    let grant = Grant {
        client_id: code.client_id.clone(),
        user_id: code.user_id,
        account_id: code.account_id,
        scopes: code.scopes.clone(),
        legacy,
        alive: true,
        current_refresh: None,
    };
    st.grants.insert(id, grant);
    id
}

/// A token that looks like monday's (a JWT) and is signed with the fake's own key.
pub(super) fn access_jwt(st: &MondayState, grant_id: u64, exp: Option<u64>) -> String {
    let grant = &st.grants[&grant_id];
    let mut claims = json!({
        "uid": grant.user_id, "actid": grant.account_id, "aai": grant.client_id,
        "scp": grant.scopes.join(" "), "iat": st.clock.unix(), "jti": random_token(""),
    });
    if let Some(exp) = exp {
        claims["exp"] = exp.into();
    }
    let key = jsonwebtoken::EncodingKey::from_secret(&st.jwt_key);
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("HS256 signing cannot fail")
}
