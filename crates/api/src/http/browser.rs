//! The browser's side of a connect: the confirmation page (`GET /connect/{token}`), the POST
//! that redirects to the provider with the per-state cookie, and the provider's callback.

use super::client_ip::ClientAddr;
use super::pages;
use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use patchbay_connect::{answer, Answer, CallbackQuery, ConnectError, StateCookie};

/// Browser routes (not part of the JSON API document).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/connect/{token}", get(confirmation).post(submit))
        .route("/oauth/{provider}/callback", get(callback))
}

/// `GET /connect/{token}`: the confirmation page; never consumes the token.
async fn confirmation(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match state.connect.confirmation(&token, Utc::now()).await {
        Ok(confirmation) => pages::confirmation(&token, &confirmation),
        Err(e) => error_page(e),
    }
}

/// `POST /connect/{token}`: consumes the session and redirects to the provider.
async fn submit(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let redirect = match state.connect.begin(&token, Utc::now()).await {
        Ok(redirect) => redirect,
        Err(ConnectError::LinkUsed) => {
            return pages::error(StatusCode::GONE, "This connect link has expired or was already used.")
        }
        Err(e) => return error_page(e),
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let (Ok(location), Ok(cookie)) =
        (HeaderValue::from_str(redirect.location.as_str()), HeaderValue::from_str(&redirect.cookie.header()))
    {
        headers.insert(header::LOCATION, location);
        headers.insert(header::SET_COOKIE, cookie);
    }
    if redirect.keep_opener {
        // Browsers apply COOP to redirect responses too: the default `same-origin` would sever the
        // popup from the app on its way to the provider.
        headers.insert("cross-origin-opener-policy", HeaderValue::from_static("unsafe-none"));
    }
    response
}

/// `GET /oauth/{provider}/callback`.
async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let query = CallbackQuery::parse(query.as_deref().unwrap_or_default());
    let finished = match state.connect.callback(&provider, query, |name| cookies(&headers, name), client.audit()).await
    {
        Ok(finished) => finished,
        Err(e) => return error_page(e),
    };
    let mut response = match answer(&finished.session, &finished.outcome) {
        Answer::Redirect(target) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(target.as_str()) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Answer::Popup { origin, message } => pages::popup_result(&origin, &message),
        Answer::NoWayBack => pages::error(StatusCode::BAD_REQUEST, "The connect session has no way back to the app."),
    };
    let secure = state.settings.http.public_url.scheme() == "https";
    if let Ok(value) = HeaderValue::from_str(&StateCookie::clearing(&finished.cookie_name, secure)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Every value the request carries for cookie `name`.
fn cookies(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .collect()
}

/// The HTML page for a connect that cannot go on.
fn error_page(error: ConnectError) -> Response {
    match error {
        ConnectError::LinkUsed => {
            pages::error(StatusCode::NOT_FOUND, "This connect link has expired or was already used.")
        }
        ConnectError::InvalidState => {
            pages::error(StatusCode::BAD_REQUEST, "This sign-in response has expired or was already used.")
        }
        ConnectError::ProviderDisabled(_) => pages::error(StatusCode::BAD_REQUEST, "This provider is not enabled."),
        ConnectError::NotFound => pages::error(StatusCode::NOT_FOUND, "This connect link is not valid."),
        other => {
            tracing::error!(error = %other, code = other.code(), "connect flow failed before reaching the app");
            let mut response = pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Patchbay is temporarily unavailable; try again shortly.",
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
    }
}
