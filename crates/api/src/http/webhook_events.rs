//! `GET /v1/webhook-events`: the tenant's webhook inbox, oldest first (tenant admins and
//! `admin` keys). Bodies stay sealed in the store; the list shows what arrived and its state.

use super::extract::ApiQuery;
use super::pagination::{List, ListOut};
use super::problem::{ApiError, Problem, ProblemCode};
use crate::auth::{Need, Principal};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use patchbay_store::{WebhookEvent, WebhookEventFilter, WebhookEventStatus, WebhookSourceId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

/// Query of the inbox list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Page size: at least 1 (0 is refused with 400); values over 500 are clamped; default 100.
    #[param(minimum = 1, example = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page of this list.
    #[param(pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
    /// Only events of this source.
    #[param(value_type = Option<String>, format = Uuid)]
    pub source_id: Option<WebhookSourceId>,
    /// Only events in this state: `pending`, `processed` or `failed`.
    pub status: Option<String>,
}

/// One inbox event.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEventOut {
    #[schema(format = Uuid)]
    pub id: String,
    /// `source` (third-party), later `monday` or `google`.
    pub source_kind: String,
    pub source_id: String,
    /// The sender's delivery id, or `sha256:<hex>` of the body.
    pub dedup_key: String,
    pub received_at: DateTime<Utc>,
    /// The few headers kept for processing (never a signature).
    #[schema(value_type = Object)]
    pub headers: serde_json::Value,
    /// `pending`, `processed` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub error: Option<String>,
}

impl From<WebhookEvent> for WebhookEventOut {
    fn from(e: WebhookEvent) -> Self {
        Self {
            id: e.id.to_string(),
            source_kind: e.source_kind.as_str().to_owned(),
            source_id: e.source_id,
            dedup_key: e.dedup_key,
            received_at: e.received_at,
            headers: e.headers,
            status: e.status.as_str().to_owned(),
            attempts: e.attempts,
            error: e.error,
        }
    }
}

#[utoipa::path(get, path = "/v1/webhook-events", tag = "webhooks", params(EventsQuery),
    responses((status = 200, description = "One page of the tenant's inbox", body = ListOut<WebhookEventOut>),
        (status = 400, description = "`invalid_query`: `limit` is 0 or not a number, `cursor` is not one this list returned, `source_id` is not a UUID or `status` is not a state", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: a user without the tenant admin role; `insufficient_scope`: an API key without the `admin` scope", body = Problem, content_type = "application/problem+json")))]
async fn list_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<ListOut<WebhookEventOut>>, ApiError> {
    principal.require(Need::Admin)?;
    let page = List::WebhookEvents.page(query.limit, query.cursor.as_deref())?;
    let status = match query.status.as_deref() {
        Some(text) => {
            Some(text.parse::<WebhookEventStatus>().map_err(|e| ApiError::new(ProblemCode::InvalidQuery, e))?)
        }
        None => None,
    };
    let filter = WebhookEventFilter { source_id: query.source_id.map(|id| id.to_string()), status };
    let events = state.store.list_webhook_events(principal.scope(), &filter, page).await?;
    Ok(Json(ListOut::from_page(List::WebhookEvents, events, WebhookEventOut::from)))
}
