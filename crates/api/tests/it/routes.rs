//! The route walker: every route, plus an unknown one, a wrong method, an oversized body and a
//! rate-limited burst, answers with the security headers, an `X-Request-Id`, and problem
//! details on every error. And the OpenAPI document matches the router.

use crate::helpers::{self, json, spawn, token, Db};
use reqwest::{Method, Response};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
    ("x-content-type-options", "nosniff"),
    ("content-security-policy", "default-src 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

/// Asserts what every response must carry; returns the body for further checks.
async fn assert_hardened(what: &str, response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(headers.get(name).and_then(|v| v.to_str().ok()), Some(value), "{what}: header {name}");
    }
    assert!(headers.get("server").is_none(), "{what}: no Server header");
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(!request_id.is_empty(), "{what}: X-Request-Id present");
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status >= 400 && what != "GET /readyz" {
        assert_eq!(content_type, "application/problem+json", "{what}: errors are problem details");
        let code = body["code"].as_str().unwrap_or_else(|| panic!("{what}: problem has a code: {body}"));
        assert_eq!(body["type"], format!("urn:patchbay:problem:{code}"), "{what}: type derives from code");
        assert_eq!(body["status"], status, "{what}: status in body");
        assert!(body["title"].is_string(), "{what}: title");
    } else if status < 300 {
        assert_eq!(content_type, "application/json; charset=utf-8", "{what}: JSON with charset");
    }
    (status, body)
}

/// Every operation of the document (path items' other keys, like `description`, skipped).
fn operations(spec: &Value) -> Vec<(Method, String, bool)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "put", "post", "delete", "options", "head", "patch", "trace"].contains(&method.as_str()) {
                continue;
            }
            let method: Method = method.to_uppercase().parse().unwrap();
            let browser = op["x-patchbay-browser"] == true;
            out.push((method, path.clone(), browser));
        }
    }
    out
}

fn concrete(path: &str) -> String {
    path.replace("{id}", &uuid::Uuid::now_v7().to_string())
}

#[tokio::test]
async fn every_route_answers_hardened_and_errors_are_problem_details() {
    let mut env = HashMap::new();
    env.insert("PATCHBAY_ADMIN_TOKENS".to_string(), "operator-token-0123456789abcdef".to_string());
    // The burst covers the walk (two calls per /v1 operation, from one address) with room left.
    let app = spawn(Db::Sqlite, &["--v1-per-second", "0.01", "--v1-burst", "90", "--body-limit-bytes", "1024"], env)
        .await
        .unwrap();
    let spec = json(app.get("/openapi.json").await).await;
    let user = token("walker", json!({}));

    // The browser routes answer HTML pages with their own CSP (tests/it/browser.rs and
    // connect.rs cover them); this walker covers the JSON API.
    for (method, path, _) in operations(&spec).into_iter().filter(|(_, _, browser)| !browser) {
        let url = app.url(&concrete(&path));
        let credential = if path.starts_with("/admin/") { "operator-token-0123456789abcdef" } else { user.as_str() };
        let anonymous = app.client.request(method.clone(), &url).send().await.unwrap();
        let (status, _) = assert_hardened(&format!("{method} {path} anonymous"), anonymous).await;
        if path.starts_with("/v1/") || path.starts_with("/admin/") {
            assert_eq!(status, 401, "{method} {path}: anonymous calls are refused");
        }
        let authed = app.client.request(method.clone(), &url).bearer_auth(credential).send().await.unwrap();
        let (status, body) = assert_hardened(&format!("{method} {path}"), authed).await;
        assert_ne!(body["code"], "route_not_found", "{method} {path}: documented route is routed");
        assert!(status < 500, "{method} {path}: no 5xx ({status})");
    }

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        ("unknown route", app.client.get(app.url("/no/such/route")), 404, "route_not_found"),
        ("wrong method", app.client.delete(app.url("/healthz")), 405, "method_not_allowed"),
        (
            "oversized body",
            app.client.post(app.url("/v1/me")).bearer_auth(&user).body(vec![b'x'; 4096]),
            413,
            "payload_too_large",
        ),
        ("malformed id", app.client.get(app.url("/v1/connections/not-a-uuid")).bearer_auth(&user), 400, "invalid_path"),
        (
            "malformed cursor",
            app.client.get(app.url("/v1/connections?cursor=zzz")).bearer_auth(&user),
            400,
            "invalid_query",
        ),
        ("bad limit", app.client.get(app.url("/v1/connections?limit=-1")).bearer_auth(&user), 400, "invalid_query"),
    ];
    for (what, request, expected, code) in cases {
        let (status, body) = assert_hardened(what, request.send().await.unwrap()).await;
        assert_eq!((status, body["code"].as_str().unwrap_or("")), (expected, code), "{what}");
    }

    // A burst past the /v1 limit: 429 with Retry-After, as problem details.
    let mut limited = None;
    for _ in 0..90 {
        let response = app.get("/v1/me").await;
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("a burst of 90 over a burst size of 60 is limited");
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "Retry-After is at least a second");
    let (_, body) = assert_hardened("rate-limited burst", limited).await;
    assert_eq!(body["code"], "rate_limited");
    app.stop().await;
}

