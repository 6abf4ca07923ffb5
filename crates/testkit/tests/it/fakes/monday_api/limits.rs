//! Fake monday's limits and failure switches: the complexity budget, the minute, concurrency and
//! daily limits, the three error shapes, injected 5xx and latency.

use super::{code, fake, gql, BOARD};
use patchbay_testkit::fakes::monday::{ApiLimits, ErrorShape};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PRICED: &str = "{ complexity { before after query reset_in_x_seconds } boards(limit: 5) { id name } }";

#[tokio::test]
async fn monday_api_complexity_is_charged_and_an_exhausted_budget_recovers_when_the_window_resets() {
    let (monday, token) = fake().await;
    monday.set_api_limits(ApiLimits { read_budget: 50, ..ApiLimits::default() });

    let (_, _, first) = gql(&monday, &token, PRICED, Value::Null).await;
    let (_, _, second) = gql(&monday, &token, PRICED, Value::Null).await;
    let (status, headers, exhausted) = gql(&monday, &token, PRICED, Value::Null).await;
    monday.set_budget_exhausted_status(200);
    let (status_200, _, exhausted_200) = gql(&monday, &token, PRICED, Value::Null).await;
    monday.advance_clock(Duration::from_secs(60));
    let (_, _, recovered) = gql(&monday, &token, PRICED, Value::Null).await;

    // boards(limit: 5) { id name } costs 10 + 5 × 2 (cost.rs); complexity itself is free.
    assert_eq!(first["data"]["complexity"]["query"], 20, "{first}");
    assert_eq!(
        (&first["data"]["complexity"]["before"], &first["data"]["complexity"]["after"]),
        (&json!(50), &json!(30))
    );
    assert_eq!(second["data"]["complexity"]["after"], 10);
    let reset = first["data"]["complexity"]["reset_in_x_seconds"].as_u64().unwrap();
    assert!((1..=60).contains(&reset), "{first}");
    assert_eq!(status, 429);
    assert_eq!(code(&exhausted), "COMPLEXITY_BUDGET_EXHAUSTED", "{exhausted}");
    let retry = exhausted["errors"][0]["extensions"]["retry_in_seconds"].as_u64().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(headers["retry-after"].to_str().unwrap(), retry.to_string());
    assert!(exhausted.get("data").is_none_or(Value::is_null), "a refused query runs nothing: {exhausted}");
    assert_eq!(status_200, 200);
    assert_eq!(code(&exhausted_200), "COMPLEXITY_BUDGET_EXHAUSTED");
    assert_eq!(recovered["data"]["complexity"]["before"], 50, "{recovered}");
    assert_eq!(monday.complexity_spent(), 60);
    assert_eq!(monday.rate_limited("COMPLEXITY_BUDGET_EXHAUSTED"), 2);
}

#[tokio::test]
async fn monday_api_a_shortened_window_resets_sooner_and_the_windows_and_refusals_are_recorded() {
    let (monday, token) = fake().await;
    let window = Duration::from_secs(2);
    monday.set_api_limits(ApiLimits { read_budget: 50, window, ..ApiLimits::default() });

    let (_, headers, first) = gql(&monday, &token, PRICED, Value::Null).await;
    gql(&monday, &token, PRICED, Value::Null).await;
    let (status, _, exhausted) = gql(&monday, &token, PRICED, Value::Null).await;
    monday.advance_clock(window);
    let (_, _, recovered) = gql(&monday, &token, PRICED, Value::Null).await;

    assert!(headers["ratelimit-policy"].to_str().unwrap().contains("\"complexityMinute\";q=50;w=2"), "{headers:?}");
    let reset = first["data"]["complexity"]["reset_in_x_seconds"].as_u64().unwrap();
    assert!((1..=2).contains(&reset), "{first}");
    assert_eq!(status, 429);
    let retry = exhausted["errors"][0]["extensions"]["retry_in_seconds"].as_u64().unwrap();
    assert!((1..=2).contains(&retry), "{exhausted}");
    assert_eq!(recovered["data"]["complexity"]["before"], 50, "{recovered}");
    let windows = monday.read_windows();
    assert_eq!(windows.iter().map(|w| (w.used, w.limit)).collect::<Vec<_>>(), [(40, 50), (20, 50)]);
    assert!(windows[1].opened.duration_since(windows[0].opened).unwrap() >= window);
    let refusals = monday.refusals();
    assert_eq!(refusals.iter().map(|r| r.code).collect::<Vec<_>>(), ["COMPLEXITY_BUDGET_EXHAUSTED"]);
    assert!(refusals[0].at >= windows[0].opened && refusals[0].at < windows[1].opened);
}

