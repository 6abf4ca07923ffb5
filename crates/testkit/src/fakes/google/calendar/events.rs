//! `GET /calendar/v3/calendars/{calendarId}/events` with `singleEvents=false` (providers.md
//! B6.2): masters, exceptions and single events as stored; `maxResults` (default 250, cap 2500),
//! `pageToken`, `syncToken`, `showDeleted`, `timeMin`/`timeMax`, `updatedMin`.

use super::errors::{api_error, bad_param, not_found, ApiError};
use super::gate::{admit, Need};
use super::model::Event;
use super::paging::{cut, max_results, start, sync_point, Candidate, Listing};
use crate::fakes::common::{json, Params};
use crate::fakes::google::Shared;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use std::time::{Duration, SystemTime};

/// How far back `updatedMin` may reach before Google answers 410 `updatedMinTooLongAgo` (Google
/// does not publish its horizon; this is the fake's choice).
pub const UPDATED_MIN_HORIZON: Duration = Duration::from_secs(28 * 24 * 3600);

/// Parameters Google refuses next to a `syncToken`.
const NOT_WITH_SYNC_TOKEN: [&str; 8] = [
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
];

/// The filters of a full (not incremental) listing.
struct Window {
    time_min: Option<DateTime<Utc>>,
    time_max: Option<DateTime<Utc>>,
    updated_min: Option<SystemTime>,
    show_deleted: bool,
}

pub(crate) async fn list_events(
    State(shared): State<Shared>,
    Path(calendar_id): Path<String>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admit(&shared, &headers, uri.path(), Need::Events).await?;
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let mut st = shared.lock().unwrap();
    let now = st.clock.now();
    let state = &mut st.calendar;
    let max = max_results(&params, 250, 2500)?;
    let window = window(&params, now)?;
    let (id, epoch) = match state.calendar(&caller.sub, &caller.email, &calendar_id) {
        Some(calendar) if !calendar.deleted => (calendar.id.clone(), calendar.epoch),
        _ => return Err(not_found()),
    };
    let listing = Listing::Events(id.clone());
    let since = match params.non_empty("syncToken") {
        None => None,
        Some(token) => Some(sync_point(state, token, &caller.sub, &listing, epoch)?.seq),
    };
    let cursor = start(state, &params, &caller.sub, &listing)?;
    let calendar = state.calendar(&caller.sub, &caller.email, &id).expect("looked up above");
    let envelope = calendar.events_envelope();
    let mut matching: Vec<&Event> = calendar
        .events
        .values()
        .filter(|e| e.order > cursor.after)
        .filter(|e| match (since, &window) {
            (Some(seq), _) => e.seq > seq,
            (None, Some(w)) => {
                let deleted_shown = w.show_deleted || w.updated_min.is_some();
                (deleted_shown || !e.cancelled)
                    && e.overlaps(w.time_min, w.time_max)
                    && w.updated_min.is_none_or(|min| e.updated >= min)
            }
            (None, None) => unreachable!("window is None only with a syncToken"),
        })
        .collect();
    // Only the page (and one more, so `cut` sees that more follow) is sorted and rendered: a
    // calendar of 100,000 events pages in linear time instead of rendering the rest every page.
    if matching.len() > max + 1 {
        matching.select_nth_unstable_by_key(max, |e| e.order);
        matching.truncate(max + 1);
    }
    matching.sort_unstable_by_key(|e| e.order);
    let candidates = matching.into_iter().map(|e| Candidate { order: e.order, item: e.to_json(&id) }).collect();
    let page = cut(state, cursor, candidates, max, epoch);
    Ok(json(StatusCode::OK, page.into_body(envelope)))
}

/// Checks the query and returns the full listing's filters (`None` with a `syncToken`).
fn window(params: &Params, now: SystemTime) -> Result<Option<Window>, ApiError> {
    if params.get("singleEvents") == Some("true") {
        return Err(not_implemented("singleEvents=true"));
    }
    let show_deleted = params.get("showDeleted").map(|v| v == "true");
    if params.non_empty("syncToken").is_some() {
        if let Some(name) = NOT_WITH_SYNC_TOKEN.iter().find(|name| params.get(name).is_some()) {
            return Err(bad_param("invalid", &format!("{name} is not allowed with syncToken."), name));
        }
        if show_deleted == Some(false) {
            return Err(bad_param("invalid", "showDeleted=false is not allowed with syncToken.", "showDeleted"));
        }
        return Ok(None);
    }
    if let Some(order) = params.get("orderBy") {
        if order == "startTime" {
            let message = "The requested ordering is not available for the particular query.";
            return Err(bad_param("badRequest", message, "orderBy"));
        }
        return Err(not_implemented("orderBy"));
    }
    for name in ["q", "iCalUID", "privateExtendedProperty", "sharedExtendedProperty"] {
        if params.get(name).is_some() {
            return Err(not_implemented(name));
        }
    }
    let time_min = timestamp(params, "timeMin")?;
    let time_max = timestamp(params, "timeMax")?;
    if let (Some(min), Some(max)) = (time_min, time_max) {
        if max <= min {
            return Err(bad_param("timeRangeEmpty", "The specified time range is empty.", "timeMax"));
        }
    }
    let updated_min = timestamp(params, "updatedMin")?.map(SystemTime::from);
    if updated_min.is_some_and(|min| now.duration_since(min).unwrap_or_default() > UPDATED_MIN_HORIZON) {
        let message = "The requested minimum modification time lies too far in the past.";
        return Err(api_error(410, "calendar", "updatedMinTooLongAgo", message, Some(("parameter", "updatedMin"))));
    }
    Ok(Some(Window { time_min, time_max, updated_min, show_deleted: show_deleted == Some(true) }))
}

/// An RFC 3339 parameter (offset required); 400 when malformed.
fn timestamp(params: &Params, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = params.get(name) else { return Ok(None) };
    DateTime::parse_from_rfc3339(raw)
        .map(|at| Some(at.with_timezone(&Utc)))
        .map_err(|_| bad_param("badRequest", &format!("Bad Request: invalid {name} {raw:?}"), name))
}

/// The fake's own answer for a parameter it does not imitate, so no test passes by accident.
fn not_implemented(what: &str) -> ApiError {
    api_error(501, "global", "notImplemented", &format!("fake Google: {what} is not implemented"), None)
}
