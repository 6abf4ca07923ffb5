//! Connect routes: `/v1/connect-sessions` for the app, `/connect/{token}` and
//! `/oauth/{provider}/callback` for the browser.

use super::extract::{ApiJson, ApiPath};
use super::problem::{ApiError, Problem, ProblemCode};
use crate::auth::{Need, Principal, PrincipalKind};
use crate::connect::{flow, pages, random_token, sha256 as token_hash, targets};
use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use patchbay_store::{
    ConnectMode, ConnectOutcome, ConnectSession, ConnectSessionId, ConnectionId, NewConnectSession, UserId,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long a connect session's token is valid.
const SESSION_TTL_MINUTES: i64 = 10;

pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_session)).routes(routes!(get_session))
}

/// Browser routes (not part of the JSON API document).
pub fn browser_router() -> Router<AppState> {
    Router::new()
        .route("/connect/{token}", get(connect_page).post(connect_submit))
        .route("/oauth/{provider}/callback", get(callback))
}

/// Start a connect.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectSessionIn {
    /// `google` or `monday`.
    pub provider: String,
    #[schema(value_type = String, example = "redirect")]
    pub mode: ConnectMode,
    /// Redirect mode: where the browser returns (its origin must be on PATCHBAY_RETURN_TO_ORIGINS).
    pub return_to: Option<String>,
    /// Popup mode: the exact origin of the page that opened the popup.
    pub opener_origin: Option<String>,
    /// Reconnect this connection (the same provider account must consent).
    #[schema(value_type = Option<String>)]
    pub connection_id: Option<ConnectionId>,
    /// API keys only: the user the connection will belong to.
    #[schema(value_type = Option<String>)]
    pub user_id: Option<UserId>,
}

/// A connect session: open `connect_url` in the browser (once, within 10 minutes).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectSessionCreated {
    pub id: String,
    /// Single use; only its hash is stored.
    pub token: String,
    pub connect_url: String,
    pub expires_at: DateTime<Utc>,
}

