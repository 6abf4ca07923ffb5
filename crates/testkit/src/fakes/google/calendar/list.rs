//! `GET /calendar/v3/users/me/calendarList` (providers.md B6.1): `maxResults` (default 100,
//! cap 250), `pageToken`, `showDeleted`, `syncToken` (deleted entries always included then,
//! `minAccessRole` not allowed).

use super::errors::{bad_param, ApiError};
use super::gate::{admit, Need};
use super::paging::{cut, max_results, start, sync_point, Candidate, Listing};
use crate::fakes::common::{json, Params};
use crate::fakes::google::Shared;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

pub(crate) async fn calendar_list(
    State(shared): State<Shared>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admit(&shared, &headers, uri.path(), Need::CalendarList).await?;
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let mut st = shared.lock().unwrap();
    let calendar = &mut st.calendar;
    let max = max_results(&params, 100, 250)?;
    let sync_token = params.non_empty("syncToken");
    if sync_token.is_some() && params.get("minAccessRole").is_some() {
        return Err(bad_param("invalid", "minAccessRole is not allowed with syncToken.", "minAccessRole"));
    }
    let show_deleted = sync_token.is_some() || params.get("showDeleted") == Some("true");
    let epoch = calendar.user(&caller.sub, &caller.email).list_epoch;
    let since = match sync_token {
        None => None,
        Some(token) => Some(sync_point(calendar, token, &caller.sub, &Listing::CalendarList, epoch)?.seq),
    };
    let cursor = start(calendar, &params, &caller.sub, &Listing::CalendarList)?;
    let user = calendar.user(&caller.sub, &caller.email);
    let mut candidates: Vec<Candidate> = user
        .calendars
        .values()
        .filter(|c| c.order > cursor.after && (show_deleted || !c.deleted) && since.is_none_or(|seq| c.seq > seq))
        .map(|c| Candidate { order: c.order, item: c.entry_json() })
        .collect();
    candidates.sort_by_key(|c| c.order);
    let page = cut(calendar, cursor, candidates, max, epoch);
    let envelope = json!({ "kind": "calendar#calendarList", "etag": format!("\"p{}\"", calendar.seq) });
    Ok(json(StatusCode::OK, page.into_body(envelope)))
}
