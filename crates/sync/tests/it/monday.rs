//! The monday engine against fake monday.com and a real store: boards, columns, groups and items
//! copied, incremental listings by `__last_updated__`, the full reconciliation, errors with HTTP
//! 200 in both shapes, the complexity budget, deleted boards, and a seeded random walk.

mod errors;
mod walk;

use crate::support::{World, MONDAY_ACCOUNT};
use patchbay_store::*;
use patchbay_sync::engine::{Engine, Scope};
use patchbay_sync::{monday, SyncError};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const BOARD: u64 = 7001;
pub const OTHER_BOARD: u64 = 7002;

/// One sync run over everything; the records it created or changed.
pub async fn sync(world: &World, conn: &Connection) -> Result<i64, SyncError> {
    let lease = world.lease().await;
    let session = world.session(conn).await;
    let sealer = world.deps.sealer();
    let engine = Engine::new(&session, &sealer, lease, SyncRunId::new(), CancellationToken::new(), Scope::Everything);
    monday::run(&engine).await.map(|()| engine.upserted())
}

/// A board with two columns and two groups.
pub fn board(world: &World, id: u64, name: &str) {
    world.monday.add_board(MONDAY_ACCOUNT, id, name);
    world.monday.add_column(id, "status", "Status", "status");
    world.monday.add_column(id, "text0", "Notes", "text");
    world.monday.add_group(id, "topics", "Topics");
    world.monday.add_group(id, "done", "Done");
}

