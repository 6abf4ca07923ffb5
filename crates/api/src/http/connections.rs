//! `/v1/connections`: list, show and disconnect (status, account, scopes — never a token).

use super::client_ip::ClientAddr;
use super::extract::{ApiPath, ApiQuery};
use super::middleware::RequestId;
use super::openapi::{ConnectionStatusSchema, ProviderSchema};
use super::pagination::{List, ListOut, ListQuery};
use super::problem::{ApiError, Problem};
use crate::auth::{Need, Principal};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use chrono::{DateTime, Utc};
use patchbay_store::{
    Connection, ConnectionFilter, ConnectionId, ConnectionStatus, DisconnectPayload, JobPayload, NewAuditEvent,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_connections)).routes(routes!(get_connection, delete_connection))
}

/// A connection: status, account and scopes — never a token.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionOut {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(format = Uuid)]
    pub user_id: String,
    #[schema(value_type = ProviderSchema)]
    pub provider: String,
    #[schema(value_type = ConnectionStatusSchema, example = "active")]
    pub status: ConnectionStatus,
    pub status_reason: Option<String>,
    pub provider_account_id: String,
    pub account_name: Option<String>,
    pub account_email: Option<String>,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub last_sync_at: Option<DateTime<Utc>>,
}

impl From<Connection> for ConnectionOut {
    fn from(c: Connection) -> Self {
        Self {
            id: c.id.to_string(),
            user_id: c.user_id.to_string(),
            provider: c.provider.to_string(),
            status: c.status,
            status_reason: c.status_reason,
            provider_account_id: c.provider_account_id,
            account_name: c.account_name,
            account_email: c.account_email,
            scopes: c.scopes,
            created_at: c.created_at,
            updated_at: c.updated_at,
            last_refresh_at: c.last_refresh_at,
            last_sync_at: c.last_sync_at,
        }
    }
}

#[utoipa::path(get, path = "/v1/connections", tag = "connections", params(ListQuery),
    responses((status = 200, description = "One page of the caller's connections (the tenant's, for admins and API keys)", body = ListOut<ConnectionOut>),
        (status = 400, description = "`invalid_query`: `limit` is 0 or not a number, or `cursor` is not one this list returned", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without the `read` scope", body = Problem, content_type = "application/problem+json")))]
async fn list_connections(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListOut<ConnectionOut>>, ApiError> {
    principal.require(Need::Read)?;
    let filter = ConnectionFilter { user_id: principal.own_user() };
    let page = state.store.list_connections(principal.scope(), filter, query.page(List::Connections)?).await?;
    Ok(Json(ListOut::from_page(List::Connections, page, ConnectionOut::from)))
}

#[utoipa::path(get, path = "/v1/connections/{id}", tag = "connections",
    params(("id" = String, Path, format = Uuid, description = "Connection id")),
    responses((status = 200, description = "The connection", body = ConnectionOut),
        (status = 400, description = "`invalid_path`: `id` is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without the `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such connection for this caller (another tenant's or user's id included)", body = Problem, content_type = "application/problem+json")))]
async fn get_connection(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
) -> Result<Json<ConnectionOut>, ApiError> {
    principal.require(Need::Read)?;
    let connection = state.store.get_connection(principal.scope(), id).await?;
    // End users see only their own connections; another user's id answers like a missing one.
    if principal.own_user().is_some_and(|me| me != connection.user_id) {
        return Err(ApiError::not_found());
    }
    Ok(Json(connection.into()))
}

/// A disconnect in progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisconnectOut {
    #[schema(format = Uuid)]
    pub id: String,
    /// Always `disconnecting`: the connection is hidden at once, cleaned up by a job.
    #[schema(value_type = String, pattern = "^disconnecting$", example = "disconnecting")]
    pub status: &'static str,
}

#[utoipa::path(delete, path = "/v1/connections/{id}", tag = "connections",
    params(("id" = String, Path, format = Uuid, description = "Connection id")),
    responses((status = 202, description = "Disconnect accepted; a job cleans up", body = DisconnectOut),
        (status = 400, description = "`invalid_path`: `id` is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without the `write` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such connection for this caller (another tenant's or user's id included)", body = Problem, content_type = "application/problem+json")))]
async fn delete_connection(
    State(state): State<AppState>,
    principal: Principal,
    client: ClientAddr,
    Extension(request_id): Extension<RequestId>,
    ApiPath(id): ApiPath<ConnectionId>,
) -> Result<(StatusCode, Json<DisconnectOut>), ApiError> {
    principal.require(Need::Write)?;
    // A connection already being disconnected is hidden from reads but accepted again here, so
    // a repeated DELETE answers 202 (its job is enqueued again, merging with a queued one).
    let connection = state.store.connection_for_job(principal.scope(), id).await?;
    if principal.own_user().is_some_and(|me| me != connection.user_id) {
        return Err(ApiError::not_found());
    }
    let now = chrono::Utc::now();
    let job = DisconnectPayload { tenant_id: principal.tenant_id, connection_id: id }.job(now);
    let audit = NewAuditEvent {
        tenant_id: Some(principal.tenant_id),
        actor: principal.actor(),
        action: "connection.disconnect".into(),
        target: Some(format!("connection:{id}")),
        request_id: Some(request_id.0),
        ip: client.audit(),
    };
    state.store.begin_disconnect(principal.scope(), id, job, audit).await?;
    Ok((StatusCode::ACCEPTED, Json(DisconnectOut { id: id.to_string(), status: "disconnecting" })))
}
