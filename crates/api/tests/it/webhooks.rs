//! Webhooks in over real HTTP on both stores: the tenant API for sources and events, and
//! `POST /webhooks/sources/{id}` in the contract's order (413 → verify → window → committed).

use crate::both_stores;
use crate::helpers::{json, spawn, token, Db, TestApp};
use patchbay_store::{Page, TenantScope, WebhookEventFilter, WebhookScheme};
use patchbay_webhooks::scheme::sign_standard;
use patchbay_webhooks::SigningKey;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::HashMap;

const BODY_LIMIT: &str = "4096";

/// Request headers as (name, value) pairs.
type Headers = Vec<(&'static str, String)>;

async fn app(db: Db) -> Option<TestApp> {
    spawn(db, &["--tenant-claim", "org", "--body-limit-bytes", BODY_LIMIT], HashMap::new()).await
}

fn admin(org: &str) -> String {
    token(&format!("admin-{org}"), json!({"org": org, "role": "admin"}))
}

async fn create(app: &TestApp, bearer: &str, body: Value) -> reqwest::Response {
    app.client.post(app.url("/v1/webhook-sources")).bearer_auth(bearer).json(&body).send().await.unwrap()
}

/// A Standard Webhooks source of `org`: its path and signing key.
async fn standard_source(app: &TestApp, org: &str) -> (String, String, SigningKey) {
    let created = json(create(app, &admin(org), json!({"name": "billing", "scheme": "standard_webhooks"})).await).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    let key = SigningKey::from_secret(WebhookScheme::StandardWebhooks, &SecretString::from(secret)).unwrap();
    let url = created["url"].as_str().unwrap();
    let path = url[url.find("/webhooks/").unwrap()..].to_owned();
    (created["id"].as_str().unwrap().to_owned(), path, key)
}

async fn deliver(app: &TestApp, path: &str, key: &SigningKey, id: &str, ts: i64, body: &[u8]) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sign_standard(key, id, ts, body))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

async fn stored(app: &TestApp, org: &str) -> usize {
    let bearer = admin(org);
    let me = json(app.get_as("/v1/me", &bearer).await).await;
    let scope = TenantScope::new(me["tenant_id"].as_str().unwrap().parse().unwrap());
    let page = Page::new(Some(500), None);
    app.store.list_webhook_events(scope, &WebhookEventFilter::default(), page).await.unwrap().items.len()
}

both_stores!(sources_are_created_listed_and_rotated_per_tenant, sources_api);
async fn sources_api(db: Db) {
    let Some(app) = app(db).await else { return };
    let (acme, globex) = (admin("acme"), admin("globex"));
    let created = create(&app, &acme, json!({"name": "github", "scheme": "github"})).await;
    assert_eq!(created.status(), 201);
    let created = json(created).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["secret"].as_str().unwrap().len(), 64, "the secret is shown once, at creation");
    assert_eq!(created["url"], format!("{}/webhooks/sources/{id}", app.base));
    let listed = json(app.get_as("/v1/webhook-sources", &acme).await).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(listed["data"][0].get("secret").is_none(), "a list never shows a secret");
    let others = json(app.get_as("/v1/webhook-sources", &globex).await).await;
    assert_eq!(others["data"], json!([]), "another tenant lists nothing");

    let rotate = |bearer: String, body: Option<Value>| {
        let request = app.client.post(app.url(&format!("/v1/webhook-sources/{id}/rotate-secret"))).bearer_auth(bearer);
        let request = match body {
            Some(b) => request.json(&b),
            None => request,
        };
        async move { request.send().await.unwrap() }
    };
    assert_eq!(rotate(globex.clone(), None).await.status(), 404, "another tenant's source is not found");
    let rotated = rotate(acme.clone(), Some(json!({"overlap_seconds": 3600}))).await;
    assert_eq!(rotated.status(), 200);
    let rotated = json(rotated).await;
    assert_ne!(rotated["secret"], created["secret"]);
    let secrets = rotated["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    assert!(secrets[0]["valid_until"].is_null() && secrets[1]["valid_until"].is_string(), "{secrets:?}");
    let defaulted = rotate(acme.clone(), None).await;
    assert_eq!(defaulted.status(), 200, "an empty body takes the default overlap");
    let too_long = rotate(acme.clone(), Some(json!({"overlap_seconds": 2_592_001}))).await;
    assert_eq!(too_long.status(), 400);

    let cases = [
        (json!({"name": "x", "scheme": "github", "settings": {"signature_header": "X-Sig"}}), "settings on github"),
        (json!({"name": "x", "scheme": "generic_hmac"}), "generic without settings"),
        (json!({"name": "x", "scheme": "generic_hmac", "settings": {"signature_header": "bad header"}}), "bad name"),
        (json!({"name": " ", "scheme": "github"}), "empty name"),
        (json!({"name": "x", "scheme": "stripe"}), "unknown scheme"),
    ];
    for (body, case) in cases {
        let response = create(&app, &acme, body).await;
        assert_eq!(response.status(), 400, "{case}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{case}");
    }
    let member = token("member", json!({"org": "acme"}));
    assert_eq!(create(&app, &member, json!({"name": "x", "scheme": "github"})).await.status(), 403);
    let listed = json(app.get_as("/v1/webhook-sources", &acme).await).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "refused creations wrote nothing");
    app.stop().await;
}

