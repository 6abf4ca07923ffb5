//! Sync runs: `POST /v1/connections/{id}/sync` (trigger), `GET /v1/connections/{id}/sync-runs`
//! and `GET /v1/sync-runs/{id}` (observe). The runs themselves are executed by the job worker.

use super::extract::ApiPath;
use super::extract::ApiQuery;
use super::pagination::{List, ListOut, ListQuery};
use super::problem::{ApiError, Problem, ProblemCode};
use crate::auth::{Need, Principal};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use patchbay_store::{
    ConnectionId, ConnectionStatus, SyncRequest, SyncRequested, SyncResource, SyncRun, SyncRunId, SyncTrigger,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(request_sync)).routes(routes!(list_runs)).routes(routes!(get_run))
}

/// Why a run failed: a stable class and a short message (never provider text or record data).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunErrorOut {
    pub code: String,
    pub message: Option<String>,
}

/// One sync run of a connection.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRunOut {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(format = Uuid)]
    pub connection_id: String,
    /// `google.calendar` or `monday.boards`.
    pub resource: String,
    /// `initial`, `schedule`, `webhook` or `manual`.
    pub trigger: String,
    /// `queued`, `running`, `succeeded`, `failed` or `skipped`.
    pub status: String,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Provider requests the run made.
    pub api_calls: i64,
    /// Records created or changed.
    pub upserted: i64,
    /// Records tombstoned.
    pub deleted: i64,
    pub error: Option<RunErrorOut>,
}

impl From<SyncRun> for SyncRunOut {
    fn from(run: SyncRun) -> Self {
        Self {
            id: run.id.to_string(),
            connection_id: run.connection_id.to_string(),
            resource: run.resource.to_string(),
            trigger: run.trigger.to_string(),
            status: run.status.to_string(),
            queued_at: run.queued_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            api_calls: run.api_calls,
            upserted: run.upserted,
            deleted: run.deleted,
            error: run.error_code.map(|code| RunErrorOut { code, message: run.error_message }),
        }
    }
}

/// Checks the caller may see the connection (end users: their own only).
async fn own_connection(
    state: &AppState,
    principal: &Principal,
    id: ConnectionId,
) -> Result<ConnectionStatus, ApiError> {
    let connection = state.store.get_connection(principal.scope(), id).await?;
    if principal.own_user().is_some_and(|me| me != connection.user_id) {
        return Err(ApiError::not_found());
    }
    Ok(connection.status)
}

#[utoipa::path(post, path = "/v1/connections/{id}/sync", tag = "sync",
    params(("id" = String, Path, format = Uuid, description = "Connection id")),
    responses((status = 202, description = "A new run was queued", body = SyncRunOut),
        (status = 200, description = "A run of this connection was already pending; the request joined it (and moved it earlier)", body = SyncRunOut),
        (status = 400, description = "`invalid_path`: `id` is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without the `write` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such connection for this caller (another tenant's or user's id included), or one that is not active (its user must reconnect; the detail says so)", body = Problem, content_type = "application/problem+json")))]
async fn request_sync(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
) -> Result<(StatusCode, Json<SyncRunOut>), ApiError> {
    principal.require(Need::Write)?;
    if own_connection(&state, &principal, id).await? != ConnectionStatus::Active {
        return Err(ApiError::new(
            ProblemCode::Conflict,
            "the connection is not active: its user must reconnect first",
        ));
    }
    let connection = state.store.get_connection(principal.scope(), id).await?;
    let now = state.clock.now();
    let request = SyncRequest {
        tenant_id: principal.tenant_id,
        connection_id: id,
        resource: SyncResource::of(connection.provider),
        trigger: SyncTrigger::Manual,
        run_at: now,
        priority: SyncRequest::INCREMENTAL_PRIORITY,
    };
    Ok(match state.store.request_sync(request, now).await? {
        SyncRequested::Created(run) => (StatusCode::ACCEPTED, Json(run.into())),
        SyncRequested::AlreadyQueued(run) => (StatusCode::OK, Json(run.into())),
    })
}

#[utoipa::path(get, path = "/v1/connections/{id}/sync-runs", tag = "sync",
    params(("id" = String, Path, format = Uuid, description = "Connection id"), ListQuery),
    responses((status = 200, description = "The connection's runs, newest first", body = ListOut<SyncRunOut>),
        (status = 400, description = "`invalid_path` or `invalid_query`: a bad id, `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without the `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such connection for this caller", body = Problem, content_type = "application/problem+json")))]
async fn list_runs(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListOut<SyncRunOut>>, ApiError> {
    principal.require(Need::Read)?;
    let page = query.page(List::SyncRuns)?;
    own_connection(&state, &principal, id).await?;
    let page = state.store.list_sync_runs(principal.scope(), id, page).await?;
    Ok(Json(ListOut::from_page(List::SyncRuns, page, SyncRunOut::from)))
}

#[utoipa::path(get, path = "/v1/sync-runs/{id}", tag = "sync",
    params(("id" = String, Path, format = Uuid, description = "Sync run id")),
    responses((status = 200, description = "The run", body = SyncRunOut),
        (status = 400, description = "`invalid_path`: `id` is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without the `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such run for this caller (another tenant's or user's included)", body = Problem, content_type = "application/problem+json")))]
async fn get_run(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<SyncRunId>,
) -> Result<Json<SyncRunOut>, ApiError> {
    principal.require(Need::Read)?;
    let run = state.store.get_sync_run(principal.scope(), id).await?;
    // End users see runs of their own connections only (a disconnected one answers 404 too).
    own_connection(&state, &principal, run.connection_id).await?;
    Ok(Json(run.into()))
}
