//! monday write-back against the fake: the item changes there and locally (with a change-feed
//! entry), monday's refusals map to clear errors in both error shapes, a locked board is retried
//! and then refused, the write budget refuses before any call, and idempotency keys replay.

use crate::support::{World, MONDAY_ACCOUNT};
use patchbay_store::{Connection, RecordId, RecordKind, StoreError, TenantScope};
use patchbay_sync::writeback::idempotency::{request_hash, valid_key, Claim, Keys};
use patchbay_sync::writeback::{change_column_values, ColumnWrite, LockRetry, WriteError};
use patchbay_sync::SyncError;
use patchbay_testkit::fakes::monday::ErrorShape;
use serde_json::{json, Value};
use std::time::Duration;

const BOARD: u64 = 4242;
const FAST: LockRetry = LockRetry { retries: 3, backoff: Duration::from_millis(1) };

/// A connection and an item on a board with a text and a numbers column.
async fn board_with_item(world: &World) -> (Connection, u64) {
    let connection = world.monday_connection("acme").await;
    world.monday.add_board(MONDAY_ACCOUNT, BOARD, "Launch");
    world.monday.add_column(BOARD, "text0", "Notes", "text");
    world.monday.add_column(BOARD, "count", "Count", "numbers");
    world.monday.add_group(BOARD, "topics", "Topics");
    let item = world.monday.create_item(BOARD, "topics", "Ship it");
    (connection, item)
}

fn write(item: u64, values: Value) -> ColumnWrite {
    let Value::Object(column_values) = values else { panic!("column values are an object") };
    ColumnWrite { board_id: BOARD.to_string(), item_id: item.to_string(), column_values }
}

fn column_value(item: &Value, column: &str) -> Value {
    let values = item["column_values"].as_array().expect("column values");
    values.iter().find(|v| v["id"] == column).map(|v| v["value"].clone()).unwrap_or(Value::Null)
}

async fn writes_the_item_at_monday_and_in_the_local_record_and_feed(world: World) {
    let (connection, item) = board_with_item(&world).await;
    let session = world.session(&connection).await;
    let sealer = world.deps.sealer();
    let written = change_column_values(&session, &sealer, &write(item, json!({"text0": "hello", "count": 3})), FAST)
        .await
        .expect("the write succeeds");
    assert_eq!(written.provider_id, item.to_string());
    assert_eq!(written.id, RecordId::derive(connection.id, RecordKind::MondayItem, &item.to_string()));

    let at_monday = world.monday.item(item).unwrap();
    assert_eq!(column_value(&at_monday, "text0"), json!("\"hello\""), "{at_monday}");
    assert_eq!(column_value(&at_monday, "count"), json!("3"), "{at_monday}");

    let scope = TenantScope::new(connection.tenant_id);
    let record = world.store.get_record(scope, connection.id, RecordKind::MondayItem, written.id).await.unwrap();
    assert_eq!(record.parent_id, Some(RecordId::derive(connection.id, RecordKind::MondayBoard, &BOARD.to_string())));
    assert_eq!(record.fields.status.as_deref(), Some("active"));
    let opened = sealer.open(&record).unwrap();
    assert_eq!(column_value(&opened, "text0"), json!("\"hello\""));
    let feed = world.store.change_feed(scope, connection.id, &[RecordKind::MondayItem], 0, 10).await.unwrap();
    assert_eq!(feed.records.iter().map(|r| r.id).collect::<Vec<_>>(), vec![written.id], "the change feed shows it");
    assert_eq!(session.api_calls(), 1, "one mutation, nothing fetched besides");
}

async fn refusals_map_to_clear_errors_in_both_error_shapes(world: World) {
    let (connection, item) = board_with_item(&world).await;
    let session = world.session(&connection).await;
    let sealer = world.deps.sealer();
    for shape in [ErrorShape::Current, ErrorShape::Legacy, ErrorShape::Transitional] {
        world.monday.set_error_shape(shape);
        let bad_column = change_column_values(&session, &sealer, &write(item, json!({"nope": "x"})), FAST).await;
        assert!(
            matches!(&bad_column, Err(WriteError::InvalidColumn(Some(c))) if c == "nope"),
            "{shape:?}: {bad_column:?}"
        );
        let bad_value = change_column_values(&session, &sealer, &write(item, json!({"count": "many"})), FAST).await;
        assert!(
            matches!(&bad_value, Err(WriteError::InvalidValue(Some(c))) if c == "count"),
            "{shape:?}: {bad_value:?}"
        );
        let missing = change_column_values(&session, &sealer, &write(item + 1000, json!({"text0": "x"})), FAST).await;
        assert!(matches!(missing, Err(WriteError::NotFound)), "{shape:?}: {missing:?}");
    }
    let scope = TenantScope::new(connection.tenant_id);
    let id = RecordId::derive(connection.id, RecordKind::MondayItem, &item.to_string());
    let stored = world.store.get_record(scope, connection.id, RecordKind::MondayItem, id).await;
    assert!(matches!(stored, Err(StoreError::NotFound)), "a refused write stores nothing");
}

