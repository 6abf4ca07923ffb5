//! Sync through the API, on both stores: a manual request queues one run (a second joins it),
//! the worker runs it against the fake Google, the run and the synced events are readable,
//! another tenant sees nothing, and what was synced is sealed at rest: a canary title and
//! description are served by the read API and appear nowhere in the database (the SQLite file
//! and its WAL, which hold the job payloads too; a `pg_dump` of the test's Postgres schema) or in
//! the TRACE-level logs of the whole run.

use crate::canary::Captured;
use crate::connect::world;
use crate::helpers::{json, token, Db};
use patchbay_testkit::fakes::google::EventSpec;
use patchbay_testkit::fakes::GOOGLE_SUB;
use secrecy::ExposeSecret;
use serde_json::json;

const CANARY_TITLE: &str = "canary-title-7f3a9c";
const CANARY_TEXT: &str = "canary-description-51be02";

async fn manual_sync(db: Db) {
    // TRACE logs of everything this test's thread runs (the app and the worker run on this
    // current-thread runtime); a thread-local default, so the two stores' tests may share a
    // process under `cargo test`.
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _logs = tracing::subscriber::set_default(subscriber);
    let Some(w) = world(db, "v2").await else { return };
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
    match db {
        Db::Sqlite => {
            for file in ["patchbay.db", "patchbay.db-wal"] {
                if let Ok(bytes) = std::fs::read(w.app.data_dir.join(file)) {
                    at_rest.extend(bytes);
                }
            }
        }
        Db::Postgres => at_rest = pg_dump(w.app.state.settings.database.url.expose_secret()),
    }
    assert!(at_rest.len() > 10_000, "the database was read ({} bytes)", at_rest.len());
    let logs = captured.0.lock().unwrap().clone();
    assert!(logs.len() > 1_000, "the logs were captured ({} bytes)", logs.len());
    for (place, bytes) in [("the database", &at_rest), ("the logs", &logs)] {
        for canary in [CANARY_TITLE, CANARY_TEXT] {
            let needle = canary.as_bytes();
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{canary} is in {place} in clear");
        }
    }
    w.app.stop().await;
}

crate::both_stores!(a_manual_sync_runs_once_serves_the_events_and_leaves_no_plaintext_at_rest, manual_sync);

/// A plain-text dump of the test's Postgres schema (its URL carries the schema as
/// `options=-c search_path=…`), data included.
fn pg_dump(url: &str) -> Vec<u8> {
    let (base, options) = url.split_once("options=").expect("a test URL names its schema");
    let schema = options.split("search_path%3D").nth(1).expect("the schema").split('&').next().unwrap();
    let base = base.trim_end_matches(['?', '&']);
    let out = std::process::Command::new("pg_dump")
        .args(["--no-owner", "--schema", schema, base])
        .output()
        .expect("pg_dump runs (it ships with the Postgres client the test script needs)");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("COPY"), "the dump holds the data");
    out.stdout
}
