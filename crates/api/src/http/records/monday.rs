//! `/v1/connections/{id}/monday/boards` and `…/boards/{board}/items`: synced monday data.
//! Boards answer with their columns and groups nested (those are records of their own, parent =
//! board, listed per board of the page).

use super::cache::{self, encode};
use super::sealer;
use super::views::{BoardFields, ColumnFields, GroupFields, ItemFields, View};
use crate::auth::{Need, Principal};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::pagination::{List, ListOut};
use crate::http::problem::{ApiError, Problem};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use patchbay_store::{ConnectionId, Page, ProviderId, RecordFilter, RecordId, RecordKind};
use patchbay_sync::seal::Sealer;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_boards)).routes(routes!(list_items))
}

/// Most columns or groups one board answers with.
const NESTED_MAX: u32 = 500;

/// A monday board with its columns and groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct BoardOut {
    #[serde(flatten)]
    pub board: View<BoardFields>,
    pub columns: Vec<ColumnFields>,
    pub groups: Vec<GroupFields>,
}

/// A monday item.
pub type ItemOut = View<ItemFields>;

/// Query of `GET …/monday/boards`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    /// Page size (1 to 500; default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page of this list.
    pub cursor: Option<String>,
    /// Only the board with this monday id.
    pub provider_id: Option<String>,
}

/// Query of `GET …/monday/boards/{board}/items`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemQuery {
    /// Page size (1 to 500; default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page of this list.
    pub cursor: Option<String>,
    /// Only the item with this monday id.
    pub provider_id: Option<String>,
    /// Only items of this monday group id. Applied after a page is read (groups are sealed),
    /// so a page may hold fewer than `limit` items while `next_cursor` continues.
    pub group_id: Option<String>,
}

#[utoipa::path(get, path = "/v1/connections/{id}/monday/boards", tag = "records",
    params(("id" = String, Path, format = Uuid, description = "Connection id"), BoardQuery),
    responses((status = 200, description = "One page of the connection's synced boards, with columns and groups", body = ListOut<BoardOut>, headers(("ETag" = String, description = "Strong validator of this page; send it back as `If-None-Match`"))),
        (status = 304, description = "`If-None-Match` named this page's current ETag: nothing changed, no body"),
        (status = 400, description = "`invalid_query` / `invalid_path`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such monday connection for this caller (another tenant's, another user's, or a Google connection)", body = Problem, content_type = "application/problem+json")))]
async fn list_boards(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(query): ApiQuery<BoardQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    principal.require(Need::Read)?;
    let page = List::MondayBoards.page(query.limit, query.cursor.as_deref())?;
    let filter = RecordFilter { provider_id: query.provider_id, ..RecordFilter::default() };
    let key = format!("monday-boards {page:?} {filter:?}");
    cache::page(&state, &principal, (id, ProviderId::Monday), key, &headers, |_| async {
        let boards = state.store.list_records(principal.scope(), id, RecordKind::MondayBoard, &filter, page).await?;
        let sealer = sealer(&state);
        let mut data = Vec::with_capacity(boards.items.len());
        for record in &boards.items {
            let columns = nested(&state, &principal, &sealer, id, RecordKind::MondayColumn, record.id).await?;
            let groups = nested(&state, &principal, &sealer, id, RecordKind::MondayGroup, record.id).await?;
            data.push(BoardOut { board: View::open(&sealer, record), columns, groups });
        }
        let rows = data.len() * 4;
        encode(&ListOut { data, next_cursor: boards.next_cursor.map(|c| List::MondayBoards.cursor(c)) }, rows)
    })
    .await
}

/// A board's live columns or groups (unreadable ones are left out of the nesting: they are
/// logged, and the change feed still carries them).
async fn nested<F: serde::de::DeserializeOwned>(
    state: &AppState,
    principal: &Principal,
    sealer: &Sealer,
    connection: ConnectionId,
    kind: RecordKind,
    board: RecordId,
) -> Result<Vec<F>, ApiError> {
    let filter = RecordFilter { parent_id: Some(board), ..RecordFilter::default() };
    let page = Page::new(Some(NESTED_MAX), None);
    let rows = state.store.list_records(principal.scope(), connection, kind, &filter, page).await?;
    Ok(rows.items.iter().filter_map(|r| super::open(sealer, r)).collect())
}

#[utoipa::path(get, path = "/v1/connections/{id}/monday/boards/{board}/items", tag = "records",
    params(("id" = String, Path, format = Uuid, description = "Connection id"),
        ("board" = String, Path, format = Uuid, description = "The board's Patchbay id"), ItemQuery),
    responses((status = 200, description = "One page of the board's synced items", body = ListOut<ItemOut>, headers(("ETag" = String, description = "Strong validator of this page; send it back as `If-None-Match`"))),
        (status = 304, description = "`If-None-Match` named this page's current ETag: nothing changed, no body"),
        (status = 400, description = "`invalid_query` / `invalid_path`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such monday connection for this caller, or no such board on it", body = Problem, content_type = "application/problem+json")))]
async fn list_items(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, board)): ApiPath<(ConnectionId, RecordId)>,
    ApiQuery(query): ApiQuery<ItemQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    principal.require(Need::Read)?;
    let page = List::MondayItems.page(query.limit, query.cursor.as_deref())?;
    let key = format!("monday-items {board} {page:?} {:?} {:?}", query.provider_id, query.group_id);
    cache::page(&state, &principal, (id, ProviderId::Monday), key, &headers, |_| async {
        let board = state.store.get_record(principal.scope(), id, RecordKind::MondayBoard, board).await?;
        let filter = RecordFilter {
            parent_id: Some(board.id),
            provider_id: query.provider_id.clone(),
            ..RecordFilter::default()
        };
        let items = state.store.list_records(principal.scope(), id, RecordKind::MondayItem, &filter, page).await?;
        let sealer = sealer(&state);
        let data: Vec<ItemOut> = items
            .items
            .iter()
            .map(|r| View::<ItemFields>::open(&sealer, r))
            .filter(|item| match (&query.group_id, &item.fields) {
                (None, _) => true,
                (Some(want), Some(fields)) => fields.group.as_ref().and_then(|g| g.id.as_ref()) == Some(want),
                (Some(_), None) => false,
            })
            .collect();
        let rows = data.len();
        encode(&ListOut { data, next_cursor: items.next_cursor.map(|c| List::MondayItems.cursor(c)) }, rows)
    })
    .await
}
