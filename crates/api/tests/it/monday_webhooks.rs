//! Monday board webhooks end to end, on both stores, over loopback HTTP against the fake: the
//! initial sync registers them (Monday's challenge answered by our URL), one per (account,
//! board, event) even for two connections in two tenants; signed deliveries are stored once
//! (also redelivered concurrently); every JWT defect is an empty 401; disconnect hands the
//! webhooks over, then deletes them at Monday when the last connection leaves; the lifecycle
//! `uninstall` revokes the account's connections in every tenant.

use crate::connect::{world, World};
use crate::helpers::{json, token, Db};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use patchbay_testkit::fakes::monday::MondayDelivery;
use serde_json::json;

const ACCOUNT: u64 = 1001;
const BOARD: u64 = 7001;

/// Inbox rows (every sealed ciphertext of the webhooks tables is an inbox body here: no
/// third-party sources exist in these tests).
async fn inbox_rows(w: &World) -> i64 {
    w.app.state.store.webhook_key_usage().await.unwrap().iter().map(|u| u.ciphertexts).sum()
}

async fn connect_monday(w: &World, who: &str) -> (String, String) {
    let bearer = token(who, json!({}));
    let back = w.connect(&bearer, "monday", json!({})).await;
    let id = back.get("connection_id").cloned().unwrap_or_else(|| panic!("connected: {back:?}"));
    w.app.run_jobs().await;
    (bearer, id)
}

fn board_world(w: &World) -> u64 {
    w.monday.add_board(ACCOUNT, BOARD, "Roadmap");
    w.monday.add_group(BOARD, "topics", "Topics");
    w.monday.create_item(BOARD, "topics", "First")
}

fn send_to(delivery: &MondayDelivery, url: &str, authorization: &str) -> MondayDelivery {
    MondayDelivery { url: url.to_owned(), body: delivery.body.clone(), authorization: authorization.to_owned() }
}

fn hs256(claims: &serde_json::Value, secret: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), claims, &key).unwrap()
}

async fn registration_dedup_and_jwt(db: Db) {
    let Some(w) = world(db, "v2").await else { return };
    let item = board_world(&w);
    let (_, first) = connect_monday(&w, "alice").await;
    let hooks = w.monday.board_webhooks(BOARD);
    let mut events: Vec<&str> = hooks.iter().map(|h| h.event.as_str()).collect();
    events.sort_unstable();
    assert_eq!(
        events,
        [
            "change_column_value",
            "change_name",
            "create_item",
            "item_archived",
            "item_deleted",
            "item_moved_to_any_group"
        ],
        "one webhook per event type after the initial sync"
    );
    assert_eq!(w.monday.webhook_counts(), (6, 0, 0), "every challenge was echoed by our URL");
    for hook in &hooks {
        assert!(hook.url.starts_with(&format!("{}/webhooks/monday/", w.app.base)), "{}", hook.url);
        let id: uuid::Uuid = hook.url.rsplit('/').next().unwrap().parse().unwrap();
        let stored = w.app.state.store.find_monday_webhook(id).await.unwrap();
        assert_eq!(stored.monday_webhook_id, Some(hook.id.to_string()), "Monday's id is recorded");
        assert_eq!((stored.account_id.as_str(), stored.board_id.as_str()), ("1001", "7001"));
        assert_eq!(stored.owner_connection_id.to_string(), first);
    }

    // A second connection of the account (another tenant) syncing the board shares them.
    let (_, second) = connect_monday(&w, "bob").await;
    assert_eq!(w.monday.board_webhooks(BOARD).len(), 6, "still one webhook per (account, board, event)");
    assert_eq!(w.monday.webhook_counts().0, 6, "no second create_webhook");
    let column = hooks.iter().find(|h| h.event == "change_column_value").unwrap();
    let id: uuid::Uuid = column.url.rsplit('/').next().unwrap().parse().unwrap();
    let users = w.app.state.store.monday_webhook_users(id).await.unwrap();
    assert_eq!(users.iter().map(|u| u.1.to_string()).collect::<Vec<_>>(), [first.clone(), second.clone()]);

    // One change: one delivery, stored once; redelivered (also concurrently) it is acknowledged
    // and stored nothing more.
    let before = inbox_rows(&w).await;
    let deliveries = w.monday.board_deliveries(BOARD, "change_column_value", item);
    assert_eq!(deliveries.len(), 1, "Monday sends the change once: there is one webhook");
    let delivery = &deliveries[0];
    let answers = futures::future::join_all((0..8).map(|_| w.monday.send(delivery))).await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    assert_eq!(w.monday.send(delivery).await, 200);
    assert_eq!(inbox_rows(&w).await, before + 1, "one stored event for one triggerUuid");
    let other_change = w.monday.board_delivery(column.id, item, 300);
    assert_eq!(w.monday.send(&other_change).await, 200);
    assert_eq!(inbox_rows(&w).await, before + 2, "another triggerUuid is another event");

    // A challenge is echoed byte for byte and stores nothing.
    let challenge = br#"{"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#;
    let echoed = w.app.client.post(&column.url).body(challenge.to_vec()).send().await.unwrap();
    assert_eq!(echoed.status(), 200);
    assert_eq!(echoed.bytes().await.unwrap().as_ref(), challenge.as_slice());
    assert_eq!(inbox_rows(&w).await, before + 2);

    // JWT defects: each an empty 401 that stores nothing.
    let now = chrono::Utc::now().timestamp();
    let claims = |account: u64, aud: &str, exp: Option<i64>| {
        let mut c = json!({ "accountId": account, "userId": 501, "aud": aud, "iat": now });
        if let Some(exp) = exp {
            c["exp"] = json!(exp);
        }
        c
    };
    let none_token = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(ACCOUNT, &column.url, Some(now + 300)).to_string())
    );
    let name_hook = hooks.iter().find(|h| h.event == "change_name").unwrap();
    let cases = [
        ("alg none", none_token),
        ("wrong secret", hs256(&claims(ACCOUNT, &column.url, Some(now + 300)), "not-the-secret")),
        ("client secret", hs256(&claims(ACCOUNT, &column.url, Some(now + 300)), "monday-secret")),
        ("expired", hs256(&claims(ACCOUNT, &column.url, Some(now - 120)), "monday-signing-secret")),
        ("no exp", hs256(&claims(ACCOUNT, &column.url, None), "monday-signing-secret")),
        ("another account", hs256(&claims(2002, &column.url, Some(now + 300)), "monday-signing-secret")),
        ("another webhook's aud", hs256(&claims(ACCOUNT, &name_hook.url, Some(now + 300)), "monday-signing-secret")),
        ("no token", String::new()),
    ];
    let fresh = w.monday.board_delivery(column.id, item, 300);
    for (case, jwt) in cases {
        let response = w
            .app
            .client
            .post(&column.url)
            .header("content-type", "application/json")
            .header("authorization", jwt)
            .body(fresh.body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{case}");
        assert!(response.bytes().await.unwrap().is_empty(), "{case}: empty body");
    }
    // The same valid token at another webhook's URL (its `aud` is this one's).
    let elsewhere = send_to(&fresh, &name_hook.url, &fresh.authorization);
    assert_eq!(w.monday.send(&elsewhere).await, 401, "aud binds the token to its URL");
    let unknown = send_to(&fresh, &format!("{}/webhooks/monday/{}", w.app.base, uuid::Uuid::now_v7()), "x");
    assert_eq!(w.monday.send(&unknown).await, 401, "an unknown webhook");
    assert_eq!(inbox_rows(&w).await, before + 2, "no refused delivery stored anything");
    assert_eq!(w.monday.send(&fresh).await, 200, "the untampered delivery still verifies");
}