#[tokio::test]
async fn monday_api_writes_have_their_own_budget() {
    let (monday, token) = fake().await;
    let item = monday.create_item(BOARD, "topics", "T");
    monday.set_api_limits(ApiLimits { read_budget: 1, ..ApiLimits::default() });
    let mutation = format!(
        "mutation {{ change_multiple_column_values(board_id: {BOARD}, item_id: {item}, column_values: \"{{\\\"text0\\\":\\\"x\\\"}}\") {{ id }} complexity {{ query after }} }}"
    );

    let (_, _, read) = gql(&monday, &token, PRICED, Value::Null).await;
    let (status, _, write) = gql(&monday, &token, &mutation, Value::Null).await;

    assert_eq!(code(&read), "COMPLEXITY_BUDGET_EXHAUSTED");
    assert_eq!(status, 200, "{write}");
    assert_eq!(write["data"]["complexity"], json!({"query": 1001, "after": 5_000_000 - 1001}));
}

#[tokio::test]
async fn monday_api_the_minute_limit_answers_429_with_retry_after() {
    let (monday, token) = fake().await;
    monday.set_api_limits(ApiLimits { per_minute: 3, ..ApiLimits::default() });

    for _ in 0..3 {
        assert_eq!(gql(&monday, &token, "{ me { id } }", Value::Null).await.0, 200);
    }
    let (status, headers, limited) = gql(&monday, &token, "{ me { id } }", Value::Null).await;
    monday.set_error_shape(ErrorShape::Legacy);
    let (_, _, legacy) = gql(&monday, &token, "{ me { id } }", Value::Null).await;
    monday.advance_clock(Duration::from_secs(60));
    let (after, _, _) = gql(&monday, &token, "{ me { id } }", Value::Null).await;

    assert_eq!(status, 429);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(code(&limited), "RATE_LIMIT_EXCEEDED", "{limited}");
    assert_eq!(limited["errors"][0]["extensions"]["retry_in_seconds"], retry);
    assert!(headers["ratelimit"].to_str().unwrap().contains("\"minuteRate\";r=0"), "{:?}", headers["ratelimit"]);
    assert_eq!(legacy["error_message"], "Rate Limit Exceeded.");
    assert_eq!(legacy["status_code"], 429);
    assert_eq!(after, 200);
    assert_eq!(monday.rate_limited("RATE_LIMIT_EXCEEDED"), 2);
}

#[tokio::test]
async fn monday_api_the_concurrency_limit_refuses_a_call_while_another_is_in_flight() {
    let (monday, token) = fake().await;
    monday.set_api_limits(ApiLimits { concurrency: 1, ..ApiLimits::default() });
    let gate = monday.hold_api_calls();
    let (held_monday, held_token) = (monday.clone(), token.clone());
    let held = tokio::spawn(async move { gql(&held_monday, &held_token, "{ me { id } }", Value::Null).await.0 });
    gate.arrived().await;

    let (status, headers, refused) = gql(&monday, &token, "{ me { id } }", Value::Null).await;
    gate.release();

    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(code(&refused), "maxConcurrencyExceeded", "{refused}");
    assert_eq!(held.await.unwrap(), 200, "the held call completes once released");
    assert_eq!(gql(&monday, &token, "{ me { id } }", Value::Null).await.0, 200, "the slot was freed");
}

