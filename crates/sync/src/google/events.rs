//! The `events:{calendar id}` part: a full listing bounded in the past, then incremental
//! listings from the sync token; each page committed with its checkpoint; a 410 restarts with a
//! full listing under a new generation whose last page sweeps what it did not see.
//!
//! Pages are pipelined one deep: while a page's records are written (the store's work), the
//! next page is fetched, parsed and sealed (the engine's), so the two overlap instead of taking
//! turns. Commits still happen one at a time and in order, each with its own checkpoint; a page
//! fetched ahead is only written after the page before it committed, and is dropped (never
//! written) when that commit fails.

use super::client::{Client, Listing, Query};
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

/// One page as received, its items already turned into sealed record writes (the listing keeps
/// only its tokens: the parsed items are dropped as soon as they are sealed).
struct Fetched {
    listing: Listing,
    records: Vec<RecordWrite>,
}

/// Fetches one page of `calendar`'s events and seals its items.
async fn fetch(
    engine: &Engine<'_>,
    client: &Client<'_>,
    calendar: &CalendarRef,
    query: &Query<'_>,
) -> Result<Fetched, SyncError> {
    let mut listing = client.events(&calendar.provider_id, query).await?;
    let items = std::mem::take(&mut listing.items);
    let records = items.iter().filter_map(|item| event_write(engine, calendar, item)).collect();
    Ok(Fetched { listing, records })
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
    // The next page, fetched while the previous one was being written.
    let mut ahead: Option<Result<Fetched, SyncError>> = None;
    loop {
        if engine.cancel.is_cancelled() {
            return Err(SyncError::Store(StoreError::LeaseLost));
        }
        let fetched = match ahead.take() {
            Some(fetched) => fetched,
            None => {
                let now = engine.session.deps().clock.now();
                fetch(engine, client, calendar, &part.query(now)).await
            }
        };
        // A refusal of a page fetched ahead is judged here, after the page before it committed:
        // the part is exactly where it would have been had the page been asked for now.
        let Fetched { listing, records } = match fetched {
            Ok(fetched) => fetched,
            Err(error) if part.recover(engine, &error) => continue,
            Err(error) => return Err(error),
        };
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
        let Some(following) = part.following(&listing) else {
            if part.commit(engine, &listing, records, sweeps).await? {
                return Ok(());
            }
            continue;
        };
        // More pages follow: write this one while the next one is fetched and sealed.
        let next_query = following.query();
        let (committed, next) =
            tokio::join!(part.commit(engine, &listing, records, sweeps), fetch(engine, client, calendar, &next_query));
        if committed? {
            return Ok(());
        }
        ahead = Some(next);
    }
}
