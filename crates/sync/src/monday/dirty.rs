//! Item ids a board webhook said changed (architecture §4.4 Monday): the event body is only a
//! hint, so the applier marks a part `item:{board}:{item}` dirty and the run re-reads those items
//! as they are now with `items(ids:)`, at most [`BATCH`] per call. Reading the current state
//! (never applying the event's payload) makes out-of-order deliveries converge; an item that is
//! deleted, archived, gone or moved to another board is tombstoned under this board.

use super::client::{self, COMPLEXITY};
use super::{cost, items};
use crate::engine::{Clear, Engine};
use crate::SyncError;
use patchbay_store::{RecordKind, StateWrite, SyncState};
use serde_json::{json, Value};
use std::collections::HashMap;

/// monday's limit on ids per `items(ids:)` call.
pub const BATCH: usize = 100;

const PREFIX: &str = "item:";

/// The part a webhook marks dirty for one item of a board.
pub fn part(board: &str, item: &str) -> String {
    format!("{PREFIX}{board}:{item}")
}

/// `(board, item)` of an `item:{board}:{item}` part.
pub fn parse(part: &str) -> Option<(&str, &str)> {
    let (board, item) = part.strip_prefix(PREFIX)?.split_once(':')?;
    (super::boards::is_id(board) && super::boards::is_id(item)).then_some((board, item))
}

/// Re-reads the dirty items of `board` (from `states`, read at the start of the run) and clears
/// their parts. `live` says whether the board is still synced; if not, its items were swept with
/// it and the parts are only cleared.
pub(super) async fn reread(
    engine: &Engine<'_>,
    board: &str,
    dirty: &[&SyncState],
    live: bool,
) -> Result<(), SyncError> {
    if dirty.is_empty() {
        return Ok(());
    }
    let deps = engine.session.deps();
    let connection = engine.session.connection().id;
    for chunk in dirty.chunks(BATCH) {
        super::check_cancel(engine)?;
        // Signals after this instant stay dirty (a later run reads them again).
        let started = deps.clock.now();
        let ids: Vec<&str> = chunk.iter().filter_map(|s| parse(&s.part).map(|(_, item)| item)).collect();
        let mut records = Vec::new();
        let mut generation = 0;
        if live {
            let found = read(engine, &ids).await?;
            // Fresh: a listing earlier in this run may have moved the items part's generation.
            let items_state = deps.store.sync_state(connection, &items::part(board)).await?;
            generation = items_state.map_or(0, |s| s.generation);
            let parent = engine.id_of(RecordKind::MondayBoard, board);
            for id in &ids {
                let current = found.get(*id).filter(|item| {
                    item.pointer("/board/id").and_then(Value::as_str) == Some(board)
                        && item.get("state").and_then(Value::as_str).unwrap_or("active") == "active"
                });
                match current {
                    Some(item) => {
                        let mut item = item.clone();
                        // Stored as the listing stores it (no board), so an unchanged item is no change.
                        if let Value::Object(map) = &mut item {
                            map.remove("board");
                        }
                        let updated_at =
                            item.get("updated_at").and_then(Value::as_str).and_then(super::boards::parse_time);
                        let clear = Clear {
                            status: Some("active".into()),
                            provider_updated_at: updated_at,
                            ..Clear::default()
                        };
                        records.push(engine.record(RecordKind::MondayItem, id, Some(parent), &item, clear));
                    }
                    None => records.push(engine.delete(RecordKind::MondayItem, id, Some(parent))),
                }
            }
        }
        let (first, rest) = chunk.split_first().expect("chunks are never empty");
        let clear = |state: &SyncState| StateWrite {
            part: state.part.clone(),
            expected_version: state.version,
            checkpoint: Value::Null,
            generation: state.generation,
            success_at: Some(started),
            full_at: None,
        };
        engine.write_page(generation, records, Vec::new(), clear(first)).await?;
        for state in rest {
            engine.save_state(clear(state)).await?;
        }
    }
    Ok(())
}

/// The items of `ids` as monday has them now (any state), by id.
async fn read(engine: &Engine<'_>, ids: &[&str]) -> Result<HashMap<String, Value>, SyncError> {
    // Ids are checked to be decimal (see `parse`), so they are safe in the query text.
    let list = ids.join(", ");
    let text = format!("query {{ {COMPLEXITY} items(ids: [{list}]) {{ {} board {{ id }} }} }}", items::ITEM_FIELDS);
    let spend = engine.session.monday_spend(false, cost::items_by_id(ids.len()));
    let data = client::query(engine.session, spend, &text, json!({})).await?;
    let items = match data.get("items") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Null) | None => Vec::new(),
        _ => return Err(SyncError::Protocol("items by id without a list".into())),
    };
    Ok(items
        .into_iter()
        .filter_map(|item| item.get("id").and_then(Value::as_str).map(str::to_owned).map(|id| (id, item)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{parse, part};

    #[test]
    fn item_parts_round_trip_and_refuse_anything_else() {
        assert_eq!(part("7001", "42"), "item:7001:42");
        assert_eq!(parse(&part("7001", "42")), Some(("7001", "42")));
        for other in ["items:7001", "boards", "item:7001", "item:7001:4x", "item::42", "events:a@b"] {
            assert_eq!(parse(other), None, "{other}");
        }
    }
}
