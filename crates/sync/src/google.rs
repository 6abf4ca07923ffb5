//! Google Calendar: the API client and the sync engine (architecture §4.3, providers.md B6).

use crate::engine::Engine;
use crate::SyncError;

/// Syncs a Google connection: the calendar list, then each calendar's events (or only what
/// `engine.scope` asks for).
pub async fn run(engine: &Engine<'_>) -> Result<(), SyncError> {
    let _ = engine;
    todo!("google engine")
}
