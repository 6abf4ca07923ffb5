//! `POST /revoke` and `GET /v1/userinfo`. A token in a URL is accepted, as Google does, but
//! recorded as a violation.

use super::Shared;
use crate::fakes::common::{bearer, json, oauth_error, Params, Revocation, TokenKind};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(super) async fn revoke(State(shared): State<Shared>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let query = Params::parse(query.unwrap_or_default().as_bytes());
    let form = Params::parse(&body);
    let mut st = shared.lock().unwrap();
    let (token, via_query) = match (form.non_empty("token"), query.non_empty("token")) {
        (Some(token), _) => (token.to_owned(), false),
        (None, Some(token)) => (token.to_owned(), true),
        (None, None) => (String::new(), false),
    };
    if query.non_empty("token").is_some() {
        st.counters.url_token_violations.push(format!("/revoke?token={token}"));
    }
    let hint = form.non_empty("token_type_hint").or(query.non_empty("token_type_hint")).map(str::to_owned);
    let kind = st.token_kind(&token);
    st.counters.revocations.push(Revocation { token: token.clone(), kind, via_query, hint, effective: false });
    if let Some(response) = st.switches.revoke.misbehave() {
        return response;
    }
    if token.is_empty() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", Some("Missing token"));
    }
    let live = |t: &super::state::Token| !t.revoked;
    let grant_id = match kind {
        TokenKind::Access => st.access_tokens.get(&token).filter(|t| live(t)).map(|t| t.grant_id),
        TokenKind::Refresh => st.refresh_tokens.get(&token).filter(|t| live(t)).map(|t| t.grant_id),
        TokenKind::Unknown => None,
    };
    match grant_id {
        Some(grant_id) => {
            // Revoking either token ends the grant: the access and refresh tokens both die.
            st.kill_grant(grant_id);
            if let Some(last) = st.counters.revocations.last_mut() {
                last.effective = true;
            }
            json(StatusCode::OK, json!({}))
        }
        None => oauth_error(StatusCode::BAD_REQUEST, "invalid_token", Some("Token expired or revoked")),
    }
}

pub(super) async fn userinfo(State(shared): State<Shared>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let query = Params::parse(query.unwrap_or_default().as_bytes());
    let mut st = shared.lock().unwrap();
    st.counters.userinfo_calls += 1;
    if let Some(token) = query.non_empty("access_token") {
        st.counters.url_token_violations.push(format!("/v1/userinfo?access_token={token}"));
    }
    let presented = bearer(&headers, false).or_else(|| query.non_empty("access_token").map(str::to_owned));
    let Some(token) = presented.as_deref().and_then(|t| st.live_access_token(t)) else {
        return unauthorized();
    };
    let Some(user) = st.user(&token.sub) else {
        return unauthorized();
    };
    json(StatusCode::OK, json!({ "sub": user.sub, "email": user.email, "email_verified": true, "name": user.name }))
}

/// Google's answer to a missing, expired or revoked token at the userinfo endpoint.
fn unauthorized() -> Response {
    let mut response = oauth_error(StatusCode::UNAUTHORIZED, "invalid_request", Some("Invalid Credentials"));
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\""),
    );
    response.into_response()
}