async fn handover_and_deletion_on_disconnect(db: Db) {
    let Some(w) = world(db, "v2").await else { return };
    board_world(&w);
    let (alice, first) = connect_monday(&w, "alice").await;
    let (bob, second) = connect_monday(&w, "bob").await;
    let hooks = w.monday.board_webhooks(BOARD);
    assert_eq!(hooks.len(), 6);
    let ids: Vec<uuid::Uuid> = hooks.iter().map(|h| h.url.rsplit('/').next().unwrap().parse().unwrap()).collect();

    let deleted = w.app.client.delete(w.app.url(&format!("/v1/connections/{first}"))).bearer_auth(&alice).send().await;
    assert_eq!(deleted.unwrap().status(), 202);
    for _ in 0..20 {
        w.app.run_jobs().await;
        if w.app.state.store.monday_webhooks_of_connection(first.parse().unwrap()).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for id in &ids {
        let webhook = w.app.state.store.find_monday_webhook(*id).await.unwrap();
        assert_eq!(webhook.owner_connection_id.to_string(), second, "ownership passed to the other connection");
    }
    assert_eq!(w.monday.board_webhooks(BOARD).len(), 6, "nothing deleted at Monday while a user remains");
    assert_eq!(w.monday.webhook_counts().2, 0);

    let deleted = w.app.client.delete(w.app.url(&format!("/v1/connections/{second}"))).bearer_auth(&bob).send().await;
    assert_eq!(deleted.unwrap().status(), 202);
    for _ in 0..20 {
        w.app.run_jobs().await;
        if w.monday.board_webhooks(BOARD).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(w.monday.board_webhooks(BOARD).is_empty(), "the last connection's leave deletes them at Monday");
    assert_eq!(w.monday.webhook_counts().2, 6);
    for id in &ids {
        assert!(w.app.state.store.find_monday_webhook(*id).await.is_err(), "and in the store");
    }
}

async fn uninstall_revokes_in_every_tenant(db: Db) {
    let Some(w) = world(db, "v2").await else { return };
    let (alice, first) = connect_monday(&w, "alice").await;
    let (bob, second) = connect_monday(&w, "bob").await;
    let lifecycle = format!("{}/webhooks/monday/lifecycle", w.app.base);
    // A lifecycle JWT signed with the signing secret (not the client secret) is refused.
    let mut forged = w.monday.lifecycle_delivery("monday-client", ACCOUNT, "uninstall", &lifecycle);
    let claims = json!({ "accountId": ACCOUNT, "aud": lifecycle, "exp": chrono::Utc::now().timestamp() + 300 });
    forged.authorization = hs256(&claims, "monday-signing-secret");
    assert_eq!(w.monday.send(&forged).await, 401);
    for (bearer, id) in [(&alice, &first), (&bob, &second)] {
        let view = json(w.app.get_as(&format!("/v1/connections/{id}"), bearer).await).await;
        assert_eq!(view["status"], "active", "{view}");
    }
    assert_eq!(w.monday.uninstall_and_notify("monday-client", ACCOUNT, &lifecycle).await, 200);
    for (bearer, id) in [(&alice, &first), (&bob, &second)] {
        let view = json(w.app.get_as(&format!("/v1/connections/{id}"), bearer).await).await;
        assert_eq!(view["status"], "revoked", "revoked in every tenant: {view}");
    }
}

crate::both_stores!(registration_dedup_and_jwt_test, registration_dedup_and_jwt);
crate::both_stores!(handover_and_deletion_on_disconnect_test, handover_and_deletion_on_disconnect);
crate::both_stores!(uninstall_revokes_in_every_tenant_test, uninstall_revokes_in_every_tenant);
