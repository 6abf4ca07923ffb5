//! monday write-back over HTTP against the fake monday: the write changes the item at monday,
//! the local item and the monday change feed; an `Idempotency-Key` replays the first answer
//! byte for byte with one call to monday, refuses another body (422) and holds while the first
//! request runs (409); a missing key is 400; monday's refusals are clear problems (and final
//! ones are remembered under the key); another tenant's connection and an inactive one are
//! refused.

use crate::connect::{world_with, World};
use crate::helpers::{json, token, Db};
use patchbay_api::http::writeback::idempotency_hash;
use patchbay_store::{ConnectionId, ConnectionStatus, RecordId, StatusChange, TenantScope};
use patchbay_sync::writeback::idempotency::{Claim, Keys};
use serde_json::{json, Value};

const ACCOUNT: u64 = 1001;
const BOARD: u64 = 4242;

/// A synced monday connection of alice's with one board and one item.
struct Synced {
    w: World,
    alice: String,
    connection: String,
    board: String,
    item: String,
    provider_item: u64,
}

async fn synced(db: Db) -> Option<Synced> {
    let w = world_with(db, "v2", &["--monday-write-back", "true"]).await?;
    w.monday.add_board(ACCOUNT, BOARD, "Launch");
    w.monday.add_column(BOARD, "text0", "Notes", "text");
    w.monday.add_column(BOARD, "count", "Count", "numbers");
    w.monday.add_group(BOARD, "topics", "Topics");
    let provider_item = w.monday.create_item(BOARD, "topics", "Ship it");
    let alice = token("alice", json!({}));
    let back = w.connect(&alice, "monday", json!({})).await;
    assert_eq!(back["patchbay_status"], "connected", "{back:?}");
    let connection = back["connection_id"].clone();
    assert!(w.app.run_jobs().await >= 1, "the initial sync ran");
    let boards = json(w.app.get_as(&format!("/v1/connections/{connection}/monday/boards"), &alice).await).await;
    let board = boards["data"][0]["id"].as_str().unwrap_or_else(|| panic!("the board is synced: {boards}")).to_owned();
    let items =
        json(w.app.get_as(&format!("/v1/connections/{connection}/monday/boards/{board}/items"), &alice).await).await;
    let item = items["data"][0]["id"].as_str().unwrap_or_else(|| panic!("the item is synced: {items}")).to_owned();
    Some(Synced { w, alice, connection, board, item, provider_item })
}

impl Synced {
    fn url(&self) -> String {
        self.w.app.url(&format!(
            "/v1/connections/{}/monday/boards/{}/items/{}/column-values",
            self.connection, self.board, self.item
        ))
    }

    async fn write(&self, bearer: &str, key: Option<&str>, body: Value) -> reqwest::Response {
        let mut request = self.w.app.client.post(self.url()).bearer_auth(bearer).json(&body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.unwrap()
    }

    async fn changes_after(&self, after: i64) -> Value {
        let path = format!("/v1/connections/{}/monday/changes?after={after}", self.connection);
        json(self.w.app.get_as(&path, &self.alice).await).await
    }
}

fn column_value(item: &Value, column: &str) -> Value {
    let values = item["column_values"].as_array().expect("column values");
    values.iter().find(|v| v["id"] == column).map(|v| v["value"].clone()).unwrap_or(Value::Null)
}

async fn problem(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/problem+json", "a problem ({status})");
    let body = json(response).await;
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

async fn writes_at_monday_locally_and_in_the_feed_and_replays_by_key(db: Db) {
    let Some(s) = synced(db).await else { return };
    let high_water = s.changes_after(0).await["high_water"].as_i64().expect("a high-water mark");
    let calls = s.w.monday.graphql_calls();
    let body = json!({"column_values": {"text0": "hello", "count": 3}});

    let first = s.write(&s.alice, Some("key-1"), body.clone()).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "application/json; charset=utf-8");
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_bytes = first.bytes().await.unwrap();
    let written: Value = serde_json::from_slice(&first_bytes).unwrap();
    assert_eq!(written["id"], s.item.as_str(), "the item's Patchbay id: {written}");
    assert_eq!(written["provider_id"], s.provider_item.to_string());
    assert_eq!(column_value(&written, "text0"), json!("\"hello\""), "{written}");
    assert_eq!(s.w.monday.graphql_calls() - calls, 1, "one mutation");

    let at_monday = s.w.monday.item(s.provider_item).unwrap();
    assert_eq!(column_value(&at_monday, "text0"), json!("\"hello\""), "{at_monday}");
    assert_eq!(column_value(&at_monday, "count"), json!("3"), "{at_monday}");
    let items = json(
        s.w.app.get_as(&format!("/v1/connections/{}/monday/boards/{}/items", s.connection, s.board), &s.alice).await,
    )
    .await;
    assert_eq!(column_value(&items["data"][0], "text0"), json!("\"hello\""), "the read API serves it: {items}");
    let feed = s.changes_after(high_water).await;
    let changed: Vec<&Value> = feed["data"].as_array().unwrap().iter().filter(|c| c["id"] == s.item.as_str()).collect();
    assert_eq!(changed.len(), 1, "the change feed shows the write: {feed}");
    assert_eq!(changed[0]["change_seq"], written["change_seq"]);

    // The same key and an equal body (keys in another order): the first answer, no monday call.
    let again = s.write(&s.alice, Some("key-1"), json!({"column_values": {"count": 3, "text0": "hello"}})).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.bytes().await.unwrap(), first_bytes, "the identical answer");
    assert_eq!(s.w.monday.graphql_calls() - calls, 1, "still one mutation at monday");