#[tokio::test]
async fn monday_api_the_daily_limit_counts_probes_as_a_tenth_and_resets_at_midnight_utc() {
    let (monday, token) = fake().await;
    monday.set_api_limits(ApiLimits { daily_calls: 1, ..ApiLimits::default() });

    for _ in 0..5 {
        assert_eq!(gql(&monday, &token, "{ complexity { before } }", Value::Null).await.0, 200);
    }
    let (_, _, counted) = gql(&monday, &token, "{ me { id } }", Value::Null).await;
    let (status, _, over) = gql(&monday, &token, "{ me { id } }", Value::Null).await;
    monday.advance_clock(Duration::from_secs(86_400));
    let (_, _, tomorrow) = gql(&monday, &token, "{ me { id } }", Value::Null).await;

    assert_eq!(counted["data"]["me"]["id"], "501", "five probes are half a call: {counted}");
    assert_eq!(status, 200);
    assert_eq!(code(&over), "DAILY_LIMIT_EXCEEDED", "{over}");
    assert!(over["errors"][0]["extensions"]["retry_in_seconds"].as_u64().unwrap() <= 86_400);
    assert_eq!(tomorrow["data"]["me"]["id"], "501");
}

#[tokio::test]
async fn monday_api_application_errors_come_in_the_current_legacy_and_transitional_shapes() {
    let (monday, token) = fake().await;
    let item = monday.create_item(BOARD, "topics", "T");
    let mutation = format!(
        "mutation {{ change_multiple_column_values(board_id: {BOARD}, item_id: {item}, column_values: \"{{\\\"nope\\\":1}}\") {{ id }} }}"
    );
    let mut bodies = Vec::new();
    for shape in [ErrorShape::Current, ErrorShape::Legacy, ErrorShape::Transitional] {
        monday.set_error_shape(shape);
        let (status, _, body) = gql(&monday, &token, &mutation, Value::Null).await;
        assert_eq!(status, 200, "{shape:?}: {body}");
        bodies.push(body);
    }
    monday.set_api_limits(ApiLimits { read_budget: 1, ..ApiLimits::default() });
    let (_, _, complexity) = gql(&monday, &token, PRICED, Value::Null).await;

    let [current, legacy, transitional] = <[Value; 3]>::try_from(bodies).unwrap();
    assert_eq!(current["errors"][0]["message"], "This column ID doesn't exist for the board");
    assert_eq!(current["errors"][0]["extensions"]["code"], "InvalidColumnIdException");
    assert_eq!(current["errors"][0]["extensions"]["status_code"], 200);
    assert_eq!(current["errors"][0]["path"], json!(["change_multiple_column_values"]));
    assert!(current.get("error_code").is_none());
    assert_eq!(legacy["error_code"], "InvalidColumnIdException", "{legacy}");
    assert_eq!(legacy["error_message"], "This column ID doesn't exist for the board");
    assert_eq!(legacy["status_code"], 200);
    assert_eq!(legacy["error_data"]["column_id"], "nope");
    assert!(legacy.get("errors").is_none(), "{legacy}");
    assert_eq!(legacy["account_id"], 77);
    assert_eq!(transitional["error_code"], "InvalidColumnIdException");
    assert_eq!(transitional["errors"][0]["extensions"]["code"], "InvalidColumnIdException");
    assert_eq!(complexity["error_code"], "ComplexityException", "{complexity}");
    assert!(complexity["error_message"].as_str().unwrap().starts_with("Complexity budget exhausted, query cost 20"));
}

#[tokio::test]
async fn monday_api_injected_failures_and_latency_apply_to_the_next_calls() {
    let (monday, token) = fake().await;
    monday.fail_api(503, 2);

    let first = gql(&monday, &token, "{ me { id } }", Value::Null).await;
    let second = gql(&monday, &token, "{ me { id } }", Value::Null).await;
    monday.set_api_latency(Duration::from_millis(100));
    let started = Instant::now();
    let third = gql(&monday, &token, "{ me { id } }", Value::Null).await;

    assert_eq!((first.0, second.0, third.0), (503, 503, 200));
    assert_eq!(first.2["status_code"], 503);
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(monday.graphql_calls(), 3);
}
