//! Events out over the real API on both stores: endpoints created, listed, tested, rotated,
//! redriven and deleted per tenant, with the delivery loop running as a job and a loopback
//! receiver checking every signature; private addresses refused with problem details.

use crate::both_stores;
use crate::helpers::{json, spawn, token, Db, TestApp};
use axum::body::Bytes;
use axum::http::HeaderMap;
use patchbay_store::WebhookScheme;
use patchbay_webhooks::{verify, Scheme, SigningKey};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

fn admin(org: &str) -> String {
    token(&format!("admin-{org}"), json!({"org": org, "role": "admin"}))
}

async fn app(db: Db, allow_private: bool) -> Option<TestApp> {
    let allow = if allow_private { "true" } else { "false" };
    let args = ["--tenant-claim", "org", "--allow-private-endpoints", allow, "--events-out-poll-ms", "100"];
    spawn(db, &args, HashMap::new()).await
}

type Got = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A loopback receiver answering 204 and keeping what it got.
async fn receiver() -> (String, Got) {
    let got: Got = Arc::default();
    let kept = got.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push((headers, body.to_vec()));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/events", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

async fn post(app: &TestApp, bearer: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    let request = app.client.post(app.url(path)).bearer_auth(bearer);
    let request = match body {
        Some(b) => request.json(&b),
        None => request,
    };
    request.send().await.unwrap()
}

/// Steps the worker (the `events.deliver` rounds) until one of the endpoint's deliveries has
/// `status`.
async fn wait_for(app: &TestApp, bearer: &str, id: &str, status: &str) -> Value {
    for _ in 0..100 {
        app.run_jobs().await;
        let page =
            json(app.get_as(&format!("/v1/event-endpoints/{id}/deliveries?status={status}"), bearer).await).await;
        if let Some(first) = page["data"].as_array().unwrap().first() {
            return first.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(110)).await;
    }
    panic!("no delivery became {status}");
}

/// `patchbay_event_deliveries_total{outcome="delivered"}` as the metrics listener reports it.
async fn delivered_counted(app: &TestApp) -> u64 {
    let text = app.client.get(format!("{}/metrics", app.metrics)).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("patchbay_event_deliveries_total{outcome=\"delivered\"} "))
        .map_or(0, |value| value.trim().parse().unwrap())
}

fn key(secret: &Value) -> SigningKey {
    SigningKey::from_secret(WebhookScheme::StandardWebhooks, &SecretString::from(secret.as_str().unwrap().to_owned()))
        .unwrap()
}

