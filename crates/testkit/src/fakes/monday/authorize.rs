//! `GET /oauth2/authorize` and the consent page's Approve/Deny posts, plus the same steps for the
//! in-process headless shortcut.

use super::state::{AuthRequest, Code, MondayState};
use super::Shared;
use crate::fakes::common::{
    random_token, redirect_url, split_scopes, AuthorizeRecord, Challenge, Params, CODE_LIFETIME,
};
use crate::fakes::html::{error_page, ConsentPage};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use url::Url;

/// Why an authorization request ends: an error page (no redirect) or a redirect to the app.
pub(super) enum Stop {
    Page(StatusCode, &'static str, String),
    Redirect(Url),
}

impl IntoResponse for Stop {
    fn into_response(self) -> Response {
        match self {
            Stop::Page(status, error, message) => error_page(status, error, &message),
            Stop::Redirect(url) => see_other(&url),
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
    let hint = params.non_empty("user");
    let users = st
        .users
        .iter()
        .filter_map(|u| {
            let account = st.account(u.account_id)?;
            if request.subdomain.as_deref().is_some_and(|slug| slug != account.slug) {
                return None;
            }
            let label = format!("{} <{}> — {}", u.name, u.email, account.slug);
            let id = u.id.to_string();
            let selected = hint.is_some_and(|h| h == id || h.eq_ignore_ascii_case(&u.email));
            Some((id, label, selected))
        })
        .collect();
    let page = ConsentPage {
        provider: "monday.com",
        client_id: &request.client_id,
        request_id: &request_id,
        approve_action: "/oauth2/approve",
        deny_action: "/oauth2/deny",
        scopes: request.scopes.iter().map(|s| (s.clone(), true)).collect(),
        users,
        sever_opener: st.switches.sever_opener,
    };
    let response = page.render();
    st.pending.insert(request_id, request);
    response
}

/// Checks an authorization request's parameters the way monday does and records it.
pub(super) fn validate(st: &mut MondayState, params: &Params) -> Result<AuthRequest, Stop> {
    st.counters.authorize.push(AuthorizeRecord { params: params.0.clone() });
    let page = |error: &'static str, message: &str| Stop::Page(StatusCode::BAD_REQUEST, error, message.to_owned());
    let client_id = params.non_empty("client_id").ok_or_else(|| page("invalid_request", "client_id is required"))?;
    let client = st.clients.get(client_id).ok_or_else(|| page("invalid_client", "Unknown client_id"))?;
    let redirect_uri = match params.non_empty("redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
        Some(_) => return Err(page("invalid_request", "redirect_uri is not registered for this app")),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(page("invalid_request", "redirect_uri is required")),
    };
    let state = params.get("state").map(str::to_owned);
    let fail = |error: &str, description: &str| {
        let pairs = [("error", Some(error)), ("error_description", Some(description)), ("state", state.as_deref())];
        // Error redirects carry `iss` too (RFC 9207 §2), as the switch says.
        let mut url = redirect_url(&redirect_uri, &pairs);
        st.switches.iss.append(&mut url, &st.switches.issuer);
        Stop::Redirect(url)
    };
    let scopes = match params.get("scope") {
        None => client.scopes.clone(),
        Some(raw) => split_scopes(raw),
    };
    if let Some(unknown) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return Err(fail("invalid_scope", &format!("Scope {unknown} is not configured for this app")));
    }
    let challenge = match (params.non_empty("code_challenge"), params.get("code_challenge_method")) {
        (None, None) => None,
        // Only S256: `plain`, or an omitted method (which means plain), is refused.
        (Some(value), Some("S256")) if (43..=128).contains(&value.len()) => {
            Some(Challenge { value: value.to_owned(), s256: true })
        }
        _ => return Err(fail("invalid_request", "code_challenge with code_challenge_method=S256 is required")),
    };
    Ok(AuthRequest {
        client_id: client_id.to_owned(),
        redirect_uri,
        redirect_uri_sent: params.non_empty("redirect_uri").is_some(),
        scopes,
        state,
        challenge,
        subdomain: params.non_empty("subdomain").map(str::to_owned),
    })
}

pub(super) async fn approve_form(State(shared): State<Shared>, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let mut st = shared.lock().unwrap();
    let Some(request) = form.get("request_id").and_then(|id| st.pending.remove(id)) else {
        return error_page(StatusCode::BAD_REQUEST, "invalid_request", "Unknown or used consent request");
    };
    match approve(&mut st, &request, form.get("user").unwrap_or_default()) {
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
    see_other(&error_redirect(&st, &request, "access_denied"))
}

/// What Approve does as `user` (id or email): a code, or the redirect a switch asks for.
pub(super) fn approve(st: &mut MondayState, request: &AuthRequest, user: &str) -> Result<Url, Stop> {
    if st.switches.access_denied {
        return Ok(error_redirect(st, request, "access_denied"));
    }
    let Some((user_id, account_id)) = st.user(user).map(|u| (u.id, u.account_id)) else {
        return Err(Stop::Page(StatusCode::BAD_REQUEST, "invalid_request", format!("No such user: {user}")));
    };
    let Some(account) = st.account(account_id) else {
        return Err(Stop::Page(StatusCode::BAD_REQUEST, "invalid_request", "The user has no account".into()));
    };
    if request.subdomain.as_deref().is_some_and(|slug| slug != account.slug) {
        return Err(Stop::Page(StatusCode::BAD_REQUEST, "invalid_request", "The user is not in that account".into()));
    }
    if !account.installed {
        return Ok(error_redirect(st, request, "unauthorized_client"));
    }
    let code = random_token("mcode-");
    let record = Code {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_sent: request.redirect_uri_sent,
        user_id,
        account_id,
        scopes: request.scopes.clone(),
        challenge: request.challenge.clone(),
        expires_at: st.clock.now() + CODE_LIFETIME,
        used: false,
    };
    st.codes.insert(code.clone(), record);
    let mut url = redirect_url(&request.redirect_uri, &[("code", Some(&code)), ("state", request.state.as_deref())]);
    st.switches.iss.append(&mut url, &st.switches.issuer);
    Ok(url)
}

/// A redirect with `error` (state echoed, on denial too).
fn error_redirect(st: &MondayState, request: &AuthRequest, error: &str) -> Url {
    let mut url = redirect_url(&request.redirect_uri, &[("error", Some(error)), ("state", request.state.as_deref())]);
    st.switches.iss.append(&mut url, &st.switches.issuer);
    url
}

fn see_other(url: &Url) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, url.as_str().to_owned())]).into_response()
}