#[tokio::test]
async fn openapi_document_lists_exactly_the_routers_routes_and_every_problem_code() {
    let app = helpers::spawn_app().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let spec = json(response).await;
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"), "OpenAPI 3.1");

    let documented: BTreeSet<String> = operations(&spec).into_iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    let expected: BTreeSet<String> = [
        "GET /healthz",
        "GET /readyz",
        "GET /v1/me",
        "GET /v1/connections",
        "GET /v1/connections/{id}",
        "DELETE /v1/connections/{id}",
        "GET /v1/connections/{id}/monday/boards",
        "GET /v1/connections/{id}/monday/boards/{board}/items",
        "GET /v1/connections/{id}/monday/changes",
        "POST /v1/connections/{id}/monday/boards/{board}/items/{item}/column-values",
        "GET /v1/connections/{id}/proxy/{path}",
        "POST /v1/connections/{id}/proxy/{path}",
        "PUT /v1/connections/{id}/proxy/{path}",
        "PATCH /v1/connections/{id}/proxy/{path}",
        "DELETE /v1/connections/{id}/proxy/{path}",
        "POST /v1/connections/{id}/sync",
        "GET /v1/connections/{id}/sync-runs",
        "GET /v1/sync-runs/{id}",
        "GET /v1/connections/{id}/google/calendars",
        "GET /v1/connections/{id}/google/calendars/{calendar}/events",
        "GET /v1/connections/{id}/google/changes",
        "POST /v1/connect-sessions",
        "GET /v1/connect-sessions/{id}",
        "GET /v1/audit-events",
        "GET /v1/webhook-sources",
        "POST /v1/webhook-sources",
        "POST /v1/webhook-sources/{id}/rotate-secret",
        "GET /v1/webhook-events",
        "GET /v1/event-endpoints",
        "POST /v1/event-endpoints",
        "GET /v1/event-endpoints/{id}",
        "DELETE /v1/event-endpoints/{id}",
        "GET /v1/event-endpoints/{id}/deliveries",
        "POST /v1/event-endpoints/{id}/deliveries/{delivery_id}/redrive",
        "POST /v1/event-endpoints/{id}/test",
        "POST /v1/event-endpoints/{id}/rotate-secret",
        "POST /v1/webhook-events/{id}/reprocess",
        "GET /admin/v1/connections",
        "GET /connect/{token}",
        "POST /connect/{token}",
        "GET /oauth/{provider}/callback",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(documented, expected, "the document lists the router's routes");

    // Every documented operation is really routed (the walker above checks answers; this
    // checks the converse: nothing routed under /v1 is missing from the document).
    for route in ["/admin/v1/report"] {
        let body = json(app.get(route).await).await;
        assert_eq!(body["code"], "route_not_found", "{route} is not routed yet, and not documented");
    }

    let codes: BTreeSet<&str> = spec["components"]["schemas"]["ProblemCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let all: BTreeSet<&str> = patchbay_api::http::openapi::problem_codes().into_iter().collect();
    assert_eq!(codes, all, "every problem code is in the document");
    assert!(spec["components"]["schemas"]["Problem"].is_object(), "the problem schema is documented");
    for (path, item) in spec["paths"].as_object().unwrap() {
        if path.starts_with("/v1/") || path.starts_with("/admin/") {
            for (method, op) in item.as_object().unwrap().iter().filter(|(k, _)| *k != "description") {
                assert!(op["security"].is_array(), "{method} {path} declares its security");
                assert!(op["responses"]["401"].is_object(), "{method} {path} documents its 401 problem");
            }
        }
    }
    app.stop().await;
}