both_stores!(a_signed_delivery_is_stored_once_and_listed_to_its_tenant_only, ingest_and_list);
async fn ingest_and_list(db: Db) {
    let Some(app) = app(db).await else { return };
    let (source_id, path, key) = standard_source(&app, "acme").await;
    let now = chrono::Utc::now().timestamp();
    let body = br#"{"type":"invoice.paid","id":1}"#;
    let first = deliver(&app, &path, &key, "msg_1", now, body).await;
    assert_eq!(first.status(), 204);
    assert_eq!(deliver(&app, &path, &key, "msg_1", now, body).await.status(), 204, "a redelivery is acknowledged");
    for i in 2..=4 {
        assert_eq!(deliver(&app, &path, &key, &format!("msg_{i}"), now, body).await.status(), 204);
    }
    assert_eq!(stored(&app, "acme").await, 4, "the redelivery was not stored again");

    let acme = admin("acme");
    let page = json(app.get_as("/v1/webhook-events?limit=3", &acme).await).await;
    let ids: Vec<&str> = page["data"].as_array().unwrap().iter().map(|e| e["dedup_key"].as_str().unwrap()).collect();
    assert_eq!(ids, ["msg_1", "msg_2", "msg_3"]);
    assert_eq!(page["data"][0]["source_id"], source_id.as_str());
    assert_eq!(page["data"][0]["status"], "pending");
    assert!(page["data"][0].get("body").is_none());
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = json(app.get_as(&format!("/v1/webhook-events?limit=3&cursor={cursor}"), &acme).await).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let filtered =
        json(app.get_as(&format!("/v1/webhook-events?source_id={source_id}&status=pending"), &acme).await).await;
    assert_eq!(filtered["data"].as_array().unwrap().len(), 4);
    assert_eq!(app.get_as("/v1/webhook-events?status=lost", &acme).await.status(), 400);
    let other = json(app.get_as("/v1/webhook-events", &admin("globex")).await).await;
    assert_eq!(other["data"], json!([]), "another tenant sees none of them");
    app.stop().await;
}

both_stores!(refused_deliveries_get_an_empty_401_or_413_and_store_nothing, refusals);
async fn refusals(db: Db) {
    let Some(app) = app(db).await else { return };
    let (_, path, key) = standard_source(&app, "acme").await;
    let now = chrono::Utc::now().timestamp();
    let body = br#"{"ok":true}"#;
    let post = |headers: Headers, body: Vec<u8>, path: String| {
        let mut request = app.client.post(app.url(&path)).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap() }
    };
    let good = |id: &str, ts: i64| {
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", sign_standard(&key, id, ts, body)),
        ]
    };
    let mut cases: Vec<(&str, Headers, Vec<u8>, String)> = vec![
        ("tampered body", good("m1", now), br#"{"ok":false}"#.to_vec(), path.clone()),
        ("re-serialized body", good("m2", now), br#"{"ok": true}"#.to_vec(), path.clone()),
        ("timestamp 301 s old", good("m3", now - 301), body.to_vec(), path.clone()),
        ("timestamp 301 s ahead", good("m4", now + 301), body.to_vec(), path.clone()),
        ("unknown source", good("m5", now), body.to_vec(), format!("/webhooks/sources/{}", uuid::Uuid::now_v7())),
        ("malformed source id", good("m6", now), body.to_vec(), "/webhooks/sources/not-a-uuid".into()),
        (
            "GitHub-signed request",
            vec![("x-hub-signature-256", format!("sha256={}", "0".repeat(64))), ("x-github-delivery", "d".into())],
            body.to_vec(),
            path.clone(),
        ),
    ];
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let headers = good("m7", now).into_iter().filter(|(n, _)| *n != missing).collect();
        cases.push(("a missing header", headers, body.to_vec(), path.clone()));
    }
    for (case, headers, body, path) in cases {
        let response = post(headers, body, path).await;
        assert_eq!(response.status(), 401, "{case}");
        assert!(response.bytes().await.unwrap().is_empty(), "{case}: the 401 has an empty body");
    }
    let big = vec![b'x'; 5000];
    let response = post(good("m8", now), big, path.clone()).await;
    assert_eq!(response.status(), 413, "over the body limit");
    assert_eq!(stored(&app, "acme").await, 0, "nothing refused was stored");
    assert_eq!(post(good("m9", now - 299), body.to_vec(), path.clone()).await.status(), 204, "299 s old passes");
    assert_eq!(post(good("m10", now + 299), body.to_vec(), path).await.status(), 204, "299 s ahead passes");
    app.stop().await;
}