async fn a_locked_board_is_retried_then_refused(world: World) {
    let (connection, item) = board_with_item(&world).await;
    let session = world.session(&connection).await;
    world.monday.lock_board(BOARD, true);
    let before = world.monday.graphql_calls();
    let locked = change_column_values(&session, &world.deps.sealer(), &write(item, json!({"text0": "x"})), FAST).await;
    assert!(matches!(locked, Err(WriteError::Locked)), "{locked:?}");
    assert!(!locked.unwrap_err().is_final(), "a lock is worth retrying");
    assert_eq!(world.monday.graphql_calls() - before, 4, "the first attempt and three retries");
    world.monday.lock_board(BOARD, false);
    change_column_values(&session, &world.deps.sealer(), &write(item, json!({"text0": "x"})), FAST)
        .await
        .expect("unlocked, the write goes through");
}

async fn an_exhausted_write_budget_refuses_before_calling_monday(mut world: World) {
    world.tune(|s| {
        s.monday_complexity_per_minute = 1_000;
        s.max_budget_wait = Duration::ZERO;
    });
    let (connection, item) = board_with_item(&world).await;
    let session = world.session(&connection).await;
    let before = world.monday.graphql_calls();
    let refused = change_column_values(&session, &world.deps.sealer(), &write(item, json!({"text0": "x"})), FAST).await;
    assert!(matches!(refused, Err(WriteError::Sync(SyncError::RateLimited(_)))), "{refused:?}");
    assert_eq!(world.monday.graphql_calls(), before, "monday was not called");
}

async fn idempotency_keys_replay_refuse_other_bodies_and_hold_while_in_flight(world: World) {
    let connection = world.monday_connection("acme").await;
    let vault = world.tokens.vault().clone();
    let keys = Keys { store: &*world.store, vault: &vault, tenant: connection.tenant_id, connection: connection.id };
    let now = chrono::Utc::now();
    let body = json!({"column_values": {"b": 1, "a": 2}});
    let same = json!({"column_values": {"a": 2, "b": 1}});
    let hash = request_hash(&["board", "item"], &body);
    assert_eq!(hash, request_hash(&["board", "item"], &same), "key order does not matter");
    assert_ne!(hash, request_hash(&["board", "other"], &body), "the target is part of the hash");

    assert_eq!(keys.claim("k1", &hash, now).await.unwrap(), Claim::Started);
    assert_eq!(keys.claim("k1", &hash, now).await.unwrap(), Claim::InFlight);
    keys.finish("k1", 200, br#"{"name":"secret item"}"#).await.unwrap();
    let replay = keys.claim("k1", &hash, now).await.unwrap();
    assert_eq!(replay, Claim::Replay { status: 200, body: br#"{"name":"secret item"}"#.to_vec() });
    let other = request_hash(&["board", "item"], &json!({"column_values": {"a": 3}}));
    assert_eq!(keys.claim("k1", &other, now).await.unwrap(), Claim::Mismatch);

    assert_eq!(keys.claim("k2", &hash, now).await.unwrap(), Claim::Started);
    keys.abandon("k2").await.unwrap();
    assert_eq!(keys.claim("k2", &hash, now).await.unwrap(), Claim::Started, "an abandoned key runs again");
    let later = now + chrono::Duration::seconds(61);
    assert_eq!(keys.claim("k2", &hash, later).await.unwrap(), Claim::Started, "a stale in-flight key is taken over");

    assert!(valid_key("a") && valid_key(&"k".repeat(255)));
    assert!(!valid_key("") && !valid_key(&"k".repeat(256)) && !valid_key("has space") && !valid_key("é"));
}

crate::on_both_stores!(
    writes_the_item_at_monday_and_in_the_local_record_and_feed,
    refusals_map_to_clear_errors_in_both_error_shapes,
    a_locked_board_is_retried_then_refused,
    an_exhausted_write_budget_refuses_before_calling_monday,
    idempotency_keys_replay_refuse_other_bodies_and_hold_while_in_flight,
);
