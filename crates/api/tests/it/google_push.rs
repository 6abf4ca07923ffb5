//! Google Calendar push channels end to end, on both stores, over real HTTP: the app watches a
//! calendar after its first sync (the fake sends `sync` BEFORE answering the watch call), the
//! fake's `exists` messages reach `POST /webhooks/google/calendar` and land in the inbox once per
//! message number, applying one makes an incremental sync that sees the change, forged and
//! unknown messages are refused or ignored, renewal makes a new channel before stopping the old
//! one, disconnect stops the channel at Google, late messages after a stop store nothing, and
//! `X-Goog-Resource-URI` is never fetched.

use crate::both_stores;
use crate::connect::{world_with, World};
use crate::helpers::{json, token, Db};
use patchbay_store::{ConnectionId, Page, TenantScope, WatchChannel, WebhookEvent, WebhookEventFilter};
use patchbay_testkit::fakes::google::EventSpec;
use patchbay_testkit::fakes::GOOGLE_SUB;
use patchbay_webhooks::{body_aad, Applier, GoogleApplier};
use serde_json::json;
use std::time::Duration;

const PUSH_ARGS: [&str; 5] =
    ["--google-push", "--google-push-ttl-seconds", "3600", "--google-push-renew-margin-seconds", "3599"];

async fn inbox(w: &World, scope: TenantScope, channel: &str) -> Vec<WebhookEvent> {
    let filter = WebhookEventFilter { source_id: Some(channel.to_owned()), status: None };
    w.app.store.list_webhook_events(scope, &filter, Page::first()).await.expect("list").items
}

async fn channels(w: &World, connection: ConnectionId) -> Vec<WatchChannel> {
    w.app.store.open_watch_channels(connection).await.expect("channels")
}

/// Applies every stored event of `channel` the way the inbox processor will.
async fn apply_all(w: &World, scope: TenantScope, channel: &str) {
    let applier = GoogleApplier {
        store: w.app.store.clone(),
        clock: std::sync::Arc::new(patchbay_store::SystemClock),
        coalesce: Duration::ZERO,
    };
    for event in inbox(w, scope, channel).await {
        let body = w.app.state.tokens.vault().decrypt(&event.body, &body_aad(event.tenant_id, event.id)).expect("open");
        applier.apply(&event, &body).await.expect("applied");
    }
}

