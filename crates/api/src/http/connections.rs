//! `/v1/connections`: list, show and disconnect (status, account, scopes, sync status — never a
//! token).

use super::audit;
use super::client_ip::ClientAddr;
use super::extract::{ApiPath, ApiQuery};
use super::middleware::RequestId;
use super::openapi::{BreakerStateSchema, ConnectionStatusSchema, ProviderSchema};
use super::pagination::{List, ListOut, ListQuery};
use super::problem::{ApiError, Problem};
use super::sync_runs::SyncRunOut;
use crate::auth::{Need, Principal};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use chrono::{DateTime, Utc};
use patchbay_store::{
    Connection, ConnectionFilter, ConnectionId, ConnectionStatus, DisconnectPayload, JobPayload, TenantScope,
};
use patchbay_sync::status::{connection_sync, BreakerStatus, ConnectionSync, PartStatus};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_connections)).routes(routes!(get_connection, delete_connection))
}

/// A connection: status, account, scopes and how its sync stands — never a token.
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
    /// How the connection's sync stands: breakers, last run, each part's last success. Shown by
    /// `GET /v1/connections` and `GET /v1/connections/{id}`; absent from the admin fleet list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<ConnectionSyncOut>,
}

/// A circuit breaker: open after consecutive transient provider failures (5xx, timeouts);
/// while open, sync calls wait until `next_probe_at`, when one probe goes through.
#[derive(Debug, Serialize, ToSchema)]
pub struct BreakerOut {
    #[schema(value_type = BreakerStateSchema, example = "closed")]
    pub state: &'static str,
    /// Transient failures in a row (0 after a success).
    pub consecutive_failures: i32,
    /// When it opened (open and half-open breakers only).
    pub opened_at: Option<DateTime<Utc>>,
    /// When an open breaker lets its next probe through (open and half-open breakers only).
    pub next_probe_at: Option<DateTime<Utc>>,
}

impl From<BreakerStatus> for BreakerOut {
    fn from(b: BreakerStatus) -> Self {
        Self {
            state: b.state.as_str(),
            consecutive_failures: b.consecutive_failures,
            opened_at: b.opened_at,
            next_probe_at: b.next_probe_at,
        }
    }
}

/// One part of a connection's sync: `calendars`, `events:{calendar id}`, `boards` or
/// `items:{board id}` (provider ids).
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncPartOut {
    #[schema(example = "calendars")]
    pub part: String,
    /// When a sync last finished this part successfully (`null` before the first).
    pub last_success_at: Option<DateTime<Utc>>,
    /// A change signal said it changed after its last sync; the next run takes it.
    pub dirty: bool,
}

impl From<PartStatus> for SyncPartOut {
    fn from(p: PartStatus) -> Self {
        Self { part: p.part, last_success_at: p.last_success_at, dirty: p.dirty }
    }
}

/// How a connection's sync stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionSyncOut {
    /// The connection's own breaker.
    pub breaker: BreakerOut,
    /// The provider-wide breaker, shared by every connection of this provider: when open, this
    /// connection's sync waits too.
    pub provider_breaker: BreakerOut,
    /// The latest run that ended (`succeeded`, `failed` or `skipped`); `null` before the first.
    pub last_run: Option<SyncRunOut>,
    /// Every part synced so far, by name, with its last success.
    pub parts: Vec<SyncPartOut>,
}

impl From<ConnectionSync> for ConnectionSyncOut {
    fn from(s: ConnectionSync) -> Self {
        Self {
            breaker: s.breaker.into(),
            provider_breaker: s.provider_breaker.into(),
            last_run: s.last_run.map(SyncRunOut::from),
            parts: s.parts.into_iter().map(SyncPartOut::from).collect(),
        }
    }
}

impl ConnectionOut {
    /// The connection with its sync status (`scope` is the connection's tenant).
    async fn with_sync(state: &AppState, scope: TenantScope, connection: Connection) -> Result<Self, ApiError> {
        let sync = connection_sync(state.store.as_ref(), scope, &connection).await?;
        let mut out = Self::from(connection);
        out.sync = Some(sync.into());
        Ok(out)
    }
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
            sync: None,
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
    let scope = principal.scope();
    let page = state.store.list_connections(scope, filter, query.page(List::Connections)?).await?;
    let next_cursor = page.next_cursor;
    let data =
        futures::future::try_join_all(page.items.into_iter().map(|c| ConnectionOut::with_sync(&state, scope, c)));
    let page = patchbay_store::Paged { items: data.await?, next_cursor };
    Ok(Json(ListOut::from_page(List::Connections, page, |c| c)))
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
    Ok(Json(ConnectionOut::with_sync(&state, principal.scope(), connection).await?))
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
    let audit = audit::entry(&principal, "connection.disconnect", format!("connection:{id}"), &request_id, &client);
    state.store.begin_disconnect(principal.scope(), id, job, audit).await?;
    Ok((StatusCode::ACCEPTED, Json(DisconnectOut { id: id.to_string(), status: "disconnecting" })))
}
