//! Google Calendar: the API client and the sync engine (architecture §4.3, providers.md B6, B8).
//!
//! - [`client`]: `calendarList.list` and `events.list` through the connection's session.
//! - [`checkpoint`], [`part`]: a listing part's stored position and its page commits.
//! - [`calendars`]: the `calendars` part (the calendar list, delete detection).
//! - [`events`]: the `events:{calendar id}` parts (full, incremental, 410 → new generation).
//! - [`fields`]: an event resource's clear fields.

mod calendars;
mod checkpoint;
mod client;
mod events;
mod fields;
mod part;
pub mod watch;

use crate::engine::{list_due, Engine, Scope};
use crate::SyncError;
use checkpoint::Checkpoint;
use client::{is_not_found, Client};

/// Syncs a Google connection: the calendar list, then each calendar's events (or only what
/// `engine.scope` asks for).
///
/// Errors: rate limits, open breakers, dead grants, transient provider failures and store errors
/// end the run at once (every committed page stays committed; the next run resumes after it). A
/// calendar whose events answer 404 was deleted since the list was read: it is skipped (the next
/// calendar-list sync tombstones it). A calendar whose events are forbidden (403 permission) is
/// skipped so the others still sync, and the run then ends with the first such error, so the
/// failure is visible on the run instead of silently leaving one calendar stale.
pub async fn run(engine: &Engine<'_>) -> Result<(), SyncError> {
    let client = Client::new(engine.session);
    let deps = engine.session.deps();
    let list_wanted = match engine.scope {
        Scope::Everything => true,
        Scope::DirtyOnly => {
            let state = engine.state(calendars::PART).await?;
            list_due(state.as_ref(), &deps.settings, deps.clock.now())
        }
    };
    if list_wanted {
        calendars::sync_list(engine, &client).await?;
    }
    let mut forbidden = None;
    for calendar in calendars::calendar_refs(engine).await? {
        if engine.scope == Scope::DirtyOnly && !events_wanted(engine, &calendar.provider_id).await? {
            continue;
        }
        match events::sync_calendar(engine, &client, &calendar).await {
            Ok(()) => {}
            Err(error) if is_not_found(&error) => {
                tracing::info!(calendar = %calendar.record_id, "calendar gone since the list was read; skipped");
            }
            Err(error @ SyncError::Permission(_)) => {
                tracing::warn!(calendar = %calendar.record_id, code = error.code(), "calendar events forbidden; skipped");
                forbidden.get_or_insert(error);
            }
            Err(error) => return Err(error),
        }
    }
    watch::ensure_watched(engine).await?;
    forbidden.map_or(Ok(()), Err)
}

/// In a [`Scope::DirtyOnly`] run: a calendar's events are synced when a change signal marked
/// them dirty, or when the part has not finished a full listing yet (new calendar, reset, or a
/// listing cut short).
async fn events_wanted(engine: &Engine<'_>, calendar_id: &str) -> Result<bool, SyncError> {
    Ok(match engine.state(&events::part_name(calendar_id)).await? {
        None => true,
        Some(state) => state.dirty || !Checkpoint::read(&state.checkpoint).is_settled(),
    })
}
