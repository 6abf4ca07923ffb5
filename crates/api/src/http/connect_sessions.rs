//! `/v1/connect-sessions`: the app starts a connect for one of its users and polls its outcome.

use super::extract::{ApiJson, ApiPath};
use super::problem::{ApiError, Problem};
use crate::auth::{Need, Principal, PrincipalKind};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use patchbay_connect::{ConnectError, SessionRequest, SessionStatus};
use patchbay_store::{ConnectMode, ConnectSession, ConnectSessionId, ConnectionId, EndUser, ProviderId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_session)).routes(routes!(get_session))
}

/// Who the connect is for, as the confirmation page shows it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndUserIn {
    /// At most 200 characters.
    pub display_name: Option<String>,
    /// At most 200 characters.
    pub email: Option<String>,
}

/// Start a connect.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectSessionIn {
    #[schema(value_type = String, example = "google")]
    pub provider: ProviderId,
    #[schema(value_type = String, example = "redirect")]
    pub mode: ConnectMode,
    /// Redirect mode: where the browser returns (its origin must be on PATCHBAY_RETURN_TO_ORIGINS).
    pub return_to: Option<String>,
    /// Popup mode: the exact origin of the page that opened the popup.
    pub opener_origin: Option<String>,
    /// Reconnect this connection (the same provider account must consent).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub connection_id: Option<ConnectionId>,
    /// API keys only: the user the connection will belong to.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub user_id: Option<UserId>,
    /// Who the connect page says the account is connected for (default: the user's subject).
    pub end_user: Option<EndUserIn>,
}

/// A connect session: open `connect_url` in the browser (once, within 10 minutes).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectSessionCreated {
    #[schema(format = Uuid)]
    pub id: String,
    /// Single use; only its hash is stored.
    pub token: String,
    pub connect_url: String,
    pub expires_at: DateTime<Utc>,
}

/// A connect session's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectSessionOut {
    #[schema(format = Uuid)]
    pub id: String,
    pub provider: String,
    /// `pending`, `connected` or `error`.
    pub status: &'static str,
    /// Set when connected, and with `insufficient_scope` (the connection exists but will not sync).
    #[schema(format = Uuid)]
    pub connection_id: Option<String>,
    /// The error code when `status` is `error` (`access_denied`, `insufficient_scope`, `expired`, …).
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
    let user_id = match (&principal.kind, input.user_id) {
        (PrincipalKind::User { user_id, .. }, None) => *user_id,
        (PrincipalKind::User { .. }, Some(_)) => return Err(ConnectError::UserIdNotAllowed.into()),
        (PrincipalKind::ApiKey { .. }, Some(user)) => state.store.get_user(principal.scope(), user).await?.id,
        (PrincipalKind::ApiKey { .. }, None) => return Err(ConnectError::UserIdRequired.into()),
    };
    let end_user = input.end_user.unwrap_or_default();
    let created = state
        .connect
        .create_session(SessionRequest {
            scope: principal.scope(),
            user_id,
            provider: input.provider,
            mode: input.mode,
            return_to: input.return_to,
            opener_origin: input.opener_origin,
            reconnect: input.connection_id,
            end_user: EndUser { display_name: end_user.display_name, email: end_user.email },
        })
        .await?;
    let out = ConnectSessionCreated {
        id: created.session.id.to_string(),
        token: created.token,
        connect_url: created.connect_url.to_string(),
        expires_at: created.session.expires_at,
    };
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/v1/connect-sessions/{id}", tag = "connect",
    params(("id" = String, Path, format = Uuid, description = "Connect session id")),
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
    let status = state.connect.status(&session, Utc::now()).await;
    Ok(Json(session_out(session, status)))
}

fn session_out(session: ConnectSession, status: SessionStatus) -> ConnectSessionOut {
    let (status, connection_id, error) = match status {
        SessionStatus::Pending => ("pending", None, None),
        SessionStatus::Connected(id) => ("connected", Some(id.to_string()), None),
        SessionStatus::Failed { code, connection_id } => ("error", connection_id.map(|c| c.to_string()), Some(code)),
    };
    ConnectSessionOut {
        id: session.id.to_string(),
        provider: session.provider.to_string(),
        status,
        connection_id,
        error,
        expires_at: session.expires_at,
    }
}
