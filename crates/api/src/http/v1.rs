//! The `/v1` routes this capability serves: who am I, connections (read), the audit log.

use super::client_ip::ClientAddr;
use super::extract::{ApiPath, ApiQuery};
use super::middleware::RequestId;
use super::pagination::{ListOut, ListQuery};
use super::problem::{ApiError, Problem};
use crate::auth::{Need, Principal, PrincipalKind};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use patchbay_store::{
    ApiKeyScope, AuditEvent, Connection, ConnectionFilter, ConnectionId, ConnectionStatus, DisconnectPayload,
    JobPayload, NewAuditEvent,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_me))
        .routes(routes!(list_connections))
        .routes(routes!(get_connection, delete_connection))
        .routes(routes!(list_audit_events))
}

/// The caller as Patchbay sees it: the internal ids, and who the credential names.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeOut {
    pub tenant_id: String,
    /// The tenant's external key, for end users: `org:<tenant claim>` in claim mode, else
    /// `user:<iss>|<sub>`.
    #[schema(example = "org:acme")]
    pub tenant_key: Option<String>,
    /// `user` (an end user), `admin` (a tenant admin) or `api_key`.
    #[schema(example = "user")]
    pub role: String,
    /// Set for end users.
    pub user_id: Option<String>,
    /// Set for end users: who their token names.
    pub user: Option<UserOut>,
    /// Set for API keys.
    pub api_key: Option<ApiKeyOut>,
}

/// An end user as their token names them.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    /// The token's `sub`.
    pub subject: String,
    /// The token's `iss` (empty when the token carries none and no issuer is configured).
    pub issuer: String,
}

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    pub id: String,
    pub name: String,
    /// Any of `read`, `connect`, `write`, `admin`.
    pub scopes: Vec<String>,
}

#[utoipa::path(get, path = "/v1/me", tag = "identity",
    responses((status = 200, body = MeOut), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json")))]
async fn get_me(principal: Principal) -> Json<MeOut> {
    let tenant_id = principal.tenant_id.to_string();
    Json(match principal.kind {
        PrincipalKind::User { user_id, admin, identity } => MeOut {
            tenant_id,
            tenant_key: Some(identity.tenant_key),
            role: if admin { "admin" } else { "user" }.into(),
            user_id: Some(user_id.to_string()),
            user: Some(UserOut { subject: identity.subject, issuer: identity.issuer }),
            api_key: None,
        },
        PrincipalKind::ApiKey { key_id, name, scopes } => MeOut {
            tenant_id,
            tenant_key: None,
            role: "api_key".into(),
            user_id: None,
            user: None,
            api_key: Some(ApiKeyOut {
                id: key_id.to_string(),
                name,
                scopes: scopes.iter().map(|s: &ApiKeyScope| s.as_str().to_string()).collect(),
            }),
        },
    })
}

/// A connection: status, account and scopes — never a token.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionOut {
    pub id: String,
    pub user_id: String,
    pub provider: String,
    #[schema(value_type = String, example = "active")]
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
    responses((status = 200, body = ListOut<ConnectionOut>), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list_connections(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListOut<ConnectionOut>>, ApiError> {
    principal.require(Need::Read)?;
    let filter = ConnectionFilter { user_id: principal.own_user() };
    let page = state.store.list_connections(principal.scope(), filter, query.page()?).await?;
    Ok(Json(ListOut::from_page(page, ConnectionOut::from)))
}

#[utoipa::path(get, path = "/v1/connections/{id}", tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = ConnectionOut), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
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
    pub id: String,
    /// Always `disconnecting`: the connection is hidden at once, cleaned up by a job.
    pub status: &'static str,
}

#[utoipa::path(delete, path = "/v1/connections/{id}", tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 202, body = DisconnectOut), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
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

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventOut {
    pub id: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<AuditEvent> for AuditEventOut {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id.to_string(),
            actor: e.actor,
            action: e.action,
            target: e.target,
            request_id: e.request_id,
            ip: e.ip,
            at: e.at,
        }
    }
}

#[utoipa::path(get, path = "/v1/audit-events", tag = "audit", params(ListQuery),
    responses((status = 200, body = ListOut<AuditEventOut>), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list_audit_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListOut<AuditEventOut>>, ApiError> {
    principal.require(Need::Admin)?;
    let page = state.store.list_audit_events(principal.scope(), query.page()?).await?;
    Ok(Json(ListOut::from_page(page, AuditEventOut::from)))
}