both_stores!(concurrent_deliveries_all_land_exactly_once_and_two_sources_keep_their_own, concurrency);
async fn concurrency(db: Db) {
    let Some(app) = app(db).await else { return };
    let app = std::sync::Arc::new(app);
    let (_, path, key) = standard_source(&app, "acme").await;
    let (_, other_path, other_key) = standard_source(&app, "acme").await;
    let key = std::sync::Arc::new(key);
    let now = chrono::Utc::now().timestamp();
    // 48 distinct deliveries, each sent twice at once: 96 concurrent requests.
    let tasks: Vec<_> = (0..96)
        .map(|i| {
            let (app, key, path) = (app.clone(), key.clone(), path.clone());
            tokio::spawn(async move {
                let id = format!("msg_{}", i / 2);
                let body = format!(r#"{{"n":{}}}"#, i / 2).into_bytes();
                deliver(&app, &path, &key, &id, now, &body).await.status().as_u16()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 204, "every delivery is acknowledged");
    }
    assert_eq!(stored(&app, "acme").await, 48, "each distinct delivery stored exactly once");
    let same_id = deliver(&app, &other_path, &other_key, "msg_0", now, br#"{"n":0}"#).await;
    assert_eq!(same_id.status(), 204);
    assert_eq!(stored(&app, "acme").await, 49, "the same webhook-id at another source is another event");
    let app = std::sync::Arc::try_unwrap(app).ok().expect("no task holds the app");
    app.stop().await;
}

both_stores!(a_store_that_is_down_answers_503, store_down);
async fn store_down(db: Db) {
    let Some(app) = app(db).await else { return };
    let (_, path, key) = standard_source(&app, "acme").await;
    app.store.close().await;
    let now = chrono::Utc::now().timestamp();
    let response = deliver(&app, &path, &key, "msg_down", now, b"{}").await;
    assert_eq!(response.status(), 503, "nothing can be committed, so nothing is acknowledged");
}

/// A `patchbay_webhook_processing_total` series as the metrics listener reports it.
async fn processing_counted(app: &TestApp, outcome: &str) -> u64 {
    let text = app.client.get(format!("{}/metrics", app.metrics)).send().await.unwrap().text().await.unwrap();
    let labels = [format!("outcome=\"{outcome}\""), "source_kind=\"source\"".to_owned()];
    text.lines()
        .filter(|line| line.starts_with("patchbay_webhook_processing_total{"))
        .find(|line| labels.iter().all(|l| line.contains(l.as_str())))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0, |value| value.trim().parse().unwrap())
}

both_stores!(a_stored_event_is_processed_into_webhook_received_and_can_be_reprocessed, process_and_reprocess);
async fn process_and_reprocess(db: Db) {
    let Some(app) = app(db).await else { return };
    let (source_id, path, key) = standard_source(&app, "acme").await;
    let now = chrono::Utc::now().timestamp();
    assert_eq!(deliver(&app, &path, &key, "msg_1", now, br#"{"type":"invoice.paid"}"#).await.status(), 204);
    let before = processing_counted(&app, "processed").await;
    assert!(app.run_jobs().await >= 1, "the event's job runs");
    assert_eq!(processing_counted(&app, "processed").await, before + 1, "the metric moves");

    let acme = admin("acme");
    let listed = json(app.get_as("/v1/webhook-events", &acme).await).await;
    let event = &listed["data"][0];
    assert_eq!((event["status"].as_str(), event["attempts"].as_i64()), (Some("processed"), Some(1)), "{event}");
    let id = event["id"].as_str().unwrap().to_owned();
    let me = json(app.get_as("/v1/me", &acme).await).await;
    let scope = TenantScope::new(me["tenant_id"].as_str().unwrap().parse().unwrap());
    let received: Vec<_> = app
        .store
        .list_events(scope, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == patchbay_store::EventType::WebhookReceived)
        .collect();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].payload["webhook_event_id"], id.as_str());
    assert_eq!(received[0].payload["source_id"], source_id.as_str());
    assert_eq!(received[0].payload["body"], json!({"type": "invoice.paid"}));

    let reprocess = |bearer: String, id: String| {
        let request = app.client.post(app.url(&format!("/v1/webhook-events/{id}/reprocess"))).bearer_auth(bearer);
        async move { request.send().await.unwrap() }
    };
    let other = reprocess(admin("globex"), id.clone()).await;
    assert_eq!(other.status(), 404, "another tenant's event is not found");
    assert_eq!(other.headers()["content-type"], "application/problem+json");
    assert_eq!(reprocess(acme.clone(), "not-a-uuid".into()).await.status(), 400);
    let member = token("member", json!({"org": "acme"}));
    assert_eq!(reprocess(member, id.clone()).await.status(), 403);
    let back = reprocess(acme.clone(), id.clone()).await;
    assert_eq!(back.status(), 202);
    let back = json(back).await;
    assert_eq!((back["status"].as_str(), back["attempts"].as_i64()), (Some("pending"), Some(0)), "{back}");
    assert!(app.run_jobs().await >= 1, "the new job runs");
    let listed = json(app.get_as("/v1/webhook-events", &acme).await).await;
    assert_eq!(listed["data"][0]["status"], "processed");
    assert_eq!(processing_counted(&app, "processed").await, before + 2);
    let audit = json(app.get_as("/v1/audit-events", &acme).await).await;
    let actions: Vec<&str> = audit["data"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"webhook_event.reprocess"), "audited: {actions:?}");
    app.stop().await;
}
