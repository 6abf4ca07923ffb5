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
    affirm_signals(deps, engine.session.connection().id, &live).await?;
    Ok(())
}

/// How long a board's registered webhooks vouch for its items part: monday's webhooks do not
/// expire, so the signal is re-affirmed by every run of the connection (backstops included)
/// and lapses only if runs stop or the webhooks are released.
pub const SIGNAL_HORIZON: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

/// Marks the items part of every live board whose board webhooks are all registered at monday
/// (every event in `events`) as having a healthy change signal until now + [`SIGNAL_HORIZON`];
/// a board missing one keeps no signal, so its items are polled.
pub async fn affirm_signals_for(
    deps: &crate::SyncDeps,
    connection: patchbay_store::ConnectionId,
    live: &[String],
    events: &[&str],
) -> Result<(), SyncError> {
    let hooks = deps.store.monday_webhooks_of_connection(connection).await?;
    let now = deps.clock.now();
    let until = now + chrono::Duration::from_std(SIGNAL_HORIZON).unwrap_or_default();
    for board in live.iter().filter(|b| boards::is_id(b)) {
        let covered = events.iter().all(|event| {
            hooks.iter().any(|h| &h.board_id == board && h.event == *event && h.monday_webhook_id.is_some())
        });
        let healthy = covered.then_some(until);
        deps.store.set_change_signal(connection, &items::part(board), healthy).await?;
    }
    Ok(())
}

/// [`affirm_signals_for`] with the board events Patchbay registers, skipped for a connection
/// without any registered webhook (its items parts keep no signal and are polled).
async fn affirm_signals(
    deps: &crate::SyncDeps,
    connection: patchbay_store::ConnectionId,
    live: &[String],
) -> Result<(), SyncError> {
    if deps.store.monday_webhooks_of_connection(connection).await?.is_empty() {
        return Ok(());
    }
    affirm_signals_for(deps, connection, live, &BOARD_EVENTS).await
}

/// The board events Patchbay registers a webhook for (architecture §4.4): item created, column
/// value changed, name changed, item deleted / archived / moved.
pub const BOARD_EVENTS: [&str; 6] =
    ["create_item", "change_column_value", "change_name", "item_deleted", "item_archived", "item_moved_to_any_group"];

/// Stops between pages when the worker is shutting down; the checkpoint already written is
/// where the next run picks up.
fn check_cancel(engine: &Engine<'_>) -> Result<(), SyncError> {
    match engine.cancel.is_cancelled() {
        true => Err(SyncError::Store(patchbay_store::StoreError::LeaseLost)),
        false => Ok(()),
    }
}
