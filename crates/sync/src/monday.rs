//! monday.com: the GraphQL client and the sync engine (architecture §4.3, providers.md A2, A3).

use crate::engine::Engine;
use crate::SyncError;

/// Syncs a monday connection: boards (columns, groups), then each board's items (or only what
/// `engine.scope` asks for).
pub async fn run(engine: &Engine<'_>) -> Result<(), SyncError> {
    let _ = engine;
    todo!("monday engine")
}
