//! monday.com: the GraphQL client and the sync engine (architecture §4.3, providers.md A2, A3).
//!
//! - [`client`]: one GraphQL call through the provider session, errors read in both shapes,
//!   complexity reconciled (shared with write-back).
//! - `boards`: the `boards` part — boards, columns and groups, with delete detection.
//! - `items`: the `items:{board}` parts — incremental by `__last_updated__`, and the full
//!   reconciliation that tombstones deleted and archived items.

mod boards;
mod checkpoint;
pub mod client;
mod cost;
pub mod dirty;
mod errors;
mod items;

use self::checkpoint::ItemsCheckpoint;
use crate::engine::{list_due, Engine, Scope};
use crate::SyncError;
use std::collections::HashMap;

/// The part holding the board listing.
const BOARDS: &str = "boards";

/// Syncs a monday connection: boards (columns, groups), then each board's items (or only what
/// `engine.scope` asks for).
pub async fn run(engine: &Engine<'_>) -> Result<(), SyncError> {
    let deps = engine.session.deps();
    let boards_state = engine.state(BOARDS).await?;
    let list = match engine.scope {
        Scope::Everything => true,
        Scope::DirtyOnly => {
            boards_state.as_ref().is_some_and(|s| s.dirty)
                || list_due(boards_state.as_ref(), &deps.settings, deps.clock.now())
        }
    };
    let live = match list {
        true => boards::sync(engine).await?,
        false => boards::stored_live_boards(engine).await?,
    };
    let states: HashMap<String, _> = deps
        .store
        .sync_states(engine.session.connection().id)
        .await?
        .into_iter()
        .map(|state| (state.part.clone(), state))
        .collect();
    for board in live.iter().filter(|b| boards::is_id(b)) {
        let state = states.get(&items::part(board));
        // A dirty-only run leaves a settled part alone; a new board or an unfinished listing
        // (the run yielded mid-way) is always taken up.
        let settled = state.is_some_and(|s| !s.dirty && ItemsCheckpoint::read(&s.checkpoint).cursor.is_none());
        if engine.scope == Scope::DirtyOnly && settled {
            continue;
        }
        items::sync(engine, board, state).await?;
    }
    // Items a board webhook named: re-read by id whatever the scope (the listing above may not
    // see a deletion until the next full reconciliation).
    let mut dirty: HashMap<&str, Vec<&patchbay_store::SyncState>> = HashMap::new();
    for state in states.values().filter(|s| s.dirty) {
        if let Some((board, _)) = dirty::parse(&state.part) {
            dirty.entry(board).or_default().push(state);
        }
    }
    for (board, parts) in dirty {
        let live = live.iter().any(|b| b == board);
        dirty::reread(engine, board, &parts, live).await?;
    }
    Ok(())
}

/// Stops between pages when the worker is shutting down; the checkpoint already written is
/// where the next run picks up.
fn check_cancel(engine: &Engine<'_>) -> Result<(), SyncError> {
    match engine.cancel.is_cancelled() {
        true => Err(SyncError::Store(patchbay_store::StoreError::LeaseLost)),
        false => Ok(()),
    }
}