/// Posts a notification by hand, as Google would (or as a forger would).
async fn notify(w: &World, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = w.app.client.post(w.app.url("/webhooks/google/calendar")).header("content-length", "0");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn event_titles(w: &World, bearer: &str, connection: &str) -> String {
    let calendars = json(w.app.get_as(&format!("/v1/connections/{connection}/google/calendars"), bearer).await).await;
    let calendar = calendars["data"][0]["id"].as_str().expect("a calendar").to_owned();
    let path = format!("/v1/connections/{connection}/google/calendars/{calendar}/events");
    w.app.get_as(&path, bearer).await.text().await.unwrap()
}

async fn lifecycle(db: Db) {
    let Some(w) = world_with(db, "v2", &PUSH_ARGS).await else { return };
    w.google.allow_http_push_addresses();
    let start = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let end = (chrono::Utc::now() + chrono::Duration::days(1) + chrono::Duration::hours(1)).to_rfc3339();
    w.google.insert_event(GOOGLE_SUB, "primary", EventSpec::timed("before-watch", &start, &end));
    let alice = token("alice", json!({}));
    let back = w.connect(&alice, "google", json!({})).await;
    let connection_text = back["connection_id"].clone();
    let connection: ConnectionId = connection_text.parse().expect("a connection id");
    assert!(w.app.run_jobs().await >= 2, "initial sync ran");

    // Watched after the initial sync; the early `sync` message was accepted and confirmed it.
    assert_eq!(w.google.watch_calls(), 1, "one calendar, one watch");
    let open = channels(&w, connection).await;
    assert_eq!(open.len(), 1);
    let first = open[0].clone();
    let scope = TenantScope::new(first.tenant_id);
    let (_, resource, channel_token) = w.google.channel(&first.id).expect("the fake knows the channel");
    let channel_token = channel_token.expect("a token was sent");
    assert_eq!(first.resource_id.as_deref(), Some(resource.as_str()));
    assert_ne!(first.token_sha256.to_vec(), channel_token.as_bytes().to_vec(), "only the hash is stored");
    let deliveries = w.google.wait_for_deliveries(1).await;
    assert_eq!((deliveries[0].state.as_str(), deliveries[0].number, deliveries[0].status), ("sync", 1, Some(200)));
    assert!(inbox(&w, scope, &first.id).await.is_empty(), "`sync` stores nothing");

    // A change → `exists` → stored once → applied → an incremental sync sees it.
    w.google.insert_event(GOOGLE_SUB, "primary", EventSpec::timed("pushed-change", &start, &end));
    let deliveries = w.google.wait_for_deliveries(2).await;
    let exists = deliveries[1].clone();
    assert_eq!((exists.state.as_str(), exists.status), ("exists", Some(200)));
    let stored = inbox(&w, scope, &first.id).await;
    assert_eq!(stored.len(), 1, "stored before the 200");
    assert_eq!(stored[0].dedup_key, exists.number.to_string());
    let number = exists.number.to_string();
    let expiration = "Tue, 19 Nov 2030 01:13:52 GMT";
    let genuine = [
        ("x-goog-channel-id", first.id.as_str()),
        ("x-goog-channel-token", channel_token.as_str()),
        ("x-goog-resource-id", resource.as_str()),
        ("x-goog-resource-state", "exists"),
        ("x-goog-message-number", number.as_str()),
        ("x-goog-resource-uri", "http://127.0.0.1:9/never-fetched"),
        ("x-goog-channel-expiration", expiration),
    ];
    let again = notify(&w, &genuine).await;
    assert_eq!(again.status(), 200, "a redelivery is acknowledged");
    assert_eq!(inbox(&w, scope, &first.id).await.len(), 1, "the same message number is one event");
    assert!(!event_titles(&w, &alice, &connection_text).await.contains("pushed-change"), "not synced yet");
    apply_all(&w, scope, &first.id).await;
    assert!(w.app.run_jobs().await >= 1, "the applier asked for a run");
    assert!(event_titles(&w, &alice, &connection_text).await.contains("pushed-change"), "the incremental sync saw it");

    // Forgeries: a bad token, a wrong resource id, a missing token → 401, nothing stored.
    let mut forged = genuine;
    forged[1].1 = "not-the-token";
    forged[4].1 = "999";
    let refused = notify(&w, &forged).await;
    assert_eq!(refused.status(), 401);
    assert!(refused.bytes().await.unwrap().is_empty(), "empty body");
    let mut forged = genuine;
    forged[2].1 = "another-resource";
    forged[4].1 = "998";
    assert_eq!(notify(&w, &forged).await.status(), 401);
    assert_eq!(notify(&w, &genuine[..1]).await.status(), 401, "no token");
    assert_eq!(inbox(&w, scope, &first.id).await.len(), 1, "nothing forged was stored");
    let unknown = [("x-goog-channel-id", "no-such-channel"), ("x-goog-channel-token", "x")];
    assert_eq!(notify(&w, &unknown).await.status(), 200, "unknown channels are acknowledged and ignored");

    // Renewal (due a second after the watch here): a new channel first, then the old stopped.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(w.app.run_jobs().await >= 1, "the renewal ran");
    assert_eq!(w.google.watch_calls(), 2, "a new channel was made");
    let open = channels(&w, connection).await;
    assert_eq!(open.len(), 1, "the old channel is stopped, the new one open");
    let second = open[0].clone();
    assert_ne!(second.id, first.id);
    assert!(w.google.stop_calls().contains(&(first.id.clone(), resource.clone())), "the old one was stopped at Google");
    assert_eq!(w.google.live_channels(), vec![second.id.clone()]);
    let stopped = w.app.store.find_watch_channel(&first.id).await.expect("kept until expiry");
    assert!(stopped.stopped_at.is_some());
    // A late message on the old channel is harmless; a change now arrives on the new one.
    assert_eq!(w.google.deliver_late(&first.id).await, Some(200));
    assert_eq!(inbox(&w, scope, &first.id).await.len(), 1, "the late message stored nothing");
    let before = w.google.push_deliveries().len();
    w.google.insert_event(GOOGLE_SUB, "primary", EventSpec::timed("after-renewal", &start, &end));
    let deliveries = w.google.wait_for_deliveries(before + 1).await;
    assert_eq!(deliveries.last().unwrap().channel, second.id, "only the live channel delivers");
    assert_eq!(inbox(&w, scope, &second.id).await.len(), 1);
    apply_all(&w, scope, &second.id).await;
    w.app.run_jobs().await;
    assert!(event_titles(&w, &alice, &connection_text).await.contains("after-renewal"), "no change lost");

    // Coalescing: 50 changes → 50 stored notifications → applied → one sync run, not 50.
    let runs_path = format!("/v1/connections/{connection_text}/sync-runs?limit=100");
    let runs_before = json(w.app.get_as(&runs_path, &alice).await).await["data"].as_array().unwrap().len();
    let before = w.google.push_deliveries().len();
    for n in 0..50 {
        w.google.insert_event(GOOGLE_SUB, "primary", EventSpec::timed(&format!("burst-{n}"), &start, &end));
    }
    w.google.wait_for_deliveries(before + 50).await;
    assert_eq!(inbox(&w, scope, &second.id).await.len(), 51, "every message stored once");
    apply_all(&w, scope, &second.id).await;
    w.app.run_jobs().await;
    let runs_after = json(w.app.get_as(&runs_path, &alice).await).await["data"].as_array().unwrap().len();
    assert_eq!(runs_after, runs_before + 1, "50 notifications made one run");
    let titles = event_titles(&w, &alice, &connection_text).await;
    assert!(titles.contains("burst-0") && titles.contains("burst-49"), "the one run saw all 50");

    // Disconnect stops the channel at Google (before the grant is revoked).
    let deleted = w.app.client.delete(w.app.url(&format!("/v1/connections/{connection_text}"))).bearer_auth(&alice);
    assert_eq!(deleted.send().await.unwrap().status(), 202);
    for _ in 0..5 {
        w.app.run_jobs().await;
        if w.app.store.find_watch_channel(&second.id).await.is_ok_and(|c| c.stopped_at.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.app.run_jobs().await;
    assert!(
        w.google.stop_calls().contains(&(second.id.clone(), resource.clone())),
        "channels/stop called on disconnect: {:?}",
        w.google.stop_calls()
    );
    assert!(w.google.live_channels().is_empty(), "no channel left alive at Google");
    assert!(channels(&w, connection).await.is_empty());
    assert_eq!(w.google.deliver_late(&second.id).await, Some(200), "a late message after the stop: 200");
    assert_eq!(inbox(&w, scope, &second.id).await.len(), 51, "and nothing stored");
    assert_eq!(w.google.resource_uri_fetches(), 0, "X-Goog-Resource-URI is never fetched");
}

both_stores!(a_channel_is_watched_notified_renewed_and_stopped_on_disconnect, lifecycle);
