//! monday's errors as the engine and the client see them: application errors with HTTP 200 in
//! the current, legacy and transitional shapes, and the complexity budget running out.

use super::{board, sync, BOARD};
use crate::support::World;
use patchbay_sync::{monday, SyncError};
use patchbay_testkit::fakes::monday::{ApiLimits, ErrorShape};
use serde_json::{json, Value};
use std::time::Duration;

const SHAPES: [ErrorShape; 3] = [ErrorShape::Current, ErrorShape::Legacy, ErrorShape::Transitional];

async fn application_errors_with_http_200_are_read_in_every_shape(world: World) {
    let conn = world.monday_connection("acme").await;
    let session = world.session(&conn).await;
    let next = "query ($c: String!) { next_items_page(cursor: $c, limit: 1) { cursor } }";
    let many: Vec<String> = (1..=101).map(|n| n.to_string()).collect();
    for shape in SHAPES {
        world.monday.set_error_shape(shape);
        let spend = session.monday_spend(false, 20);
        let bad_cursor = monday::client::query(&session, spend.clone(), next, json!({ "c": "nope" })).await;
        match bad_cursor {
            Err(SyncError::Rejected { code, message }) => {
                assert_eq!(code, "InvalidCursorException", "{shape:?}");
                assert!(!message.contains("nope"), "{shape:?}: the message echoes no value: {message}");
            }
            other => panic!("{shape:?}: an unknown cursor is a refusal, got {other:?}"),
        }
        let too_many = "query ($ids: [ID!]!) { items(ids: $ids) { id } }";
        let refused = monday::client::query(&session, spend, too_many, json!({ "ids": many })).await;
        assert!(
            matches!(&refused, Err(SyncError::Rejected { code, .. }) if code == "ItemsLimitationException"),
            "{shape:?}: {refused:?}"
        );
    }
}

/// The daily limit (HTTP 200) in one shape: a wait until the next UTC midnight.
async fn daily_limit_in(world: World, shape: ErrorShape) {
    let conn = world.monday_connection("acme").await;
    world.monday.set_api_limits(ApiLimits { daily_calls: 0, ..ApiLimits::default() });
    world.monday.set_error_shape(shape);
    let session = world.session(&conn).await;

    let answer = monday::client::query(&session, session.monday_spend(false, 1), "{ me { id } }", Value::Null).await;

    let Err(SyncError::RateLimited(until)) = answer else { panic!("{shape:?}: expected a wait, got {answer:?}") };
    let midnight =
        (chrono::Utc::now() + chrono::Duration::days(1)).date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    assert!((until - midnight).num_seconds().abs() <= 2, "{shape:?}: waits until {until}, not {midnight}");
    assert_eq!(world.monday.rate_limited("DAILY_LIMIT_EXCEEDED"), 1);
}

async fn the_daily_limit_with_http_200_is_a_rate_limit_in_the_current_shape(world: World) {
    daily_limit_in(world, ErrorShape::Current).await;
}

async fn the_daily_limit_with_http_200_is_a_rate_limit_in_the_legacy_shape(world: World) {
    daily_limit_in(world, ErrorShape::Legacy).await;
}

async fn an_exhausted_complexity_budget_waits_as_long_as_monday_says(mut world: World) {
    world.tune(|s| s.max_budget_wait = Duration::ZERO);
    let conn = world.monday_connection("acme").await;
    board(&world, BOARD, "Roadmap");
    world.monday.set_api_limits(ApiLimits { read_budget: 1_000, ..ApiLimits::default() });

    let started = chrono::Utc::now();
    let outcome = sync(&world, &conn).await;

    let Err(SyncError::RateLimited(until)) = outcome else { panic!("expected a wait, got {outcome:?}") };
    let wait = (until - started).num_seconds();
    assert!((55..=61).contains(&wait), "monday's retry_in_seconds (60) is honoured, got {wait}s");
    assert_eq!(world.monday.rate_limited("COMPLEXITY_BUDGET_EXHAUSTED"), 1);
    // The budget is held for every instance: the next call waits without asking monday.
    let calls = world.monday.graphql_calls();
    assert!(matches!(sync(&world, &conn).await, Err(SyncError::RateLimited(_))));
    assert_eq!(world.monday.graphql_calls(), calls, "the held budget refused before any call");
}

async fn a_legacy_complexity_exception_with_http_200_is_a_rate_limit(mut world: World) {
    world.tune(|s| s.max_budget_wait = Duration::ZERO);
    let conn = world.monday_connection("acme").await;
    board(&world, BOARD, "Roadmap");
    world.monday.set_api_limits(ApiLimits { read_budget: 1_000, ..ApiLimits::default() });
    world.monday.set_budget_exhausted_status(200);
    world.monday.set_error_shape(ErrorShape::Legacy);

    let started = chrono::Utc::now();
    let outcome = sync(&world, &conn).await;

    let Err(SyncError::RateLimited(until)) = outcome else { panic!("expected a wait, got {outcome:?}") };
    assert!((55..=61).contains(&(until - started).num_seconds()), "reset in 60 seconds is honoured");
}

on_both_stores!(
    application_errors_with_http_200_are_read_in_every_shape,
    the_daily_limit_with_http_200_is_a_rate_limit_in_the_current_shape,
    the_daily_limit_with_http_200_is_a_rate_limit_in_the_legacy_shape,
    an_exhausted_complexity_budget_waits_as_long_as_monday_says,
    a_legacy_complexity_exception_with_http_200_is_a_rate_limit,
);