    // The same key, another body: refused, nothing written.
    let other = s.write(&s.alice, Some("key-1"), json!({"column_values": {"text0": "bye"}})).await;
    assert_eq!(problem(other).await, (422, "idempotency_key_reused".to_owned()));
    // No key, or a malformed one: refused before anything happens.
    let missing = s.write(&s.alice, None, body.clone()).await;
    assert_eq!(problem(missing).await, (400, "invalid_idempotency_key".to_owned()));
    let malformed = s.write(&s.alice, Some("has space"), body.clone()).await;
    assert_eq!(problem(malformed).await, (400, "invalid_idempotency_key".to_owned()));
    assert_eq!(s.w.monday.graphql_calls() - calls, 1, "none of these reached monday");
    assert_eq!(column_value(&s.w.monday.item(s.provider_item).unwrap(), "text0"), json!("\"hello\""));
    s.w.app.stop().await;
}
crate::both_stores!(
    write_back_writes_everywhere_and_replays_by_idempotency_key,
    writes_at_monday_locally_and_in_the_feed_and_replays_by_key
);

async fn refusals_in_flight_keys_tenants_and_inactive_connections(db: Db) {
    let Some(s) = synced(db).await else { return };
    let calls = s.w.monday.graphql_calls();

    // monday refuses a column: 422, remembered under its key (a retry gets it without a call).
    let bad = s.write(&s.alice, Some("bad-column"), json!({"column_values": {"nope": "x"}})).await;
    assert_eq!(problem(bad).await, (422, "invalid_column".to_owned()));
    let bad_value = s.write(&s.alice, Some("bad-value"), json!({"column_values": {"count": "many"}})).await;
    assert_eq!(problem(bad_value).await, (422, "invalid_column_value".to_owned()));
    assert_eq!(s.w.monday.graphql_calls() - calls, 2);
    let retried = s.write(&s.alice, Some("bad-column"), json!({"column_values": {"nope": "x"}})).await;
    assert_eq!(retried.headers()["idempotent-replayed"], "true");
    assert_eq!(problem(retried).await, (422, "invalid_column".to_owned()));
    assert_eq!(s.w.monday.graphql_calls() - calls, 2, "the remembered refusal made no call");

    // A first request still running with this key (claimed as the route claims it): 409.
    let me = json(s.w.app.get_as("/v1/me", &s.alice).await).await;
    let tenant = me["tenant_id"].as_str().unwrap().parse().unwrap();
    let connection: ConnectionId = s.connection.parse().unwrap();
    let body = json!({"column_values": {"text0": "slow"}});
    let (board, item): (RecordId, RecordId) = (s.board.parse().unwrap(), s.item.parse().unwrap());
    let vault = s.w.app.state.tokens.vault().clone();
    let keys = Keys { store: &*s.w.app.store, vault: &vault, tenant, connection };
    let claimed = keys.claim("in-flight", &idempotency_hash(board, item, &body), chrono::Utc::now()).await.unwrap();
    assert_eq!(claimed, Claim::Started);
    let held = s.write(&s.alice, Some("in-flight"), body.clone()).await;
    assert!(held.headers().get("retry-after").is_some(), "says when to retry");
    assert_eq!(problem(held).await, (409, "idempotency_key_in_flight".to_owned()));
    assert_eq!(s.w.monday.graphql_calls() - calls, 2, "the held request made no call");

    // Another tenant's caller: no such connection.
    let bob = token("bob", json!({}));
    let theirs = s.write(&bob, Some("bob-key"), body.clone()).await;
    assert_eq!(problem(theirs).await, (404, "not_found".to_owned()));
    // An item id that is not an item of this board: 404.
    let wrong = s
        .w
        .app
        .url(&format!("/v1/connections/{}/monday/boards/{}/items/{}/column-values", s.connection, s.board, s.board));
    let response =
        s.w.app.client.post(wrong).bearer_auth(&s.alice).header("idempotency-key", "k").json(&body).send().await;
    assert_eq!(problem(response.unwrap()).await, (404, "not_found".to_owned()));

    // A connection that needs re-authorization: 409, no call.
    let change = StatusChange {
        status: ConnectionStatus::NeedsReauth,
        reason: Some("test".into()),
        actor: "test".into(),
        now: chrono::Utc::now(),
    };
    s.w.app.store.set_connection_status(TenantScope::new(tenant), connection, change).await.unwrap();
    let inactive = s.write(&s.alice, Some("inactive"), body).await;
    assert_eq!(problem(inactive).await, (409, "connection_unavailable".to_owned()));
    assert_eq!(s.w.monday.graphql_calls() - calls, 2, "nothing reached monday");
    s.w.app.stop().await;
}
crate::both_stores!(
    write_back_refusals_keys_in_flight_tenants_and_inactive_connections,
    refusals_in_flight_keys_tenants_and_inactive_connections
);
