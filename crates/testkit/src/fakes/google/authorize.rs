//! `GET /o/oauth2/v2/auth` and the consent page's Approve/Deny posts, plus the same steps for
//! the in-process headless shortcut.

use super::state::{AuthRequest, Code, GoogleState, Grant};
use super::{Shared, ISSUER};
use crate::fakes::common::{random_token, redirect_url, AuthorizeRecord, Challenge, Params, CODE_LIFETIME};
use crate::fakes::html::{error_page, ConsentPage};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::BTreeSet;
use url::Url;

/// Why an authorization request ends: an error page (no redirect) or a redirect to the client.
pub(super) enum Stop {
    Page(StatusCode, &'static str, String),
    Redirect(Url),
}

impl IntoResponse for Stop {
    fn into_response(self) -> Response {
        match self {
            Stop::Page(status, error, message) => error_page(status, error, &message),
            Stop::Redirect(url) => Redirect::to(url.as_str()).into_response(),
        }
    }
}

pub(super) async fn authorize(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let mut st = shared.lock().unwrap();
    let request = match validate(&mut st, &params) {
        Ok(request) => request,
        Err(stop) => return stop.into_response(),
    };
    let request_id = random_token("consent-");
    let hint = request.login_hint.clone().or_else(|| params.non_empty("user").map(str::to_owned));
    let page = ConsentPage {
        provider: "Google",
        client_id: &request.client_id,
        request_id: &request_id,
        approve_action: "/o/oauth2/v2/approve",
        deny_action: "/o/oauth2/v2/deny",
        scopes: request.scopes.iter().map(|s| (s.clone(), !st.switches.dropped_scopes.contains(s))).collect(),
        users: st
            .users
            .iter()
            .map(|u| (u.sub.clone(), u.email.clone(), hint.as_deref().is_some_and(|h| h == u.sub || h == u.email)))
            .collect(),
        sever_opener: st.switches.sever_opener,
    };
    let response = page.render();
    st.pending.insert(request_id, request);
    response
}

/// Checks an authorization request's parameters the way Google does and records it.
pub(super) fn validate(st: &mut GoogleState, params: &Params) -> Result<AuthRequest, Stop> {
    st.counters.authorize.push(AuthorizeRecord { params: params.0.clone() });
    let bad = |message: &str| Stop::Page(StatusCode::BAD_REQUEST, "invalid_request", message.to_owned());
    let client_id = params.non_empty("client_id").ok_or_else(|| bad("Missing required parameter: client_id"))?;
    let Some(client) = st.clients.get(client_id) else {
        return Err(Stop::Page(StatusCode::UNAUTHORIZED, "invalid_client", "The OAuth client was not found.".into()));
    };
    let redirect_uri = params.non_empty("redirect_uri").unwrap_or_default();
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        let message = format!("redirect_uri={redirect_uri} does not match a registered redirect URI");
        return Err(Stop::Page(StatusCode::BAD_REQUEST, "redirect_uri_mismatch", message));
    }
    if params.get("response_type") != Some("code") {
        return Err(bad("Invalid response_type: only code is supported"));
    }
    let scope = params.non_empty("scope").ok_or_else(|| bad("Missing required parameter: scope"))?;
    let access_type = params.get("access_type").unwrap_or("online");
    if access_type != "online" && access_type != "offline" {
        return Err(bad("Invalid access_type"));
    }
    let prompt: Vec<&str> = params.get("prompt").unwrap_or_default().split(' ').filter(|p| !p.is_empty()).collect();
    if prompt.iter().any(|p| !matches!(*p, "none" | "consent" | "select_account")) {
        return Err(bad("Invalid prompt"));
    }
    let challenge = match (params.non_empty("code_challenge"), params.get("code_challenge_method")) {
        (None, None) => None,
        (None, Some(_)) => return Err(bad("code_challenge_method without code_challenge")),
        // An omitted method means `plain` (RFC 7636 §4.3, and Google's documented default).
        (Some(value), None | Some("plain")) => Some(Challenge { value: value.to_owned(), s256: false }),
        (Some(value), Some("S256")) => Some(Challenge { value: value.to_owned(), s256: true }),
        (Some(_), Some(_)) => return Err(bad("Invalid code_challenge_method")),
    };
    let state = params.get("state").map(str::to_owned);
    if prompt.contains(&"none") {
        let url = redirect_url(redirect_uri, &[("error", Some("interaction_required")), ("state", state.as_deref())]);
        return Err(Stop::Redirect(with_iss(st, url)));
    }
    Ok(AuthRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scopes: crate::fakes::common::split_scopes(scope),
        state,
        offline: access_type == "offline",
        prompt_consent: prompt.contains(&"consent"),
        include_granted_scopes: params.get("include_granted_scopes") == Some("true"),
        challenge,
        login_hint: params.non_empty("login_hint").map(str::to_owned),
    })
}

