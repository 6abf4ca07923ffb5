//! `/v1/connections/{id}/google/calendars` and `…/calendars/{calendar}/events`: synced Google
//! Calendar data, optionally in a time window, optionally expanded into occurrences.
//!
//! Without `expand`, events are the stored ones (masters, exceptions, single events) keyset-paged
//! by id, `time_min`/`time_max` keeping those that overlap the window (a master counts from its
//! first start, open-ended). With `expand=instances` the whole window is answered in one page
//! (`next_cursor` null): the window may span at most [`MAX_WINDOW_DAYS`] days and hold at most
//! [`MAX_INSTANCES`] events, else 400 — occurrences are generated, so there is no stable row to
//! page after, and a bounded window is what calendar clients ask for anyway.

use super::cache::{self, encode};
use super::expand::expand;
use super::views::{CalendarFields, EventFields, View};
use super::{parse_time, sealer};
use crate::auth::{Need, Principal};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::pagination::{List, ListOut};
use crate::http::problem::{ApiError, Problem, ProblemCode};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use patchbay_store::{ConnectionId, Page, ProviderId, RecordFilter, RecordId, RecordKind};
use patchbay_sync::recurrence::Window;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_calendars)).routes(routes!(list_events))
}

/// The longest window `expand=instances` takes.
pub const MAX_WINDOW_DAYS: i64 = 366;
/// The most events an expanded window answers with.
pub const MAX_INSTANCES: usize = 2_500;

/// A Google calendar.
pub type CalendarOut = View<CalendarFields>;
/// A Google event (stored, or an occurrence of a recurring one).
pub type EventOut = View<EventFields>;

/// Query of `GET …/google/calendars`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CalendarQuery {
    /// Page size (1 to 500; default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page of this list.
    pub cursor: Option<String>,
    /// Only the calendar with this Google id.
    pub provider_id: Option<String>,
}

/// Query of `GET …/google/calendars/{calendar}/events`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Page size (1 to 500; default 100). Ignored with `expand=instances`.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page of this list.
    pub cursor: Option<String>,
    /// Only the event with this Google id.
    pub provider_id: Option<String>,
    /// Window start (RFC 3339, inclusive): events ending after it.
    pub time_min: Option<String>,
    /// Window end (RFC 3339, exclusive): events starting before it; must be after `time_min`.
    pub time_max: Option<String>,
    /// `instances`: recurring events as their occurrences in the window (needs `time_min` and
    /// `time_max`, at most 366 days apart; the whole window in one page, at most 2,500 events).
    #[param(pattern = "^instances$")]
    pub expand: Option<String>,
}

#[utoipa::path(get, path = "/v1/connections/{id}/google/calendars", tag = "records",
    params(("id" = String, Path, format = Uuid, description = "Connection id"), CalendarQuery),
    responses((status = 200, description = "One page of the connection's synced calendars", body = ListOut<CalendarOut>, headers(("ETag" = String, description = "Strong validator of this page; send it back as `If-None-Match`"))),
        (status = 304, description = "`If-None-Match` named this page's current ETag: nothing changed, no body"),
        (status = 400, description = "`invalid_query` / `invalid_path`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such Google connection for this caller (another tenant's, another user's, or a monday connection)", body = Problem, content_type = "application/problem+json")))]
async fn list_calendars(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(query): ApiQuery<CalendarQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    principal.require(Need::Read)?;
    let page = List::GoogleCalendars.page(query.limit, query.cursor.as_deref())?;
    let key = format!("google-calendars {page:?} {:?}", query.provider_id);
    cache::page(&state, &principal, (id, ProviderId::Google), key, &headers, |_| async {
        let filter = RecordFilter { provider_id: query.provider_id.clone(), ..RecordFilter::default() };
        let rows = state.store.list_records(principal.scope(), id, RecordKind::GoogleCalendar, &filter, page).await?;
        let sealer = sealer(&state);
        let rows_len = rows.items.len();
        encode(&ListOut::from_page(List::GoogleCalendars, rows, |r| CalendarOut::open(&sealer, &r)), rows_len)
    })
    .await
}

