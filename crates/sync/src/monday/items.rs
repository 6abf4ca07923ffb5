//! The `items:{board}` parts (architecture §4.3, providers.md A2.2): `items_page` ordered by
//! `__last_updated__` (oldest change first), continued through root `next_items_page`, and a
//! checkpoint after every page in that page's transaction. Incremental listings ask for items
//! updated at or after the watermark and skip what was already applied at it; a full
//! reconciliation (when due) lists every active item under a new generation and sweeps the rest,
//! so deleted and archived items are tombstoned. A dead cursor restarts the listing.

use super::checkpoint::{cursor_dead, fingerprint, ItemsCheckpoint};
use super::client::{self, COMPLEXITY};
use super::{boards::parse_time, cost};
use crate::engine::{Clear, Engine};
use crate::SyncError;
use chrono::{DateTime, SecondsFormat, Utc};
use patchbay_store::{RecordId, RecordKind, RecordWrite, StateWrite, Sweep, SyncState};
use serde_json::{json, Value};

/// What is read of an item, and so what its record holds.
pub(super) const ITEM_FIELDS: &str = "id name state group { id } column_values { id type text value } updated_at";

/// Restarts after a dead cursor allowed in one run, so a cursor that never lives long enough
/// cannot spin a run forever.
const MAX_RESTARTS: u32 = 3;

/// The part name of a board's items.
pub(super) fn part(board: &str) -> String {
    format!("items:{board}")
}

/// One page of items and the cursor to the rest.
struct ItemsPage {
    cursor: Option<String>,
    items: Vec<Value>,
}

/// Brings a board's items up to date: continues an unfinished listing, else starts an
/// incremental one, or a full reconciliation when one is due.
pub(super) async fn sync(engine: &Engine<'_>, board: &str, state: Option<&SyncState>) -> Result<(), SyncError> {
    let settings = &engine.session.deps().settings;
    let limit = settings.monday_page_size.clamp(1, 500);
    let mut cp = state.map(|s| ItemsCheckpoint::read(&s.checkpoint)).unwrap_or_default();
    let mut version = state.map_or(0, |s| s.version);
    let mut generation = state.map_or(0, |s| s.generation);
    if cp.cursor.is_none() {
        let every = chrono::Duration::from_std(settings.monday_full_every).unwrap_or(chrono::Duration::MAX);
        let now = engine.session.deps().clock.now();
        cp.full = cp.reset || state.and_then(|s| s.last_full_at).is_none_or(|at| now - at >= every);
        if cp.full {
            generation += 1;
            // The listing rebuilds the watermark from what is live now: an item remembered at the
            // old watermark may be tombstoned by this listing's sweep, and a later restore that
            // brings it back unchanged (same second, same fields) must not be skipped as applied.
            cp.watermark = None;
            cp.at_watermark.clear();
        }
    }
    let parent = engine.id_of(RecordKind::MondayBoard, board);
    let mut restarts = 0;
    loop {
        super::check_cancel(engine)?;
        let fetched = match cp.cursor.clone() {
            Some(cursor) => next_page(engine, &cursor, limit).await,
            None => first_page(engine, board, limit, if cp.full { None } else { cp.watermark }).await,
        };
        let page = match fetched {
            Err(SyncError::Rejected { code, .. }) if cp.cursor.is_some() && cursor_dead(&code) => {
                if restarts == MAX_RESTARTS {
                    return Err(SyncError::Transient("monday item cursors keep expiring".into()));
                }
                // A full listing starts over under the same generation; an incremental one from
                // the watermark the pages so far have moved.
                restarts += 1;
                cp.cursor = None;
                continue;
            }
            other => other?,
        };
        // The board went away since it was listed; the next board listing tombstones it.
        let Some(page) = page else { return Ok(()) };
        let records = apply(engine, &mut cp, parent, &page.items)?;
        cp.cursor = page.cursor;
        let done = cp.cursor.is_none();
        let full = cp.full;
        let sweeps = match done && full {
            true => vec![Sweep { kind: RecordKind::MondayItem, parent_id: Some(parent), generation }],
            false => Vec::new(),
        };
        if done {
            cp.full = false;
            cp.reset = false;
        }
        let now = engine.session.deps().clock.now();
        let state = StateWrite {
            part: part(board),
            expected_version: version,
            checkpoint: cp.to_json(),
            generation,
            success_at: done.then_some(now),
            full_at: (done && full).then_some(now),
        };
        version = engine.write_page(generation, records, sweeps, state).await?.state_version;
        if done {
            return Ok(());
        }
    }
}

