//! The tenant's audit log: `GET /v1/audit-events` reads it (tenant admins), and [`record`] is how
//! a route writes one entry for what its caller did.

use super::extract::ApiQuery;
use super::pagination::{List, ListOut, ListQuery};
use super::problem::{ApiError, Problem};
use crate::auth::{Need, Principal};
use crate::http::client_ip::ClientAddr;
use crate::http::middleware::RequestId;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use patchbay_store::{AuditEvent, NewAuditEvent};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit_events))
}

/// The audit entry for `action` on `target` (e.g. `webhook_source:{id}`) by the caller.
pub(crate) fn entry(who: &Principal, action: &str, target: String, req: &RequestId, ip: &ClientAddr) -> NewAuditEvent {
    NewAuditEvent {
        tenant_id: Some(who.tenant_id),
        actor: who.actor(),
        action: action.into(),
        target: Some(target),
        request_id: Some(req.0.clone()),
        ip: ip.audit(),
    }
}

/// Records [`entry`] on its own (routes whose change and audit share a transaction build the
/// entry and hand it to the store instead).
pub(crate) async fn record(
    state: &AppState,
    who: &Principal,
    action: &str,
    target: String,
    req: &RequestId,
    ip: &ClientAddr,
) -> Result<(), ApiError> {
    state.store.record_audit(entry(who, action, target, req, ip)).await?;
    Ok(())
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventOut {
    #[schema(format = Uuid)]
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
    responses((status = 200, description = "One page of the tenant's audit log", body = ListOut<AuditEventOut>),
        (status = 400, description = "`invalid_query`: `limit` is 0 or not a number, or `cursor` is not one this list returned", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: a user without the tenant admin role; `insufficient_scope`: an API key without the `admin` scope", body = Problem, content_type = "application/problem+json")))]
async fn list_audit_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListOut<AuditEventOut>>, ApiError> {
    principal.require(Need::Admin)?;
    let page = state.store.list_audit_events(principal.scope(), query.page(List::AuditEvents)?).await?;
    Ok(Json(ListOut::from_page(List::AuditEvents, page, AuditEventOut::from)))
}
