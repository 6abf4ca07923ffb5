//! The Monday applier end to end, on both stores, over loopback HTTP against the fake: a board
//! event delivered by the fake's webhook is stored, applied by the inbox processor (the item id
//! marked dirty for every connection using the webhook) and re-read by one coalesced run per
//! connection with `items(ids:)`; deliveries in any order converge on what Monday has now; a
//! burst of N changes makes one run and ≤ ceil(N/100) `items(ids:)` calls.

use crate::connect::{world, World};
use crate::helpers::{json, token, Db};
use serde_json::{json, Value};
use std::time::Duration;

const ACCOUNT: u64 = 1001;
const BOARD: u64 = 7001;

async fn connect_monday(w: &World, who: &str) -> (String, String) {
    let bearer = token(who, json!({}));
    let back = w.connect(&bearer, "monday", json!({})).await;
    let id = back.get("connection_id").cloned().unwrap_or_else(|| panic!("connected: {back:?}"));
    w.app.run_jobs().await;
    (bearer, id)
}

async fn get(w: &World, bearer: &str, path: &str) -> Value {
    let response = w.app.get_as(path, bearer).await;
    assert_eq!(response.status(), 200, "GET {path}");
    json(response).await
}

/// The change feed's end for a connection.
async fn feed_end(w: &World, bearer: &str, id: &str) -> i64 {
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(a) => format!("/v1/connections/{id}/monday/changes?limit=500&after={a}"),
            None => format!("/v1/connections/{id}/monday/changes?limit=500"),
        };
        let page = get(w, bearer, &path).await;
        let next = page["next_cursor"].as_i64();
        if page["data"].as_array().unwrap().is_empty() || next.is_none() || next == after {
            return next.or(after).unwrap_or(0);
        }
        after = next;
    }
}

