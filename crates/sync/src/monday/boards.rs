//! The `boards` part: every listing re-reads all of the account's boards (`state: all`, paged
//! until a short page) under a new generation, writes live boards with their columns and groups,
//! sweeps columns and groups a board no longer has, and tombstones boards that are archived,
//! deleted or gone — with everything under them.

use super::client::{self, COMPLEXITY};
use super::{cost, items, BOARDS};
use crate::engine::{Clear, Engine};
use crate::SyncError;
use chrono::{DateTime, Utc};
use patchbay_store::{Page, RecordFilter, RecordKind, RecordWrite, StateWrite, Sweep, TenantScope};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Boards asked per page (`boards` costs 10 + limit × selection; 25 is monday's default).
const PAGE_SIZE: u32 = 25;

/// Lists every board and writes what changed; returns the provider ids of the live boards.
pub(super) async fn sync(engine: &Engine<'_>) -> Result<Vec<String>, SyncError> {
    let state = engine.state(BOARDS).await?;
    let mut version = state.as_ref().map_or(0, |s| s.version);
    // A new generation per listing: whatever this listing does not see is swept at its end.
    let generation = state.as_ref().map_or(0, |s| s.generation) + 1;
    let mut seen = BTreeSet::new();
    let mut live = Vec::new();
    let mut dead = Vec::new();
    for page in 1.. {
        super::check_cancel(engine)?;
        let boards = fetch_page(engine, page).await?;
        let last = boards.len() < PAGE_SIZE as usize;
        let mut records = Vec::new();
        let mut sweeps = Vec::new();
        for board in &boards {
            let Some(id) = board.get("id").and_then(Value::as_str).filter(|id| is_id(id)) else {
                return Err(SyncError::Protocol("a monday board without a usable id".into()));
            };
            seen.insert(id.to_owned());
            if board.get("state").and_then(Value::as_str) == Some("active") {
                live.push(id.to_owned());
                write_live(engine, id, board, generation, &mut records, &mut sweeps);
            } else {
                dead.push(id.to_owned());
                write_dead(engine, id, &mut records, &mut sweeps);
            }
        }
        if last {
            for id in stored_live_boards(engine).await? {
                if !seen.contains(&id) {
                    write_dead(engine, &id, &mut records, &mut sweeps);
                    dead.push(id);
                }
            }
            sweeps.push(Sweep { kind: RecordKind::MondayBoard, parent_id: None, generation });
        }
        let now = engine.session.deps().clock.now();
        let state = StateWrite {
            part: BOARDS.into(),
            expected_version: version,
            checkpoint: json!({ "page": page }),
            generation,
            success_at: last.then_some(now),
            full_at: None,
        };
        version = engine.write_page(generation, records, sweeps, state).await?.state_version;
        if last {
            break;
        }
    }
    items::forget(engine, &dead).await?;
    Ok(live)
}

/// monday ids are decimal; anything else is refused before it reaches a query or a part name.
pub(super) fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

async fn fetch_page(engine: &Engine<'_>, page: u32) -> Result<Vec<Value>, SyncError> {
    let text = format!(
        "query {{ {COMPLEXITY} boards(limit: {PAGE_SIZE}, page: {page}, state: all) {{ \
         id name state board_kind updated_at workspace_id \
         columns {{ id title type settings_str archived }} groups {{ id title position }} }} }}"
    );
    let spend = engine.session.monday_spend(false, cost::boards_page(PAGE_SIZE));
    let data = client::query(engine.session, spend, &text, Value::Null).await?;
    match data.get("boards") {
        Some(Value::Array(boards)) => Ok(boards.clone()),
        Some(Value::Null) | None => Ok(Vec::new()),
        Some(_) => Err(SyncError::Protocol("monday boards is not a list".into())),
    }
}

/// A live board: its record, its columns and groups, and sweeps of those it no longer has.
fn write_live(
    engine: &Engine<'_>,
    id: &str,
    board: &Value,
    generation: i64,
    records: &mut Vec<RecordWrite>,
    sweeps: &mut Vec<Sweep>,
) {
    let board_id = engine.id_of(RecordKind::MondayBoard, id);
    // `updated_at` moves with every item change, so it stays out of the sealed JSON (and the
    // hash): a board is rewritten only when the board itself changes.
    let value = pick(board, &["id", "name", "state", "board_kind", "workspace_id"]);
    let clear = Clear {
        status: board.get("state").and_then(Value::as_str).map(str::to_owned),
        provider_updated_at: board.get("updated_at").and_then(Value::as_str).and_then(parse_time),
        ..Clear::default()
    };
    records.push(engine.record(RecordKind::MondayBoard, id, None, &value, clear));
    let children = [
        (RecordKind::MondayColumn, "columns", &["id", "title", "type", "settings_str", "archived"][..]),
        (RecordKind::MondayGroup, "groups", &["id", "title", "position"][..]),
    ];
    for (kind, field, fields) in children {
        for child in board.get(field).and_then(Value::as_array).into_iter().flatten() {
            let Some(child_id) = child.get("id").and_then(Value::as_str) else { continue };
            let provider_id = format!("{id}:{child_id}");
            records.push(engine.record(kind, &provider_id, Some(board_id), &pick(child, fields), Clear::default()));
        }
        sweeps.push(Sweep { kind, parent_id: Some(board_id), generation });
    }
}

/// An archived, deleted or vanished board: tombstoned, and everything under it with a sweep no
/// generation survives.
fn write_dead(engine: &Engine<'_>, id: &str, records: &mut Vec<RecordWrite>, sweeps: &mut Vec<Sweep>) {
    let board_id = engine.id_of(RecordKind::MondayBoard, id);
    records.push(engine.delete(RecordKind::MondayBoard, id, None));
    for kind in [RecordKind::MondayColumn, RecordKind::MondayGroup, RecordKind::MondayItem] {
        sweeps.push(Sweep { kind, parent_id: Some(board_id), generation: i64::MAX });
    }
}

/// Provider ids of the boards the store holds live.
pub(super) async fn stored_live_boards(engine: &Engine<'_>) -> Result<Vec<String>, SyncError> {
    let connection = engine.session.connection();
    let scope = TenantScope::new(connection.tenant_id);
    let store = &engine.session.deps().store;
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = Page::new(Some(Page::MAX_LIMIT), after);
        let filter = RecordFilter::default();
        let found = store.list_records(scope, connection.id, RecordKind::MondayBoard, &filter, page).await?;
        ids.extend(found.items.into_iter().map(|r| r.provider_id));
        match found.next_cursor {
            Some(next) => after = Some(next),
            None => return Ok(ids),
        }
    }
}

/// The named fields of `value` (missing ones left out).
fn pick(value: &Value, fields: &[&str]) -> Value {
    Value::Object(fields.iter().filter_map(|f| value.get(*f).map(|v| ((*f).to_owned(), v.clone()))).collect())
}

/// monday's `ISO8601DateTime`.
pub(super) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}
