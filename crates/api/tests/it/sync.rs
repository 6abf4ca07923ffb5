//! Sync through the API: a manual request queues one run (a second joins it), the worker runs it
//! against the fake Google, the run and the synced events are readable, another tenant sees
//! nothing, and what was synced is sealed at rest (a canary title and description are served by
//! the read API and appear nowhere in the SQLite file, its WAL or the job payloads).

use crate::connect::world;
use crate::helpers::{json, token, Db};
use patchbay_testkit::fakes::google::EventSpec;
use patchbay_testkit::fakes::GOOGLE_SUB;
use serde_json::json;

const CANARY_TITLE: &str = "canary-title-7f3a9c";
const CANARY_TEXT: &str = "canary-description-51be02";

#[tokio::test]
async fn a_manual_sync_runs_once_serves_the_events_and_leaves_no_plaintext_at_rest() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let start = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let end = (chrono::Utc::now() + chrono::Duration::days(1) + chrono::Duration::hours(1)).to_rfc3339();
    w.google.insert_event(GOOGLE_SUB, "primary", EventSpec::timed(CANARY_TITLE, &start, &end).described(CANARY_TEXT));
    let alice = token("alice", json!({}));
    let back = w.connect(&alice, "google", json!({})).await;
    let id = back["connection_id"].clone();

    let sync = format!("/v1/connections/{id}/sync");
    let first = w.app.client.post(w.app.url(&sync)).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(first.status(), 202, "a new run is queued");
    let first = json(first).await;
    assert_eq!((first["status"].as_str(), first["trigger"].as_str()), (Some("queued"), Some("manual")));
    let again = w.app.client.post(w.app.url(&sync)).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(again.status(), 200, "a second request joins the pending run");
    assert_eq!(json(again).await["id"], first["id"]);

    assert!(w.app.run_jobs().await >= 1, "the worker ran the sync");
    let run = json(w.app.get_as(&format!("/v1/sync-runs/{}", first["id"].as_str().unwrap()), &alice).await).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(run["api_calls"].as_i64().unwrap() >= 2 && run["upserted"].as_i64().unwrap() >= 2, "{run}");
    let runs = json(w.app.get_as(&format!("/v1/connections/{id}/sync-runs"), &alice).await).await;
    assert!(runs["data"].as_array().unwrap().iter().any(|r| r["id"] == first["id"]), "{runs}");

    let calendars = json(w.app.get_as(&format!("/v1/connections/{id}/google/calendars"), &alice).await).await;
    let calendar = calendars["data"][0]["id"].as_str().expect("the calendar is served").to_owned();
    let events = w.app.get_as(&format!("/v1/connections/{id}/google/calendars/{calendar}/events"), &alice).await;
    let events = events.text().await.unwrap();
    assert!(events.contains(CANARY_TITLE) && events.contains(CANARY_TEXT), "the read API serves the event: {events}");

    let bob = token("bob", json!({}));
    let other = w.app.get_as(&format!("/v1/connections/{id}/google/calendars"), &bob).await;
    assert_eq!(other.status(), 404, "another tenant sees no such connection");
    let other = w.app.client.post(w.app.url(&sync)).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(other.status(), 404, "nor can it sync it");

    let mut at_rest = Vec::new();
    for file in ["patchbay.db", "patchbay.db-wal"] {
        if let Ok(bytes) = std::fs::read(w.app.data_dir.join(file)) {
            at_rest.extend(bytes);
        }
    }
    assert!(!at_rest.is_empty(), "the database file was read");
    for canary in [CANARY_TITLE, CANARY_TEXT] {
        let needle = canary.as_bytes();
        assert!(!at_rest.windows(needle.len()).any(|w| w == needle), "{canary} is in the database file in clear");
    }
    w.app.stop().await;
}
