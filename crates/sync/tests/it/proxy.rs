//! The provider proxy against the fakes: allowed paths are answered by the provider, everything
//! else is refused before any call; the budget applies; only safe headers pass either way; the
//! provider's token never comes back.

use crate::support::{World, MONDAY_ACCOUNT};
use bytes::Bytes;
use patchbay_sync::proxy::{forward, ProxyError, ProxyRequest};
use patchbay_sync::SyncError;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use std::time::Duration;

fn request(method: Method, path: &str, body: &str) -> ProxyRequest {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("content-type", "application/json"),
        ("authorization", "Bearer pb_client_key"),
        ("cookie", "session=abc"),
        ("connection", "x-smuggle"),
        ("x-smuggle", "1"),
        ("x-forwarded-for", "10.1.2.3"),
        ("proxy-authorization", "Basic eA=="),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    ProxyRequest { method, path: path.into(), query: None, headers, body: Bytes::from(body.to_owned()) }
}

fn assert_no_token(tokens: &[String], response: &patchbay_sync::proxy::ProxyResponse) {
    let body = String::from_utf8_lossy(&response.body);
    let headers = format!("{:?}", response.headers);
    for token in tokens {
        assert!(!body.contains(token.as_str()) && !headers.contains(token.as_str()), "a token came back");
    }
}

async fn monday_graphql_is_forwarded_with_safe_headers_only(world: World) {
    let connection = world.monday_connection("acme").await;
    world.monday.add_board(MONDAY_ACCOUNT, 77, "Roadmap");
    let session = world.session(&connection).await;
    let query = r#"{"query": "{ boards(ids: [77]) { id name } }"}"#;
    let response = forward(&session, request(Method::POST, "v2", query)).await.expect("forwarded");
    assert_eq!(response.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["data"]["boards"][0]["name"], "Roadmap", "{body}");
    assert!(response.headers["content-type"].to_str().unwrap().starts_with("application/json"));
    assert!(response.headers.get("set-cookie").is_none());
    assert_no_token(&world.monday.issued_tokens(), &response);

    let sent = world.monday.last_api_headers();
    let names: Vec<&str> = sent.iter().map(|(n, _)| n.as_str()).collect();
    for refused in ["cookie", "x-smuggle", "x-forwarded-for", "proxy-authorization"] {
        assert!(!names.contains(&refused), "{refused} was forwarded: {names:?}");
    }
    assert!(sent.iter().any(|(n, v)| n == "api-version" && v == "2026-10"), "the pinned version: {sent:?}");
    let auth: Vec<&String> = sent.iter().filter(|(n, _)| n == "authorization").map(|(_, v)| v).collect();
    assert_eq!(auth.len(), 1, "one Authorization: the connection's");
    assert!(!auth[0].contains("pb_client_key"), "the client's credential is not forwarded");
}

async fn monday_refuses_other_paths_and_methods_without_calling(world: World) {
    let connection = world.monday_connection("acme").await;
    let session = world.session(&connection).await;
    let before = world.monday.graphql_calls();
    for (method, path) in [
        (Method::POST, "oauth2/token"),
        (Method::POST, "v2/../oauth2/token"),
        (Method::POST, "v2%2F..%2Foauth2"),
        (Method::GET, "v2"),
        (Method::POST, "https://evil.test/v2"),
    ] {
        let refused = forward(&session, request(method.clone(), path, "{}")).await;
        assert!(matches!(refused, Err(ProxyError::NotAllowed(_))), "{method} {path}: {refused:?}");
    }
    assert_eq!(world.monday.graphql_calls(), before, "nothing reached monday");
}

async fn google_calendar_paths_are_forwarded_and_budgeted(mut world: World) {
    world.tune(|s| {
        // Budgets plan 95 % of the limit with a 5 % burst: two calls at once, not a third.
        s.google_user_per_minute = 60;
        s.max_budget_wait = Duration::ZERO;
    });
    let connection = world.google_connection("acme", "g-sub-1").await;
    world.google.add_calendar("g-sub-1", "team@group.test", "Team");
    let session = world.session(&connection).await;
    let list = || request(Method::GET, "calendar/v3/users/me/calendarList", "");
    let response = forward(&session, list()).await.expect("forwarded");
    assert_eq!(response.status, 200);
    assert!(String::from_utf8_lossy(&response.body).contains("Team"));
    assert_no_token(&world.google.issued_tokens(), &response);

    let missing = forward(&session, request(Method::GET, "calendar/v3/calendars/nope%40x.test/events", ""))
        .await
        .expect("the provider's own refusal is passed back");
    assert_eq!(missing.status, 404);
    assert_eq!(world.google.api_calls(), 2);

    let limited = forward(&session, list()).await;
    assert!(matches!(limited, Err(ProxyError::Sync(SyncError::RateLimited(_)))), "{limited:?}");
    assert_eq!(world.google.api_calls(), 2, "the budget refused before the call");

    for path in ["calendar/v3/../../oauth2/token", "oauth2/v4/token", "calendar/v3/%2e%2e/x", "calendar/v3//evil.test"]
    {
        let refused = forward(&session, request(Method::GET, path, "")).await;
        assert!(matches!(refused, Err(ProxyError::NotAllowed(_))), "{path}: {refused:?}");
    }
    assert_eq!(world.google.api_calls(), 2);
}

async fn an_answer_over_the_limit_is_not_passed_back(mut world: World) {
    world.tune(|s| s.proxy_max_body = 16);
    let connection = world.monday_connection("acme").await;
    let session = world.session(&connection).await;
    let query = r#"{"query": "{ boards { id name } }"}"#;
    let refused = forward(&session, request(Method::POST, "v2", query)).await;
    assert!(matches!(refused, Err(ProxyError::ResponseTooLarge)), "{refused:?}");
}

crate::on_both_stores!(
    monday_graphql_is_forwarded_with_safe_headers_only,
    monday_refuses_other_paths_and_methods_without_calling,
    google_calendar_paths_are_forwarded_and_budgeted,
    an_answer_over_the_limit_is_not_passed_back,
);
