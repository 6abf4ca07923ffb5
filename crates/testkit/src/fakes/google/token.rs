//! `POST /token`: form-encoded only; the authorization-code and refresh-token grants with
//! Google's answers (refresh token only on a fresh consent, never on refresh).

use super::state::{GoogleState, Token};
use super::{Shared, ISSUER};
use crate::fakes::common::{has_content_type, hold_if_refresh, json, oauth_error, random_token, OAuthError, Params};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

const FORM: &str = "application/x-www-form-urlencoded";

pub(super) async fn token(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let grant_type = if has_content_type(&headers, FORM) { form.get("grant_type").unwrap_or_default() } else { "" };
    // A held refresh waits here, before it is counted or answered, without holding the lock.
    let hold = shared.lock().unwrap().switches.refresh_hold.clone();
    hold_if_refresh(hold, grant_type).await;
    let mut st = shared.lock().unwrap();
    *st.counters.token_calls.entry(grant_type.to_owned()).or_default() += 1;
    if let Some(status) = st.switches.fail_token.take() {
        return oauth_error(status, "internal_failure", Some("Injected failure"));
    }
    if !has_content_type(&headers, FORM) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", Some("Body must be form-encoded"));
    }
    let client_id = match authenticate(&st, &headers, &form) {
        Ok(client_id) => client_id,
        Err(error) => return error.into_response(),
    };
    match grant_type {
        "authorization_code" => exchange(&mut st, &client_id, &form),
        "refresh_token" => refresh(&mut st, &client_id, &form),
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", Some("Invalid grant_type")),
    }
}

/// Client authentication by form fields or HTTP Basic (RFC 6749 §2.3.1).
fn authenticate(st: &GoogleState, headers: &HeaderMap, form: &Params) -> Result<String, OAuthError> {
    let (id, secret) = basic_credentials(headers)
        .or_else(|| Some((form.get("client_id")?.to_owned(), form.get("client_secret").unwrap_or_default().to_owned())))
        .ok_or_else(|| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", Some("Missing client_id")))?;
    match st.clients.get(&id) {
        None => {
            Err(OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", Some("The OAuth client was not found.")))
        }
        Some(client) if client.secret != secret => {
            Err(OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", Some("Unauthorized")))
        }
        Some(_) => Ok(id),
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // Both halves are form-urlencoded before encoding (RFC 6749 §2.3.1).
    let unescape =
        |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((unescape(id)?, unescape(secret)?))
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", Some(description))
}

fn exchange(st: &mut GoogleState, client_id: &str, form: &Params) -> Response {
    let now = st.clock.now();
    let Some(code) = form.get("code").and_then(|c| st.codes.get_mut(c)) else {
        return invalid_grant("Bad Request");
    };
    if code.used || code.expires_at <= now || code.client_id != client_id {
        return invalid_grant("Bad Request");
    }
    // Any redemption attempt by the right client burns the code.
    code.used = true;
    if form.get("redirect_uri") != Some(code.redirect_uri.as_str()) {
        return oauth_error(StatusCode::BAD_REQUEST, "redirect_uri_mismatch", Some("Bad Request"));
    }
    if let Some(challenge) = &code.challenge {
        match form.non_empty("code_verifier") {
            None => return invalid_grant("Missing code verifier."),
            Some(verifier) if !challenge.verifies(verifier) => return invalid_grant("Invalid code verifier."),
            Some(_) => {}
        }
    }
    let (grant_id, sub, scopes, issue_refresh) =
        (code.grant_id, code.sub.clone(), code.scopes.clone(), code.issue_refresh);
    if !st.grant_alive(grant_id) {
        return invalid_grant("Bad Request");
    }
    let mut body = issue_access(st, grant_id, &sub, client_id, &scopes);
    if issue_refresh {
        let refresh = random_token("1//fake-");
        let record = Token { grant_id, sub, client_id: client_id.to_owned(), scopes, expires_at: None, revoked: false };
        st.refresh_tokens.insert(refresh.clone(), record);
        body["refresh_token"] = refresh.into();
    }
    json(StatusCode::OK, body)
}

fn refresh(st: &mut GoogleState, client_id: &str, form: &Params) -> Response {
    let presented = form.get("refresh_token").unwrap_or_default().to_owned();
    *st.counters.refresh_calls.entry(presented.clone()).or_default() += 1;
    let Some(token) = st.refresh_tokens.get(&presented) else {
        return invalid_grant("Bad Request");
    };
    if token.client_id != client_id {
        return oauth_error(StatusCode::BAD_REQUEST, "unauthorized_client", Some("Unauthorized"));
    }
    if token.revoked {
        return invalid_grant("Token has been expired or revoked.");
    }
    let (grant_id, sub, scopes) = (token.grant_id, token.sub.clone(), token.scopes.clone());
    // Google does not rotate refresh tokens: the answer carries no new one.
    json(StatusCode::OK, issue_access(st, grant_id, &sub, client_id, &scopes))
}

/// A new access token (and an ID token when `openid` was granted) as a token-response body.
pub(super) fn issue_access(
    st: &mut GoogleState,
    grant_id: u64,
    sub: &str,
    client_id: &str,
    scopes: &BTreeSet<String>,
) -> serde_json::Value {
    let access = random_token("ya29.fake-");
    let expires_in = st.switches.expires_in;
    let expires_at = Some(st.clock.now() + Duration::from_secs(expires_in));
    let record = Token {
        grant_id,
        sub: sub.to_owned(),
        client_id: client_id.to_owned(),
        scopes: scopes.clone(),
        expires_at,
        revoked: false,
    };
    st.access_tokens.insert(access.clone(), record);
    let mut body = json!({
        "access_token": access,
        "expires_in": expires_in,
        "scope": scopes.iter().cloned().collect::<Vec<_>>().join(" "),
        "token_type": "Bearer",
    });
    if scopes.contains("openid") {
        body["id_token"] = id_token(st, sub, client_id).into();
    }
    body
}

fn id_token(st: &GoogleState, sub: &str, client_id: &str) -> String {
    let email = st.user(sub).map(|u| u.email.clone()).unwrap_or_default();
    let now = st.clock.unix();
    let claims = json!({
        "iss": ISSUER, "aud": client_id, "sub": sub, "email": email, "email_verified": true,
        "iat": now, "exp": now + 3600,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(&st.jwt_key);
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("HS256 signing cannot fail")
}
