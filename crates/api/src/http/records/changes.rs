//! `GET /v1/connections/{id}/monday/changes` and `…/google/changes`: every record change of the
//! connection (tombstones included) in `change_seq` order, up to the store's safe high-water
//! mark, so a reader that resumes from what it last saw never misses or repeats a row.
//!
//! Position: a plain `after=<change_seq>` (not an opaque cursor — `change_seq` is on every
//! record anyway, and a reader can store it next to its copy). Each answer's `next_cursor` is the
//! `after` of the next request: the last record's `change_seq`, or `high_water` when the page is
//! empty (never less than the `after` sent). `data` shorter than `limit` means caught up.

use super::views::{AnyFields, Meta};
use super::{connection_of, sealer};
use crate::auth::{Need, Principal};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem, ProblemCode};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use patchbay_store::{ConnectionId, Page, ProviderId, RecordKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(monday_changes)).routes(routes!(google_changes))
}

/// Query of a change feed.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangeQuery {
    /// Changes after this `change_seq` (0 or absent: from the beginning); pass the previous
    /// answer's `next_cursor`.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Page size (1 to 500; default 100).
    #[param(minimum = 1)]
    pub limit: Option<u32>,
    /// The same position as `after`, as the decimal text of a `next_cursor` (wins over `after`).
    pub cursor: Option<String>,
}

/// One change: the record as it is now (a tombstone carries no fields).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeOut {
    /// `monday_board`, `monday_column`, `monday_group`, `monday_item`, `google_calendar`, `google_event`.
    pub kind: String,
    #[serde(flatten)]
    pub meta: Meta,
    /// The opened fields (absent for tombstones and unreadable records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<AnyFields>,
}

/// One page of a change feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesOut {
    pub data: Vec<ChangeOut>,
    /// The `after` of the next request.
    pub next_cursor: i64,
    /// Every change up to this `change_seq` is committed and was visible to this read.
    pub high_water: i64,
}

#[utoipa::path(get, path = "/v1/connections/{id}/monday/changes", tag = "records",
    params(("id" = String, Path, format = Uuid, description = "Connection id"), ChangeQuery),
    responses((status = 200, description = "Changes of boards, columns, groups and items in `change_seq` order", body = ChangesOut),
        (status = 400, description = "`invalid_query` / `invalid_path`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such monday connection for this caller", body = Problem, content_type = "application/problem+json")))]
async fn monday_changes(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(query): ApiQuery<ChangeQuery>,
) -> Result<Json<ChangesOut>, ApiError> {
    feed(state, principal, id, ProviderId::Monday, query).await
}

#[utoipa::path(get, path = "/v1/connections/{id}/google/changes", tag = "records",
    params(("id" = String, Path, format = Uuid, description = "Connection id"), ChangeQuery),
    responses((status = 200, description = "Changes of calendars and events in `change_seq` order", body = ChangesOut),
        (status = 400, description = "`invalid_query` / `invalid_path`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such Google connection for this caller", body = Problem, content_type = "application/problem+json")))]
async fn google_changes(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(query): ApiQuery<ChangeQuery>,
) -> Result<Json<ChangesOut>, ApiError> {
    feed(state, principal, id, ProviderId::Google, query).await
}

async fn feed(
    state: AppState,
    principal: Principal,
    id: ConnectionId,
    provider: ProviderId,
    query: ChangeQuery,
) -> Result<Json<ChangesOut>, ApiError> {
    principal.require(Need::Read)?;
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(cursor) => cursor
            .parse::<i64>()
            .map_err(|_| ApiError::new(ProblemCode::InvalidQuery, "`cursor` is not a cursor this feed returned"))?,
        None => query.after.unwrap_or(0),
    };
    if after < 0 || query.limit == Some(0) {
        return Err(ApiError::new(ProblemCode::InvalidQuery, "`after` must be 0 or more and `limit` at least 1"));
    }
    let limit = Page::new(query.limit, None).limit;
    connection_of(&state, &principal, id, provider).await?;
    let page = state.store.change_feed(principal.scope(), id, RecordKind::of_provider(provider), after, limit).await?;
    let sealer = sealer(&state);
    let next_cursor = page.records.last().map_or(page.high_water.max(after), |r| r.change_seq);
    let data = page
        .records
        .iter()
        .map(|record| {
            let fields = if record.deleted_at.is_some() { None } else { AnyFields::open(&sealer, record) };
            let unreadable = record.deleted_at.is_none() && fields.is_none();
            ChangeOut { kind: record.kind.to_string(), meta: Meta::of(record, unreadable), fields }
        })
        .collect();
    Ok(Json(ChangesOut { data, next_cursor, high_water: page.high_water }))
}