/// The records of a page, moving the checkpoint's watermark past them. A full listing writes
/// every item (an unchanged one is only marked seen in the generation, so the sweep spares it).
fn apply(
    engine: &Engine<'_>,
    cp: &mut ItemsCheckpoint,
    parent: RecordId,
    items: &[Value],
) -> Result<Vec<RecordWrite>, SyncError> {
    let mut records = Vec::with_capacity(items.len());
    for item in items {
        let Some(id) = item.get("id").and_then(Value::as_str).filter(|id| super::boards::is_id(id)) else {
            return Err(SyncError::Protocol("a monday item without a usable id".into()));
        };
        let updated_at = item.get("updated_at").and_then(Value::as_str).and_then(parse_time);
        let bytes = serde_json::to_vec(item).map_err(|_| SyncError::Protocol("an unreadable item".into()))?;
        let print = fingerprint(engine.sealer, &bytes);
        if !cp.full && cp.already_applied(id, updated_at, &print) {
            continue;
        }
        let state = item.get("state").and_then(Value::as_str).unwrap_or("active");
        if state == "active" {
            let clear = Clear { status: Some(state.to_owned()), provider_updated_at: updated_at, ..Clear::default() };
            records.push(engine.record(RecordKind::MondayItem, id, Some(parent), item, clear));
        } else {
            records.push(engine.delete(RecordKind::MondayItem, id, Some(parent)));
        }
        cp.applied(id, updated_at, print);
    }
    Ok(records)
}

/// The first page: everything (full), or what changed at or after the watermark.
async fn first_page(
    engine: &Engine<'_>,
    board: &str,
    limit: u32,
    since: Option<DateTime<Utc>>,
) -> Result<Option<ItemsPage>, SyncError> {
    let mut params = json!({ "order_by": [{ "column_id": "__last_updated__", "direction": "asc" }] });
    if let Some(since) = since {
        params["rules"] = json!([{
            "column_id": "__last_updated__",
            "compare_value": [since.to_rfc3339_opts(SecondsFormat::Secs, true)],
            "operator": "greater_than_or_equals",
        }]);
    }
    // The board id is checked to be decimal before it gets here, so it is safe in the text,
    // where the estimate can count on one board.
    let text = format!(
        "query ($params: ItemsQuery) {{ {COMPLEXITY} boards(ids: [{board}]) {{ \
         items_page(limit: {limit}, query_params: $params) {{ cursor items {{ {ITEM_FIELDS} }} }} }} }}"
    );
    let spend = engine.session.monday_spend(false, cost::first_items_page(limit));
    let data = client::query(engine.session, spend, &text, json!({ "params": params })).await?;
    match data.pointer("/boards/0/items_page") {
        None | Some(Value::Null) => Ok(None),
        Some(page) => read_page(page).map(Some),
    }
}

/// The page after `cursor`.
async fn next_page(engine: &Engine<'_>, cursor: &str, limit: u32) -> Result<Option<ItemsPage>, SyncError> {
    let text = format!(
        "query ($cursor: String!) {{ {COMPLEXITY} next_items_page(cursor: $cursor, limit: {limit}) \
         {{ cursor items {{ {ITEM_FIELDS} }} }} }}"
    );
    let spend = engine.session.monday_spend(false, cost::next_items_page(limit));
    let data = client::query(engine.session, spend, &text, json!({ "cursor": cursor })).await?;
    let page = data.get("next_items_page").ok_or_else(|| SyncError::Protocol("no next_items_page".into()))?;
    read_page(page).map(Some)
}

fn read_page(page: &Value) -> Result<ItemsPage, SyncError> {
    let items = match page.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => return Err(SyncError::Protocol("an items page without items".into())),
    };
    let cursor = page.get("cursor").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_owned);
    Ok(ItemsPage { cursor, items })
}

/// Marks the items parts of boards that were tombstoned, so a board that comes back is listed
/// in full (its items were swept; an incremental listing would not bring the old ones back).
pub(super) async fn forget(engine: &Engine<'_>, boards: &[String]) -> Result<(), SyncError> {
    if boards.is_empty() {
        return Ok(());
    }
    let connection = engine.session.connection().id;
    for state in engine.session.deps().store.sync_states(connection).await? {
        let Some(board) = state.part.strip_prefix("items:") else { continue };
        if !boards.iter().any(|b| b == board) || ItemsCheckpoint::read(&state.checkpoint).reset {
            continue;
        }
        let reset = ItemsCheckpoint { reset: true, ..ItemsCheckpoint::default() };
        engine
            .save_state(StateWrite {
                part: state.part.clone(),
                expected_version: state.version,
                checkpoint: reset.to_json(),
                generation: state.generation,
                success_at: None,
                full_at: None,
            })
            .await?;
    }
    Ok(())
}