pub(super) async fn approve_form(State(shared): State<Shared>, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let mut st = shared.lock().unwrap();
    let Some(request) = form.get("request_id").and_then(|id| st.pending.remove(id)) else {
        return error_page(StatusCode::BAD_REQUEST, "invalid_request", "Unknown or used consent request");
    };
    let ticked: Vec<String> = form.0.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
    let user = form.get("user").unwrap_or_default().to_owned();
    match approve(&mut st, &request, &user, Some(&ticked)) {
        Ok(url) => see_other(&url),
        Err(stop) => stop.into_response(),
    }
}

pub(super) async fn deny_form(State(shared): State<Shared>, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let mut st = shared.lock().unwrap();
    let Some(request) = form.get("request_id").and_then(|id| st.pending.remove(id)) else {
        return error_page(StatusCode::BAD_REQUEST, "invalid_request", "Unknown or used consent request");
    };
    see_other(&deny(&st, &request))
}

/// What Approve does: records consent, issues a code and builds the redirect. `ticked` is the
/// consent page's checked scopes (`None`: all of them).
pub(super) fn approve(
    st: &mut GoogleState,
    request: &AuthRequest,
    user: &str,
    ticked: Option<&[String]>,
) -> Result<Url, Stop> {
    if st.switches.access_denied {
        return Ok(deny(st, request));
    }
    let Some(sub) = st.user(user).map(|u| u.sub.clone()) else {
        return Err(Stop::Page(StatusCode::BAD_REQUEST, "invalid_request", format!("No such user: {user}")));
    };
    let granted: BTreeSet<String> = request
        .scopes
        .iter()
        .filter(|s| !st.switches.dropped_scopes.contains(*s))
        .filter(|s| ticked.is_none_or(|t| t.contains(s)))
        .cloned()
        .collect();
    let key = (sub.clone(), request.client_id.clone());
    let first_consent = !st.grants.contains_key(&key);
    let next_id = st.next_grant_id;
    let grant = st.grants.entry(key).or_insert_with(|| Grant { id: next_id, scopes: BTreeSet::new() });
    if first_consent {
        st.next_grant_id += 1;
    }
    let scopes: BTreeSet<String> =
        if request.include_granted_scopes { grant.scopes.union(&granted).cloned().collect() } else { granted.clone() };
    grant.scopes.extend(granted);
    let grant_id = grant.id;
    let code = random_token("4/0fake-");
    let scope_param = scopes.iter().cloned().collect::<Vec<_>>().join(" ");
    st.codes.insert(
        code.clone(),
        Code {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            grant_id,
            sub,
            scopes,
            challenge: request.challenge.clone(),
            // A refresh token comes with offline access on the first consent, or when the
            // client forces the consent screen again.
            issue_refresh: request.offline && (first_consent || request.prompt_consent),
            expires_at: st.clock.now() + CODE_LIFETIME,
            used: false,
        },
    );
    let url = redirect_url(
        &request.redirect_uri,
        &[("code", Some(&code)), ("scope", Some(&scope_param)), ("state", request.state.as_deref())],
    );
    Ok(with_iss(st, url))
}

/// What Deny does: `error=access_denied` with the state echoed.
pub(super) fn deny(st: &GoogleState, request: &AuthRequest) -> Url {
    let url =
        redirect_url(&request.redirect_uri, &[("error", Some("access_denied")), ("state", request.state.as_deref())]);
    with_iss(st, url)
}

fn with_iss(st: &GoogleState, mut url: Url) -> Url {
    st.switches.iss.append(&mut url, ISSUER);
    url
}

fn see_other(url: &Url) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, url.as_str().to_owned())]).into_response()
}