/// The records of `kind` the store holds, by provider id (tombstones too).
pub async fn records(world: &World, conn: &Connection, kind: RecordKind) -> BTreeMap<String, Record> {
    let scope = TenantScope::new(conn.tenant_id);
    let filter = RecordFilter { include_deleted: true, ..RecordFilter::default() };
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let page = world.store.list_records(scope, conn.id, kind, &filter, Page::new(Some(500), after)).await.unwrap();
        out.extend(page.items.into_iter().map(|r| (r.provider_id.clone(), r)));
        match page.next_cursor {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

/// The live records of `kind`, opened, by provider id.
pub async fn live(world: &World, conn: &Connection, kind: RecordKind) -> BTreeMap<String, Value> {
    let sealer = world.deps.sealer();
    records(world, conn, kind)
        .await
        .into_iter()
        .filter(|(_, r)| r.deleted_at.is_none())
        .map(|(id, r)| (id, sealer.open(&r).expect("the record opens")))
        .collect()
}

/// The fake's active items of a board as sync reads them, by id.
pub fn fake_items(world: &World, board: u64) -> BTreeMap<String, Value> {
    world
        .monday
        .board_items(board)
        .into_iter()
        .map(|mut item| {
            item.as_object_mut().unwrap().remove("created_at");
            (item["id"].as_str().unwrap().to_owned(), item)
        })
        .collect()
}

async fn sync_equals_the_fakes_boards_columns_groups_and_items(mut world: World) {
    world.tune(|s| s.monday_page_size = 3);
    let conn = world.monday_connection("acme").await;
    board(&world, BOARD, "Roadmap");
    for n in 0..7 {
        let item = world.monday.create_item(BOARD, if n % 2 == 0 { "topics" } else { "done" }, &format!("Task {n}"));
        world.monday.update_item_column(item, "text0", json!(format!("note {n}")));
        world.monday.update_item_column(item, "status", json!({ "label": "Working on it" }));
    }

    let upserted = sync(&world, &conn).await.expect("the sync runs");
    // What the engine estimates before each call (crates/sync/src/monday/cost.rs) is what monday
    // charged: one board page (10 + 25 × 88), the first items page (20 + 3 × 49) and two more
    // (10 + 3 × 49 each).
    assert_eq!(world.monday.complexity_spent(), 2210 + 167 + 2 * 157);

    let boards = live(&world, &conn, RecordKind::MondayBoard).await;
    assert_eq!(boards.keys().collect::<Vec<_>>(), [&BOARD.to_string()]);
    assert_eq!(boards[&BOARD.to_string()]["name"], "Roadmap");
    let columns = live(&world, &conn, RecordKind::MondayColumn).await;
    assert_eq!(columns.keys().collect::<Vec<_>>(), ["7001:status", "7001:text0"]);
    assert_eq!((&columns["7001:text0"]["title"], &columns["7001:text0"]["type"]), (&json!("Notes"), &json!("text")));
    let groups = live(&world, &conn, RecordKind::MondayGroup).await;
    assert_eq!(groups.keys().collect::<Vec<_>>(), ["7001:done", "7001:topics"]);
    let items = live(&world, &conn, RecordKind::MondayItem).await;
    assert_eq!(items, fake_items(&world, BOARD), "the local items are the fake's, names and column values alike");
    assert_eq!(upserted, 1 + 2 + 2 + 7);
    let stored = records(&world, &conn, RecordKind::MondayItem).await;
    let board_id = RecordId::derive(conn.id, RecordKind::MondayBoard, &BOARD.to_string());
    for record in stored.values() {
        assert_eq!(record.parent_id, Some(board_id));
        assert_eq!(record.fields.status.as_deref(), Some("active"));
        assert!(record.fields.provider_updated_at.is_some());
    }
}

async fn incremental_picks_up_renames_moves_and_column_changes_and_rewrites_nothing_else(mut world: World) {
    world.tune(|s| s.monday_page_size = 2);
    let conn = world.monday_connection("acme").await;
    board(&world, BOARD, "Roadmap");
    let ids: Vec<u64> = (0..6).map(|n| world.monday.create_item(BOARD, "topics", &format!("Task {n}"))).collect();
    sync(&world, &conn).await.unwrap();
    let before = records(&world, &conn, RecordKind::MondayItem).await;

    world.monday.advance_clock(Duration::from_secs(2));
    world.monday.rename_item(ids[0], "Renamed");
    world.monday.move_item(ids[1], "done");
    world.monday.update_item_column(ids[2], "text0", json!("new note"));
    let upserted = sync(&world, &conn).await.unwrap();

    assert_eq!(upserted, 3, "only the three changed items are written");
    assert_eq!(live(&world, &conn, RecordKind::MondayItem).await, fake_items(&world, BOARD));
    let after = records(&world, &conn, RecordKind::MondayItem).await;
    for (n, id) in ids.iter().enumerate() {
        let (old, new) = (&before[&id.to_string()], &after[&id.to_string()]);
        assert_eq!(new.change_seq > old.change_seq, n < 3, "item {n}: a new change_seq only when it changed");
    }

    // Nothing changed: no record moves, and the items at the watermark are not even resent.
    let feed_before = high_water(&world, &conn).await;
    assert_eq!(sync(&world, &conn).await.unwrap(), 0);
    assert_eq!(high_water(&world, &conn).await, feed_before, "an unchanged sync writes no change");
    let state = world.store.sync_state(conn.id, &format!("items:{BOARD}")).await.unwrap().unwrap();
    let at_watermark = state.checkpoint["at_watermark"].as_object().unwrap();
    let changed: Vec<String> = ids[..3].iter().map(u64::to_string).collect();
    assert!(!at_watermark.is_empty() && at_watermark.keys().all(|id| changed.contains(id)), "{at_watermark:?}");

    // A second change within the watermark's second is not mistaken for a repeat.
    world.monday.rename_item(ids[1], "Renamed within the same second");
    assert_eq!(sync(&world, &conn).await.unwrap(), 1);
    assert_eq!(live(&world, &conn, RecordKind::MondayItem).await, fake_items(&world, BOARD));
}

pub async fn high_water(world: &World, conn: &Connection) -> i64 {
    let scope = TenantScope::new(conn.tenant_id);
    let kinds = RecordKind::of_provider(ProviderId::Monday);
    world.store.change_feed(scope, conn.id, kinds, 0, 1).await.unwrap().high_water
}

async fn full_reconciliation_tombstones_deleted_and_archived_items_and_a_restore_revives(mut world: World) {
    let conn = world.monday_connection("acme").await;
    board(&world, BOARD, "Roadmap");
    let ids: Vec<u64> = (0..4).map(|n| world.monday.create_item(BOARD, "topics", &format!("Task {n}"))).collect();
    sync(&world, &conn).await.unwrap();
    world.monday.archive_item(ids[0]);
    world.monday.delete_item(ids[1]);

    sync(&world, &conn).await.unwrap();
    assert_eq!(live(&world, &conn, RecordKind::MondayItem).await.len(), 4, "an incremental sync cannot see removals");

    world.tune(|s| s.monday_full_every = Duration::ZERO);
    sync(&world, &conn).await.unwrap();
    let stored = records(&world, &conn, RecordKind::MondayItem).await;
    assert!(stored[&ids[0].to_string()].deleted_at.is_some(), "archived → tombstoned");
    assert!(stored[&ids[1].to_string()].deleted_at.is_some(), "deleted → tombstoned");
    assert_eq!(live(&world, &conn, RecordKind::MondayItem).await, fake_items(&world, BOARD));

    world.tune(|s| s.monday_full_every = Duration::from_secs(24 * 3600));
    world.monday.restore_item(ids[0]);
    sync(&world, &conn).await.unwrap();
    assert!(records(&world, &conn, RecordKind::MondayItem).await[&ids[0].to_string()].deleted_at.is_none());
    assert_eq!(live(&world, &conn, RecordKind::MondayItem).await, fake_items(&world, BOARD));
}

async fn a_deleted_board_is_tombstoned_with_its_items_columns_and_groups(world: World) {
    let conn = world.monday_connection("acme").await;
    board(&world, BOARD, "Roadmap");
    board(&world, OTHER_BOARD, "Hiring");
    world.monday.create_item(BOARD, "topics", "Task");
    world.monday.create_item(OTHER_BOARD, "topics", "Candidate");
    sync(&world, &conn).await.unwrap();

    world.monday.delete_board(BOARD);
    sync(&world, &conn).await.unwrap();

    let boards = records(&world, &conn, RecordKind::MondayBoard).await;
    assert!(boards[&BOARD.to_string()].deleted_at.is_some());
    assert!(boards[&OTHER_BOARD.to_string()].deleted_at.is_none());
    let board_id = RecordId::derive(conn.id, RecordKind::MondayBoard, &BOARD.to_string());
    for kind in [RecordKind::MondayItem, RecordKind::MondayColumn, RecordKind::MondayGroup] {
        for record in records(&world, &conn, kind).await.values() {
            let under_deleted = record.parent_id == Some(board_id);
            assert_eq!(record.deleted_at.is_some(), under_deleted, "{kind} {}", record.provider_id);
        }
    }
    assert_eq!(live(&world, &conn, RecordKind::MondayItem).await, fake_items(&world, OTHER_BOARD));
}

async fn an_expired_cursor_restarts_from_the_watermark(mut world: World) {
    world.tune(|s| s.monday_page_size = 2);
    let conn = world.monday_connection("acme").await;
    board(&world, BOARD, "Roadmap");
    let ids: Vec<u64> = (0..5).map(|n| world.monday.create_item(BOARD, "topics", &format!("Task {n}"))).collect();
    sync(&world, &conn).await.unwrap();

    // A listing left half-way with a cursor that has expired since.
    world.monday.set_cursor_lifetime(Duration::from_secs(10));
    let session = world.session(&conn).await;
    let query = format!("{{ boards(ids: [{BOARD}]) {{ items_page(limit: 1) {{ cursor }} }} }}");
    let data = monday::client::query(&session, session.monday_spend(false, 100), &query, Value::Null).await.unwrap();
    let cursor = data.pointer("/boards/0/items_page/cursor").unwrap().clone();
    let part = format!("items:{BOARD}");
    let state = world.store.sync_state(conn.id, &part).await.unwrap().unwrap();
    let mut checkpoint = state.checkpoint.clone();
    checkpoint["cursor"] = cursor;
    let write = StateWrite {
        part: part.clone(),
        expected_version: state.version,
        checkpoint,
        generation: state.generation,
        success_at: None,
        full_at: None,
    };
    world.store.save_sync_state(&world.lease().await, conn.id, write, chrono::Utc::now()).await.unwrap();
    world.monday.advance_clock(Duration::from_secs(20));
    world.monday.rename_item(ids[3], "Renamed after the cursor died");

    sync(&world, &conn).await.expect("the dead cursor is dropped and the listing restarts");

    assert_eq!(live(&world, &conn, RecordKind::MondayItem).await, fake_items(&world, BOARD));
    let state = world.store.sync_state(conn.id, &part).await.unwrap().unwrap();
    assert_eq!(state.checkpoint["cursor"], Value::Null);
}

on_both_stores!(
    sync_equals_the_fakes_boards_columns_groups_and_items,
    incremental_picks_up_renames_moves_and_column_changes_and_rewrites_nothing_else,
    full_reconciliation_tombstones_deleted_and_archived_items_and_a_restore_revives,
    a_deleted_board_is_tombstoned_with_its_items_columns_and_groups,
    an_expired_cursor_restarts_from_the_watermark,
);
