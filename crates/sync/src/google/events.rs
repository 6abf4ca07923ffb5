//! The `events:{calendar id}` part: a full listing bounded in the past, then incremental
//! listings from the sync token; each page committed with its checkpoint; a 410 restarts with a
//! full listing under a new generation whose last page sweeps what it did not see.

use super::client::Client;
use super::fields::event_write;
use super::part::Part;
use crate::engine::Engine;
use crate::SyncError;
use patchbay_store::{RecordId, RecordKind, RecordWrite, StoreError, Sweep};

/// The part name of a calendar's events.
pub(crate) fn part_name(calendar_id: &str) -> String {
    format!("events:{calendar_id}")
}

/// A live calendar whose events are synced.
#[derive(Clone, Debug)]
pub(crate) struct CalendarRef {
    /// Google's calendar id (the email for a primary calendar).
    pub provider_id: String,
    /// The calendar's record id: the events' parent.
    pub record_id: RecordId,
}

/// Brings one calendar's events up to date (or as far as the run gets: every committed page
/// stays committed).
pub(crate) async fn sync_calendar(
    engine: &Engine<'_>,
    client: &Client<'_>,
    calendar: &CalendarRef,
) -> Result<(), SyncError> {
    let days_back = engine.session.deps().settings.google_days_back;
    let mut part = Part::load(engine, part_name(&calendar.provider_id), Some(days_back)).await?;
    loop {
        if engine.cancel.is_cancelled() {
            return Err(SyncError::Store(StoreError::LeaseLost));
        }
        let now = engine.session.deps().clock.now();
        let listing = match client.events(&calendar.provider_id, &part.query(now)).await {
            Ok(listing) => listing,
            Err(error) if part.recover(engine, &error) => continue,
            Err(error) => return Err(error),
        };
        let records: Vec<RecordWrite> =
            listing.items.iter().filter_map(|item| event_write(engine, calendar.record_id, item)).collect();
        // The last page of a full listing tombstones the calendar's events it did not see, in
        // the same commit: readers go from the old set to the new one, never through empty.
        let sweeps = if part.finishes_full(&listing) {
            vec![Sweep {
                kind: RecordKind::GoogleEvent,
                parent_id: Some(calendar.record_id),
                generation: part.generation,
            }]
        } else {
            Vec::new()
        };
        if part.commit(engine, &listing, records, sweeps).await? {
            return Ok(());
        }
    }
}
