//! The connection view's sync status (issue 7 item 5): `GET /v1/connections/{id}` and the list
//! show the connection's breaker and its provider's, the last ended run, and each part's last
//! success; a breaker opened in the store is shown open with its next probe; another tenant
//! still gets 404.

use crate::connect::world;
use crate::helpers::{json, token, Db};
use chrono::Utc;
use patchbay_store::BreakerPolicy;
use patchbay_sync::breaker::connection_key;
use patchbay_testkit::fakes::google::EventSpec;
use patchbay_testkit::fakes::GOOGLE_SUB;
use serde_json::{json, Value};

fn closed(breaker: &Value) -> bool {
    breaker["state"] == "closed"
        && breaker["consecutive_failures"] == 0
        && breaker["opened_at"].is_null()
        && breaker["next_probe_at"].is_null()
}

async fn view_story(db: Db) {
    let Some(w) = world(db, "v2").await else { return };
    let start = Utc::now() + chrono::Duration::days(1);
    let (from, to) = (start.to_rfc3339(), (start + chrono::Duration::hours(1)).to_rfc3339());
    w.google.insert_event(GOOGLE_SUB, "primary", EventSpec::timed("view", &from, &to));
    let alice = token("alice", json!({}));
    let id = w.connect(&alice, "google", json!({})).await["connection_id"].clone();
    let show = format!("/v1/connections/{id}");

    let before = json(w.app.get_as(&show, &alice).await).await;
    let sync = &before["sync"];
    assert!(closed(&sync["breaker"]) && closed(&sync["provider_breaker"]), "{before}");
    assert!(sync["last_run"].is_null(), "no run has ended yet: {before}");
    assert_eq!(sync["parts"], json!([]), "{before}");

    let requested = Utc::now();
    let run = w.app.client.post(w.app.url(&format!("{show}/sync"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(run.status(), 202);
    let run = json(run).await;
    assert!(w.app.run_jobs().await >= 1);

    let after = json(w.app.get_as(&show, &alice).await).await;
    let sync = &after["sync"];
    // The runs list, newest first, starts with the queued successor; the view shows the newest
    // run that ended.
    let runs = json(w.app.get_as(&format!("{show}/sync-runs"), &alice).await).await;
    let runs = runs["data"].as_array().unwrap().clone();
    assert!(runs.iter().any(|r| r["id"] == run["id"] && r["status"] == "succeeded"), "{runs:?}");
    assert_eq!(runs[0]["status"], "queued", "a finished run queued its successor: {runs:?}");
    let ended = runs.iter().find(|r| r["status"] != "queued" && r["status"] != "running").unwrap();
    assert_eq!(sync["last_run"]["id"], ended["id"], "the newest ended run, not the queued successor: {after}");
    assert_eq!(sync["last_run"]["status"], "succeeded", "{after}");
    assert_eq!(sync["last_run"]["finished_at"], after["last_sync_at"], "{after}");
    let parts = sync["parts"].as_array().unwrap();
    let names: Vec<&str> = parts.iter().map(|p| p["part"].as_str().unwrap()).collect();
    assert!(names.contains(&"calendars") && names.iter().any(|n| n.starts_with("events:")), "{after}");
    for part in parts {
        let at: chrono::DateTime<Utc> = serde_json::from_value(part["last_success_at"].clone())
            .unwrap_or_else(|e| panic!("every part has a last success after the run ({e}): {part}"));
        assert!(at >= requested - chrono::Duration::seconds(1), "{part}");
        assert_eq!(part["dirty"], false, "{part}");
    }
    assert!(closed(&sync["breaker"]), "{after}");

    // Open the connection's breaker in the store, as five transient failures would.
    let policy = BreakerPolicy { failure_threshold: 1, base_cooldown_ms: 60_000, max_cooldown_ms: 600_000 };
    let opened = w.app.store.breaker_failure(&connection_key(id.parse().unwrap()), policy, Utc::now()).await.unwrap();
    let shown = json(w.app.get_as(&show, &alice).await).await;
    let breaker = &shown["sync"]["breaker"];
    assert_eq!(
        (breaker["state"].as_str(), breaker["consecutive_failures"].as_i64()),
        (Some("open"), Some(1)),
        "{shown}"
    );
    let probe: chrono::DateTime<Utc> = serde_json::from_value(breaker["next_probe_at"].clone()).expect("a probe time");
    assert_eq!(Some(probe), opened.next_probe_at, "{shown}");
    assert!(probe > Utc::now(), "{shown}");
    assert!(!breaker["opened_at"].is_null(), "{shown}");
    assert!(closed(&shown["sync"]["provider_breaker"]), "the provider's breaker is another one: {shown}");
    assert_eq!(shown["sync"]["last_run"], sync["last_run"]);

    let list = json(w.app.get_as("/v1/connections", &alice).await).await;
    let listed = list["data"].as_array().unwrap().iter().find(|c| c["id"] == id.as_str()).expect("listed").clone();
    assert_eq!(listed["sync"], shown["sync"], "the list shows the same sync status");

    let bob = token("bob", json!({}));
    assert_eq!(w.app.get_as(&show, &bob).await.status(), 404, "another tenant sees no such connection");
    let theirs = json(w.app.get_as("/v1/connections", &bob).await).await;
    assert_eq!(theirs["data"], json!([]), "{theirs}");
    w.app.stop().await;
}
crate::both_stores!(the_connection_view_shows_breakers_the_last_run_and_each_parts_last_success, view_story);
