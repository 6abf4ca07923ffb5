//! Health, readiness, metrics, and an orderly shutdown.

use crate::helpers::{json, spawn, spawn_app, Db};
use patchbay_store::{Claim, HealthStore, InstanceStore, JobStatus, JobStore, NewJob};
use patchbay_store_sqlite::{SqliteOptions, SqliteStore};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[tokio::test]
async fn healthz_and_readyz_report_a_healthy_instance() {
    let app = spawn_app().await;
    let live = app.get("/healthz").await;
    assert_eq!(live.status(), 200);
    assert_eq!(json(live).await["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body = json(ready).await;
    assert_eq!(body["status"], "healthy");
    assert!(body["timestamp"].is_string());
    assert_eq!(body.as_object().unwrap().len(), 2, "the public answer carries only status and timestamp");
    app.stop().await;
}

async fn detailed_readyz(db: Db) {
    let Some(app) = spawn(db, &[], HashMap::new()).await else { return };
    let response = app.client.get(format!("{}/readyz", app.metrics)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["database"]["connected"], true);
    assert!(body["database"]["latency_ms"].as_f64().unwrap() >= 0.0);
    let version = body["database"]["version"].as_str().unwrap().to_lowercase();
    let expected = if db == Db::Postgres { "postgresql" } else { "sqlite" };
    assert!(version.contains(expected), "database version names the engine: {version}");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_seconds"].is_u64());
    app.stop().await;
}
crate::both_stores!(detailed_readyz_on_the_metrics_listener_reports_the_database, detailed_readyz);

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.store.close().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    assert_eq!(json(response).await["status"], "unhealthy");
    assert_eq!(app.get("/healthz").await.status(), 200, "liveness does no I/O");
    let me = app.get_as("/v1/me", &crate::helpers::token("alice", serde_json::json!({}))).await;
    assert_eq!(me.status(), 503, "a store outage is a 503, not a 500");
    assert_eq!(json(me).await["code"], "unavailable");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_jobs_by_status() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    app.get(&format!("/v1/connections/{}", uuid::Uuid::now_v7())).await;
    app.store
        .enqueue(NewJob::new("demo.kind", serde_json::json!({}), chrono::Utc::now()), chrono::Utc::now())
        .await
        .unwrap();
    let text = app.client.get(format!("{}/metrics", app.metrics)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"patchbay_http_requests_total{route="/healthz",method="GET",status="200"}"#), "{text}");
    assert!(text.contains(r#"route="/v1/connections/{id}""#), "the template, never the id: {text}");
    assert!(text.contains("patchbay_http_request_duration_seconds_bucket"), "latency histogram");
    assert!(text.contains(r#"patchbay_jobs{kind="demo.kind",status="queued"} 1"#), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn shutdown_turns_readyz_503_first_then_drains_and_gives_leases_back() {
    let mut app = spawn(Db::Sqlite, &["--drain-seconds", "1"], HashMap::new()).await.unwrap();
    // A job held by this instance's worker identity, as if it were mid-run.
    let instance = app.store.list_instances().await.unwrap().pop().expect("the instance registered itself");
    let owner = instance.id.to_string();
    let now = chrono::Utc::now();
    let job = app.store.enqueue(NewJob::new("demo.kind", serde_json::json!({}), now), now).await.unwrap().job_id();
    let claim = Claim { owner: &owner, kinds: &[], lease: chrono::Duration::minutes(5), now };
    app.store.claim(claim).await.unwrap().expect("claimed");

    let store = app.store.clone();
    let started = Instant::now();
    app.begin_stop();
    let mut saw_503 = false;
    while started.elapsed() < Duration::from_millis(900) {
        match app.client.get(app.url("/readyz")).send().await {
            Ok(r) if r.status() == 503 => {
                saw_503 = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(saw_503, "readiness reports 503 during the drain delay, while still serving");
    app.wait_stopped().await;
    assert!(started.elapsed() < Duration::from_secs(10), "shutdown is bounded");
    let refused = app.client.get(app.url("/healthz")).send().await;
    assert!(refused.is_err_and(|e| e.is_connect()), "the listener is closed");
    // Shutdown gave the lease back (attempt refunded) and deregistered the instance.
    drop(store);
    let url = format!("sqlite://{}/patchbay.db", app.data_dir.display());
    let reopened = SqliteStore::open(&url, SqliteOptions::default()).await.expect("the lock was released on shutdown");
    let job = reopened.get_job(job).await.unwrap();
    assert_eq!(job.status, JobStatus::Queued, "the job is queued again");
    assert_eq!(job.attempts, 0, "the interrupted attempt was refunded");
    assert_eq!(job.lease_owner, None);
    assert!(reopened.list_instances().await.unwrap().is_empty(), "the instance deregistered");
    reopened.close().await;
}