/// Item changes after `after`: (provider id, deleted, name).
async fn changes_after(w: &World, bearer: &str, id: &str, after: i64) -> Vec<(String, bool, String)> {
    let page = get(w, bearer, &format!("/v1/connections/{id}/monday/changes?limit=500&after={after}")).await;
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"].as_str().is_none_or(|k| k.contains("item")))
        .map(|c| {
            (
                c["provider_id"].as_str().unwrap().to_owned(),
                c["deleted"].as_bool().unwrap(),
                c["fields"]["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The item as the read API serves it now (`None`: tombstoned or never seen).
async fn served_item(w: &World, bearer: &str, id: &str, item: u64) -> Option<Value> {
    let boards = get(w, bearer, &format!("/v1/connections/{id}/monday/boards")).await;
    let board = boards["data"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/connections/{id}/monday/boards/{board}/items?provider_id={item}");
    get(w, bearer, &path).await["data"].as_array().unwrap().first().cloned()
}

async fn runs(w: &World, bearer: &str, id: &str) -> usize {
    let path = format!("/v1/connections/{id}/sync-runs?limit=100");
    get(w, bearer, &path).await["data"].as_array().unwrap().len()
}

/// Sends every delivery, then lets the processor apply them and the coalesced run(s) start.
async fn deliver_and_settle(w: &World, deliveries: &[patchbay_testkit::fakes::monday::MondayDelivery]) {
    for delivery in deliveries {
        assert_eq!(w.monday.send(delivery).await, 200);
    }
    w.app.run_jobs().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.app.run_jobs().await;
}

fn one(
    deliveries: Vec<patchbay_testkit::fakes::monday::MondayDelivery>,
) -> patchbay_testkit::fakes::monday::MondayDelivery {
    assert_eq!(deliveries.len(), 1, "one webhook per (account, board, event)");
    deliveries.into_iter().next().unwrap()
}

async fn two_connections_converge(db: Db) {
    let Some(w) = world(db, "v2").await else { return };
    w.monday.add_board(ACCOUNT, BOARD, "Roadmap");
    w.monday.add_column(BOARD, "status", "Status", "status");
    w.monday.add_group(BOARD, "topics", "Topics");
    let first = w.monday.create_item(BOARD, "topics", "First");
    let second = w.monday.create_item(BOARD, "topics", "Second");
    let third = w.monday.create_item(BOARD, "topics", "Third");
    let (alice, a) = connect_monday(&w, "alice").await;
    let (bob, b) = connect_monday(&w, "bob").await;
    let conns = [(&alice, &a), (&bob, &b)];

    // One change delivered once: visible for both connections, one record change each.
    let mut ends = Vec::new();
    for (bearer, id) in conns {
        ends.push(feed_end(&w, bearer, id).await);
    }
    let calls = w.monday.items_by_id_calls().len();
    w.monday.rename_item(first, "First renamed");
    deliver_and_settle(&w, &[one(w.monday.board_deliveries(BOARD, "change_name", first))]).await;
    for ((bearer, id), end) in conns.iter().zip(&ends) {
        let changed = changes_after(&w, bearer, id, *end).await;
        assert_eq!(changed, [(first.to_string(), false, "First renamed".to_owned())], "exactly one change for {id}");
        assert_eq!(served_item(&w, bearer, id, first).await.unwrap()["name"], "First renamed");
    }
    assert_eq!(w.monday.items_by_id_calls()[calls..], [1, 1], "each connection re-read the one item by id");

    // A column change delivered after the later delete: the item stays tombstoned.
    w.monday.update_item_column(second, "status", json!({ "index": 1 }));
    let column_change = one(w.monday.board_deliveries(BOARD, "change_column_value", second));
    w.monday.delete_item(second);
    let deletion = one(w.monday.board_deliveries(BOARD, "item_deleted", second));
    deliver_and_settle(&w, &[deletion]).await;
    deliver_and_settle(&w, &[column_change]).await;
    for (bearer, id) in conns {
        assert!(served_item(&w, bearer, id, second).await.is_none(), "deleted at Monday: tombstoned for {id}");
    }

    // Two renames delivered swapped: the final name wins.
    w.monday.rename_item(third, "Third A");
    let earlier = one(w.monday.board_deliveries(BOARD, "change_name", third));
    w.monday.rename_item(third, "Third B");
    let later = one(w.monday.board_deliveries(BOARD, "change_name", third));
    deliver_and_settle(&w, &[later]).await;
    deliver_and_settle(&w, &[earlier]).await;
    for (bearer, id) in conns {
        assert_eq!(served_item(&w, bearer, id, third).await.unwrap()["name"], "Third B", "for {id}");
    }
    w.app.stop().await;
}

async fn a_burst_makes_one_run(db: Db) {
    let Some(w) = world(db, "v2").await else { return };
    const N: usize = 150;
    w.monday.add_board(ACCOUNT, BOARD, "Roadmap");
    w.monday.add_group(BOARD, "topics", "Topics");
    let items: Vec<u64> = (0..N).map(|n| w.monday.create_item(BOARD, "topics", &format!("Task {n}"))).collect();
    let (alice, a) = connect_monday(&w, "alice").await;
    let end = feed_end(&w, &alice, &a).await;
    let runs_before = runs(&w, &alice, &a).await;
    let calls = w.monday.items_by_id_calls().len();
    let mut deliveries = Vec::new();
    for (n, item) in items.iter().enumerate() {
        w.monday.rename_item(*item, &format!("Task {n} renamed"));
        deliveries.push(one(w.monday.board_deliveries(BOARD, "change_name", *item)));
    }
    deliver_and_settle(&w, &deliveries).await;
    assert_eq!(runs(&w, &alice, &a).await, runs_before + 1, "{N} events made one run");
    let by_id = w.monday.items_by_id_calls()[calls..].to_vec();
    assert!(by_id.len() <= N.div_ceil(100), "≤ ceil(N/100) items(ids:) calls: {by_id:?}");
    assert!(by_id.iter().all(|n| *n <= 100) && by_id.iter().sum::<usize>() == N, "{by_id:?}");
    let changed = changes_after(&w, &alice, &a, end).await;
    assert_eq!(changed.len(), N, "one record change per renamed item");
    assert!(changed.iter().all(|(_, deleted, name)| !deleted && name.ends_with(" renamed")));
    w.app.stop().await;
}

crate::both_stores!(a_change_reaches_both_connections_once_and_out_of_order_converges, two_connections_converge);
crate::both_stores!(a_burst_of_changes_makes_one_run_and_few_item_reads, a_burst_makes_one_run);
