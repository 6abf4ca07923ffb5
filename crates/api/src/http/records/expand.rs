//! `expand=instances`: loads a calendar's events overlapping the window and every exception of
//! the recurring masters among them, opens them, and hands them to
//! [`patchbay_sync::recurrence::expand_window`].

use super::google::{EventOut, MAX_INSTANCES};
use super::views::{EventFields, Meta, View};
use crate::auth::Principal;
use crate::http::problem::{ApiError, ProblemCode};
use crate::state::AppState;
use patchbay_store::{Page, Record, RecordFilter, RecordId, RecordKind};
use patchbay_sync::recurrence::{expand_window, is_master, RecurrenceError, Window};
use patchbay_sync::seal::Sealer;
use serde_json::Value;
use std::collections::HashMap;

/// Stored events a window may load before it is refused (occurrences are counted separately).
const MAX_LOADED: usize = 2 * MAX_INSTANCES;

fn too_large() -> ApiError {
    ApiError::new(
        ProblemCode::InvalidQuery,
        format!("the window holds more than {MAX_INSTANCES} events: ask for a shorter `time_min`..`time_max`"),
    )
}

/// The events of `calendar` in `window`, occurrences included, ordered by start.
pub async fn expand(
    state: &AppState,
    principal: &Principal,
    sealer: &Sealer,
    calendar: &Record,
    window: Window,
) -> Result<Vec<EventOut>, ApiError> {
    let filter = RecordFilter {
        parent_id: Some(calendar.id),
        time_min: Some(window.min),
        time_max: Some(window.max),
        ..RecordFilter::default()
    };
    let stored = load(state, principal, calendar, &filter).await?;
    let mut events = Vec::with_capacity(stored.len());
    let mut exceptions = HashMap::new();
    for record in stored {
        // An unreadable event cannot be placed in time: it is logged by the sealer and left out.
        let Some(event) = super::open::<Value>(sealer, &record) else { continue };
        if is_master(&event) {
            let filter = RecordFilter {
                parent_id: Some(calendar.id),
                series_id: Some(record.provider_id.clone()),
                ..RecordFilter::default()
            };
            let rows = load(state, principal, calendar, &filter).await?;
            let opened = rows.iter().filter_map(|r| super::open::<Value>(sealer, r)).collect();
            exceptions.insert(record.provider_id.clone(), opened);
        }
        events.push((record, event));
    }
    let instances = match expand_window(window, events, &exceptions, MAX_INSTANCES) {
        Ok(instances) => instances,
        Err(RecurrenceError::TooMany(_)) => return Err(too_large()),
        Err(other) => return Err(ApiError::internal(other)),
    };
    Ok(instances
        .into_iter()
        .map(|instance| {
            let fields: Option<EventFields> = serde_json::from_value(instance.event.clone()).ok();
            let mut meta = Meta::of(&instance.source, fields.is_none());
            if instance.generated {
                // An occurrence has the id its exception would have if it were modified: both
                // derive from the calendar and Google's instance id `{master}_{start}`.
                let provider_id = instance.event.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
                meta.id =
                    RecordId::derive_event(calendar.connection_id, &calendar.provider_id, &provider_id).to_string();
                meta.provider_id = provider_id;
            }
            View { meta, fields }
        })
        .collect())
}

/// Every live event of the calendar matching `filter`, up to [`MAX_LOADED`].
async fn load(
    state: &AppState,
    principal: &Principal,
    calendar: &Record,
    filter: &RecordFilter,
) -> Result<Vec<Record>, ApiError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = Page::new(Some(Page::MAX_LIMIT), after);
        let rows = state
            .store
            .list_records(principal.scope(), calendar.connection_id, RecordKind::GoogleEvent, filter, page)
            .await?;
        out.extend(rows.items);
        if out.len() > MAX_LOADED {
            return Err(too_large());
        }
        match rows.next_cursor {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}