#[utoipa::path(get, path = "/v1/connections/{id}/google/calendars/{calendar}/events", tag = "records",
    params(("id" = String, Path, format = Uuid, description = "Connection id"),
        ("calendar" = String, Path, format = Uuid, description = "The calendar's Patchbay id"), EventQuery),
    responses((status = 200, description = "One page of the calendar's events (the whole window with `expand=instances`)", body = ListOut<EventOut>, headers(("ETag" = String, description = "Strong validator of this page; send it back as `If-None-Match`"))),
        (status = 304, description = "`If-None-Match` named this page's current ETag: nothing changed, no body"),
        (status = 400, description = "`invalid_query`: a bad `time_min`/`time_max` (named), `time_min` not before `time_max`, `expand` without a window, a window over 366 days or over 2,500 events; `invalid_path`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without `read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such Google connection for this caller, or no such calendar on it", body = Problem, content_type = "application/problem+json")))]
async fn list_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, calendar)): ApiPath<(ConnectionId, RecordId)>,
    ApiQuery(query): ApiQuery<EventQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    principal.require(Need::Read)?;
    let time_min = parse_time("time_min", query.time_min.as_deref())?;
    let time_max = parse_time("time_max", query.time_max.as_deref())?;
    if let (Some(min), Some(max)) = (time_min, time_max) {
        if min >= max {
            return Err(ApiError::new(ProblemCode::InvalidQuery, "`time_min` must be before `time_max`"));
        }
    }
    let expand_window = match query.expand.as_deref() {
        None | Some("") => None,
        Some("instances") => Some(window(time_min, time_max)?),
        Some(_) => return Err(ApiError::new(ProblemCode::InvalidQuery, "`expand` takes only `instances`")),
    };
    let page = List::GoogleEvents.page(query.limit, query.cursor.as_deref())?;
    let filter = RecordFilter {
        parent_id: Some(calendar),
        parent_must_exist: Some(RecordKind::GoogleCalendar),
        provider_id: query.provider_id,
        time_min,
        time_max,
        ..RecordFilter::default()
    };
    let key = format!("google-events {page:?} {filter:?} {}", expand_window.is_some());
    let events = Events { state: &state, principal: &principal, connection: id, calendar, filter, page };
    cache::page(&state, &principal, (id, ProviderId::Google), key, &headers, |_| events.body(expand_window)).await
}

/// One request's events page, built when no cached body answers it.
struct Events<'a> {
    state: &'a AppState,
    principal: &'a Principal,
    connection: ConnectionId,
    calendar: RecordId,
    filter: RecordFilter,
    page: Page,
}

impl Events<'_> {
    /// The encoded page: the window's occurrences, or a page of stored events read in one query
    /// that also checks the calendar (read separately only when the page is empty, for its 404).
    async fn body(self, expand_window: Option<Window>) -> Result<Vec<u8>, ApiError> {
        let (store, scope) = (&self.state.store, self.principal.scope());
        let sealer = sealer(self.state);
        if let Some(window) = expand_window {
            let calendar = store.get_record(scope, self.connection, RecordKind::GoogleCalendar, self.calendar).await?;
            let data = expand(self.state, self.principal, &sealer, &calendar, window).await?;
            let rows = data.len();
            return encode(&ListOut { data, next_cursor: None }, rows);
        }
        let rows = store.list_records(scope, self.connection, RecordKind::GoogleEvent, &self.filter, self.page).await?;
        if rows.items.is_empty() {
            store.get_record(scope, self.connection, RecordKind::GoogleCalendar, self.calendar).await?;
        }
        let len = rows.items.len();
        encode(&ListOut::from_page(List::GoogleEvents, rows, |r| EventOut::open(&sealer, &r)), len)
    }
}

/// The window `expand=instances` needs: both bounds, at most [`MAX_WINDOW_DAYS`] apart.
fn window(
    min: Option<chrono::DateTime<chrono::Utc>>,
    max: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Window, ApiError> {
    let (Some(min), Some(max)) = (min, max) else {
        return Err(ApiError::new(ProblemCode::InvalidQuery, "`expand=instances` needs `time_min` and `time_max`"));
    };
    if max - min > chrono::Duration::days(MAX_WINDOW_DAYS) {
        return Err(ApiError::new(
            ProblemCode::InvalidQuery,
            format!("`expand=instances` takes a window of at most {MAX_WINDOW_DAYS} days"),
        ));
    }
    Ok(Window { min, max })
}
