//! `/admin/v1`: the operator's fleet views, behind `PATCHBAY_ADMIN_TOKENS`. Every call is
//! audited with the fingerprint of the token that made it.

use super::client_ip::ClientAddr;
use super::connections::ConnectionOut;
use super::extract::ApiQuery;
use super::middleware::RequestId;
use super::pagination::{List, ListOut, ListQuery};
use super::problem::{ApiError, Problem};
use crate::auth::Operator;
use crate::state::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use patchbay_store::NewAuditEvent;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_all_connections))
}

/// A connection seen by the operator: which tenant it belongs to, and its state.
#[derive(Debug, Serialize, ToSchema)]
pub struct FleetConnectionOut {
    #[schema(format = Uuid)]
    pub tenant_id: String,
    #[serde(flatten)]
    pub connection: ConnectionOut,
}

#[utoipa::path(get, path = "/admin/v1/connections", tag = "admin", params(ListQuery),
    security(("operator_token" = [])),
    responses((status = 200, description = "One page of every tenant's connections", body = ListOut<FleetConnectionOut>),
        (status = 400, description = "`invalid_query`: `limit` is 0 or not a number, or `cursor` is not one this list returned", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no operator token, or not one of PATCHBAY_ADMIN_TOKENS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: the admin API is off (PATCHBAY_ADMIN_TOKENS is unset)", body = Problem, content_type = "application/problem+json")))]
async fn list_all_connections(
    State(state): State<AppState>,
    operator: Operator,
    client: ClientAddr,
    Extension(request_id): Extension<RequestId>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListOut<FleetConnectionOut>>, ApiError> {
    let page = state.store.list_all_connections(query.page(List::AdminConnections)?).await?;
    state
        .store
        .record_audit(NewAuditEvent {
            tenant_id: None,
            actor: operator.actor(),
            action: "admin.connections.list".into(),
            target: None,
            request_id: Some(request_id.0),
            ip: client.audit(),
        })
        .await?;
    Ok(Json(ListOut::from_page(List::AdminConnections, page, |c| FleetConnectionOut {
        tenant_id: c.tenant_id.to_string(),
        connection: c.into(),
    })))
}