both_stores!(an_endpoint_is_created_tested_rotated_redriven_and_deleted, endpoint_lifecycle);
async fn endpoint_lifecycle(db: Db) {
    let Some(app) = app(db, true).await else { return };
    let (acme, globex) = (admin("acme"), admin("globex"));
    let (url, got) = receiver().await;
    let created =
        post(&app, &acme, "/v1/event-endpoints", Some(json!({"url": url, "event_types": ["sync.completed"]}))).await;
    let status = created.status();
    let created = json(created).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"), "the secret is shown once");
    assert_eq!(created["event_types"], json!(["sync.completed"]));
    let old_key = key(&created["secret"]);

    let listed = json(app.get_as("/v1/event-endpoints", &acme).await).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(listed["data"][0].get("secret").is_none(), "a list never shows a secret");
    let one = json(app.get_as(&format!("/v1/event-endpoints/{id}"), &acme).await).await;
    assert!(one.get("secret").is_none() && one["secrets"].as_array().unwrap().len() == 1);
    assert_eq!(json(app.get_as("/v1/event-endpoints", &globex).await).await["data"], json!([]));
    assert_eq!(app.get_as(&format!("/v1/event-endpoints/{id}"), &globex).await.status(), 404, "another tenant");
    assert_eq!(post(&app, &globex, &format!("/v1/event-endpoints/{id}/test"), None).await.status(), 404);

    let queued = post(&app, &acme, &format!("/v1/event-endpoints/{id}/test"), None).await;
    assert_eq!(queued.status(), 202);
    let queued = json(queued).await;
    assert_eq!(queued["event_type"], "endpoint.test");
    let delivered = wait_for(&app, &acme, &id, "delivered").await;
    assert_eq!((delivered["attempts"].as_i64(), delivered["last_status"].as_i64()), (Some(1), Some(204)));
    let (headers, body) = got.lock().unwrap()[0].clone();
    assert_eq!(headers["webhook-id"], delivered["event_id"].as_str().unwrap());
    let ts: i64 = headers["webhook-timestamp"].to_str().unwrap().parse().unwrap();
    assert!(verify(&Scheme::StandardWebhooks, &[old_key], &headers, &body, ts).is_ok(), "signed with the secret");
    let sent: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(sent["type"], "endpoint.test");

    let delivery = delivered["id"].as_str().unwrap();
    let redrive = format!("/v1/event-endpoints/{id}/deliveries/{delivery}/redrive");
    assert_eq!(post(&app, &globex, &redrive, None).await.status(), 404, "another tenant cannot redrive");
    let redriven = post(&app, &acme, &redrive, None).await;
    assert_eq!(redriven.status(), 200);
    assert_eq!(json(redriven).await["status"], "pending");
    let again = post(&app, &acme, &redrive, None).await;
    assert_eq!(again.status(), 409, "a pending delivery is not redriven twice");
    assert_eq!(json(again).await["code"], "conflict");
    let resent = wait_for(&app, &acme, &id, "delivered").await;
    assert_eq!(resent["attempts"].as_i64(), Some(1), "the redrive started a fresh schedule");
    assert_eq!(got.lock().unwrap().len(), 2, "sent again");
    assert_eq!(delivered_counted(&app).await, 2, "patchbay_event_deliveries_total counts both deliveries");

    let rotated =
        post(&app, &acme, &format!("/v1/event-endpoints/{id}/rotate-secret"), Some(json!({"overlap_seconds": 3600})))
            .await;
    assert_eq!(rotated.status(), 200);
    let rotated = json(rotated).await;
    assert_ne!(rotated["secret"], created["secret"]);
    assert_eq!(rotated["secrets"].as_array().unwrap().len(), 2, "old and new during the overlap");
    let too_long = post(
        &app,
        &acme,
        &format!("/v1/event-endpoints/{id}/rotate-secret"),
        Some(json!({"overlap_seconds": 2_592_001})),
    )
    .await;
    assert_eq!(too_long.status(), 400);

    let audit = json(app.get_as("/v1/audit-events", &acme).await).await;
    let actions: Vec<&str> = audit["data"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for action in
        ["event_endpoint.create", "event_endpoint.test", "event_delivery.redrive", "event_endpoint.rotate_secret"]
    {
        assert!(actions.contains(&action), "{action} is audited: {actions:?}");
    }
    let delete =
        |bearer: String| app.client.delete(app.url(&format!("/v1/event-endpoints/{id}"))).bearer_auth(bearer).send();
    assert_eq!(delete(globex.clone()).await.unwrap().status(), 404);
    assert_eq!(delete(acme.clone()).await.unwrap().status(), 204);
    assert_eq!(app.get_as(&format!("/v1/event-endpoints/{id}"), &acme).await.status(), 404);
    assert_eq!(app.get_as(&format!("/v1/event-endpoints/{id}/deliveries"), &acme).await.status(), 404);
}

both_stores!(private_and_malformed_endpoints_are_refused_with_problem_details, refusals);
async fn refusals(db: Db) {
    let Some(app) = app(db, false).await else { return };
    let acme = admin("acme");
    for (body, needle) in [
        (json!({"url": "https://127.0.0.1/hook", "event_types": ["sync.completed"]}), "loopback"),
        (json!({"url": "https://[::ffff:10.0.0.1]/hook", "event_types": ["sync.completed"]}), "IPv4-mapped"),
        (json!({"url": "https://169.254.169.254/", "event_types": ["sync.completed"]}), "link-local"),
        (json!({"url": "https://100.64.0.1/", "event_types": ["sync.completed"]}), "carrier-grade NAT"),
        (json!({"url": "https://[fd00::1]/", "event_types": ["sync.completed"]}), "unique-local"),
        (json!({"url": "http://93.184.216.34/", "event_types": ["sync.completed"]}), "https"),
        (json!({"url": "https://93.184.216.34/", "event_types": []}), "event_types"),
        (json!({"url": "https://93.184.216.34/", "event_types": ["nope"]}), "event_types"),
    ] {
        let refused = post(&app, &acme, "/v1/event-endpoints", Some(body.clone())).await;
        assert_eq!(refused.status(), 400, "{body}");
        assert_eq!(refused.headers()["content-type"], "application/problem+json");
        let problem = json(refused).await;
        assert!(problem["detail"].as_str().unwrap().contains(needle), "{body}: {problem}");
    }
    let unknown = post(
        &app,
        &acme,
        "/v1/event-endpoints",
        Some(json!({"url": "https://x.test/", "event_types": ["sync.completed"], "extra": 1})),
    )
    .await;
    assert_eq!(unknown.status(), 400, "unknown fields are refused");
    assert_eq!(json(app.get_as("/v1/event-endpoints", &acme).await).await["data"], json!([]), "nothing was stored");
    let bad_status =
        app.get_as("/v1/event-endpoints/0190d1a4-6b7e-7000-8000-000000000000/deliveries?status=lost", &acme).await;
    assert_eq!(bad_status.status(), 400);
    let created = post(
        &app,
        &acme,
        "/v1/event-endpoints",
        Some(json!({"url": "https://93.184.216.34/hook", "event_types": ["sync.failed"]})),
    )
    .await;
    assert_eq!(created.status(), 201, "a public address literal needs no DNS");
}