/// A connect session's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectSessionOut {
    pub id: String,
    pub provider: String,
    /// `pending`, `connected` or `error`.
    pub status: &'static str,
    pub connection_id: Option<String>,
    /// The error code when `status` is `error` (`access_denied`, `account_mismatch`, `expired`, …).
    pub error: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/v1/connect-sessions", tag = "connect", request_body = ConnectSessionIn,
    responses((status = 201, body = ConnectSessionCreated), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn create_session(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<ConnectSessionIn>,
) -> Result<(StatusCode, Json<ConnectSessionCreated>), ApiError> {
    principal.require(Need::Connect)?;
    if flow::provider_config(&state, &input.provider).is_none() {
        return Err(flow::provider_disabled(&input.provider));
    }
    let user_id = match (&principal.kind, input.user_id) {
        (PrincipalKind::User { user_id, .. }, None) => *user_id,
        (PrincipalKind::User { .. }, Some(_)) => {
            return Err(ApiError::new(ProblemCode::BadRequest, "`user_id` is only for API keys acting for a user"))
        }
        (PrincipalKind::ApiKey { .. }, Some(user)) => state.store.get_user(principal.scope(), user).await?.id,
        (PrincipalKind::ApiKey { .. }, None) => {
            return Err(ApiError::new(
                ProblemCode::BadRequest,
                "API keys must name the `user_id` the connection is for",
            ))
        }
    };
    let allowed = &state.settings.http.return_to_origins;
    let bad = |e: targets::TargetError| ApiError::new(ProblemCode::BadRequest, e.to_string());
    let (return_to, opener_origin) = match input.mode {
        ConnectMode::Redirect => {
            let text = input
                .return_to
                .as_deref()
                .ok_or_else(|| ApiError::new(ProblemCode::BadRequest, "redirect mode needs `return_to`"))?;
            (Some(targets::return_to(text, allowed).map_err(bad)?.to_string()), None)
        }
        ConnectMode::Popup => {
            let text = input
                .opener_origin
                .as_deref()
                .ok_or_else(|| ApiError::new(ProblemCode::BadRequest, "popup mode needs `opener_origin`"))?;
            (None, Some(targets::opener_origin(text, allowed).map_err(bad)?))
        }
    };
    if let Some(id) = input.connection_id {
        let connection = state.store.get_connection(principal.scope(), id).await?;
        if connection.user_id != user_id || connection.provider != input.provider {
            return Err(ApiError::not_found());
        }
    }
    let (token, token_sha256) = random_token();
    let session = state
        .store
        .create_connect_session(NewConnectSession {
            token_sha256,
            tenant_id: principal.tenant_id,
            user_id,
            provider: input.provider,
            mode: input.mode,
            return_to,
            opener_origin,
            reconnect_connection_id: input.connection_id,
            expires_at: Utc::now() + chrono::Duration::minutes(SESSION_TTL_MINUTES),
        })
        .await?;
    let mut connect_url = state.settings.http.public_url.clone();
    connect_url.set_path(&format!("/connect/{token}"));
    connect_url.set_query(None);
    let created = ConnectSessionCreated {
        id: session.id.to_string(),
        token,
        connect_url: connect_url.to_string(),
        expires_at: session.expires_at,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/v1/connect-sessions/{id}", tag = "connect",
    params(("id" = String, Path, description = "Connect session id")),
    responses((status = 200, body = ConnectSessionOut), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_session(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectSessionId>,
) -> Result<Json<ConnectSessionOut>, ApiError> {
    principal.require(Need::Connect)?;
    let session = state.store.get_connect_session(principal.scope(), id).await?;
    if principal.own_user().is_some_and(|me| me != session.user_id) {
        return Err(ApiError::not_found());
    }
    Ok(Json(session_out(session)))
}

fn session_out(session: ConnectSession) -> ConnectSessionOut {
    let (status, connection_id, error) = match &session.outcome {
        Some(ConnectOutcome::Connected(id)) => ("connected", Some(id.to_string()), None),
        Some(ConnectOutcome::Failed(code)) => ("error", None, Some(code.clone())),
        None if session.consumed_at.is_none() && session.expires_at <= Utc::now() => {
            ("error", None, Some("expired".into()))
        }
        None => ("pending", None, None),
    };
    ConnectSessionOut {
        id: session.id.to_string(),
        provider: session.provider,
        status,
        connection_id,
        error,
        expires_at: session.expires_at,
    }
}

/// `GET /connect/{token}`: never consumes (link scanners prefetch URLs); answers a page that
/// posts itself.
async fn connect_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let session = match state.store.peek_connect_session(&token_hash(&token), Utc::now()).await {
        Ok(Some(session)) => session,
        Ok(None) => return pages::error(StatusCode::NOT_FOUND, "This connect link has expired or was already used."),
        Err(e) => return unavailable(e),
    };
    let Some(config) = flow::provider_config(&state, &session.provider) else {
        return pages::error(StatusCode::BAD_REQUEST, "This provider is not enabled.");
    };
    let keep_opener = session.mode == ConnectMode::Popup;
    pages::self_submitting(&token, &config.authorize_url.origin().ascii_serialization(), keep_opener)
}

/// `POST /connect/{token}`: consumes the session and redirects to the provider.
async fn connect_submit(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match state.store.consume_connect_session(&token_hash(&token), Utc::now()).await {
        Ok(Some(session)) => flow::start(&state, session).await,
        Ok(None) => pages::error(StatusCode::GONE, "This connect link has expired or was already used."),
        Err(e) => unavailable(e),
    }
}

/// `GET /oauth/{provider}/callback`.
async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut states = Vec::new();
    let mut params = flow::CallbackParams { code: None, error: None, iss: Vec::new() };
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "state" => states.push(value.into_owned()),
            "code" => params.code = Some(SecretString::from(value.into_owned())),
            "error" => params.error = Some(value.into_owned()),
            "iss" => params.iss.push(value.into_owned()),
            _ => {} // ownership never comes from the query (security.md B7)
        }
    }
    let [state_value] = states.as_slice() else {
        return pages::error(StatusCode::BAD_REQUEST, "The sign-in response has no valid state.");
    };
    let state_sha256 = token_hash(state_value);
    let row = match state.store.consume_oauth_state(&state_sha256, Utc::now()).await {
        Ok(Some(row)) => row,
        Ok(None) => {
            tracing::warn!(provider = %provider.chars().take(16).collect::<String>(), "callback with an unknown, used or expired state");
            return pages::error(StatusCode::BAD_REQUEST, "This sign-in response has expired or was already used.");
        }
        Err(e) => return unavailable(e),
    };
    let scope = patchbay_store::TenantScope::new(row.tenant_id);
    let session = match state.store.get_connect_session(scope, row.session_id).await {
        Ok(session) => session,
        Err(e) => return unavailable(e),
    };
    let public_url = state.settings.http.public_url.clone();
    let cookie = flow::cookie_name(&state_sha256, &public_url);
    let outcome = if provider != row.provider {
        // Mix-up defence: a state made for one provider arriving at another's callback.
        tracing::warn!(expected = %row.provider, "callback at the wrong provider's redirect URI");
        Err("provider_mismatch")
    } else if !binding_matches(&headers, &cookie, &row.binding_sha256) {
        tracing::warn!(provider = %row.provider, "callback without this browser's state cookie");
        Err("invalid_binding")
    } else {
        match flow::provider_config(&state, &row.provider) {
            Some(config) => flow::finish(&state, config, &row, &session, params).await,
            None => Err("provider_disabled"),
        }
    };
    let mut response = flow::respond(&state, &session, outcome).await;
    flow::clear_cookie(&mut response, &cookie, &public_url);
    response
}

/// Whether the request carries the state's cookie with the value whose hash was stored.
fn binding_matches(headers: &HeaderMap, name: &str, expected: &[u8; 32]) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(k, v)| k == name && token_hash(v) == *expected)
}

fn unavailable(error: patchbay_store::StoreError) -> Response {
    tracing::error!(error = %error, "connect flow could not reach the store");
    let mut response =
        pages::error(StatusCode::SERVICE_UNAVAILABLE, "Patchbay is temporarily unavailable; try again shortly.");
    response.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
    response.into_response()
}
