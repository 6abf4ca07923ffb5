//! The `calendars` part: `calendarList.list` with its own sync token. Entries become
//! `google_calendar` records; a deleted entry (incremental) or one a full listing no longer shows
//! tombstones the calendar and every event under it in the same commit.

use super::client::Client;
use super::events::{part_name, CalendarRef};
use super::part::Part;
use crate::engine::{Clear, Engine};
use crate::SyncError;
use patchbay_store::{Page, Record, RecordFilter, RecordKind, StateWrite, StoreError, Sweep, TenantScope};
use serde_json::Value;
use std::collections::HashSet;

/// The part name of the calendar list.
pub(crate) const PART: &str = "calendars";

/// A sweep generation above any real one: tombstones every live row under the parent.
const EVERYTHING: i64 = i64::MAX;

/// Brings the calendar list up to date.
pub(crate) async fn sync_list(engine: &Engine<'_>, client: &Client<'_>) -> Result<(), SyncError> {
    let mut part = Part::load(engine, PART.to_owned(), None).await?;
    loop {
        if engine.cancel.is_cancelled() {
            return Err(SyncError::Store(StoreError::LeaseLost));
        }
        let now = engine.session.deps().clock.now();
        let listing = match client.calendar_list(&part.query(now)).await {
            Ok(listing) => listing,
            Err(error) if part.recover(engine, &error) => continue,
            Err(error) => return Err(error),
        };
        let mut records = Vec::with_capacity(listing.items.len());
        let mut sweeps = Vec::new();
        let mut gone = Vec::new();
        let mut seen = HashSet::new();
        for item in &listing.items {
            let Some(id) = item.get("id").and_then(Value::as_str) else { continue };
            seen.insert(id.to_owned());
            let record_id = engine.id_of(RecordKind::GoogleCalendar, id);
            if item.get("deleted").and_then(Value::as_bool) == Some(true) {
                records.push(engine.delete(RecordKind::GoogleCalendar, id, None));
                sweeps.push(Sweep {
                    kind: RecordKind::GoogleEvent,
                    parent_id: Some(record_id),
                    generation: EVERYTHING,
                });
                gone.push(id.to_owned());
            } else {
                records.push(engine.record(RecordKind::GoogleCalendar, id, None, item, Clear::default()));
            }
        }
        if part.finishes_full(&listing) {
            // Calendars the full listing did not show are gone: their events go with them.
            for calendar in live_calendars(engine).await? {
                if calendar.generation < part.generation && !seen.contains(&calendar.provider_id) {
                    sweeps.push(Sweep {
                        kind: RecordKind::GoogleEvent,
                        parent_id: Some(calendar.id),
                        generation: EVERYTHING,
                    });
                    gone.push(calendar.provider_id);
                }
            }
            sweeps.push(Sweep { kind: RecordKind::GoogleCalendar, parent_id: None, generation: part.generation });
        }
        let done = part.commit(engine, &listing, records, sweeps).await?;
        for id in gone {
            forget_events_part(engine, &id).await?;
        }
        if done {
            return Ok(());
        }
    }
}

/// A deleted calendar's events part starts over with a full listing should the id come back
/// (Google makes a re-added calendar a fresh one; its old sync tokens are dead anyway).
async fn forget_events_part(engine: &Engine<'_>, calendar_id: &str) -> Result<(), SyncError> {
    let name = part_name(calendar_id);
    let Some(state) = engine.state(&name).await? else { return Ok(()) };
    if state.checkpoint.is_null() {
        return Ok(());
    }
    let write = StateWrite {
        part: name,
        expected_version: state.version,
        checkpoint: Value::Null,
        generation: state.generation,
        success_at: None,
        full_at: None,
    };
    engine.save_state(write).await?;
    Ok(())
}

/// The connection's live calendar records (every page).
pub(crate) async fn live_calendars(engine: &Engine<'_>) -> Result<Vec<Record>, SyncError> {
    let connection = engine.session.connection();
    let scope = TenantScope::new(connection.tenant_id);
    let store = &engine.session.deps().store;
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = Page::new(Some(Page::MAX_LIMIT), after);
        let found = store
            .list_records(scope, connection.id, RecordKind::GoogleCalendar, &RecordFilter::default(), page)
            .await?;
        all.extend(found.items);
        match found.next_cursor {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}

/// The calendars whose events a run syncs: every live calendar record.
pub(crate) async fn calendar_refs(engine: &Engine<'_>) -> Result<Vec<CalendarRef>, SyncError> {
    let records = live_calendars(engine).await?;
    Ok(records.into_iter().map(|r| CalendarRef { provider_id: r.provider_id, record_id: r.id }).collect())
}
