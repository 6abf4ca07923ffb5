//! One provider call through the session: circuit breakers (only transient failures count),
//! rate limits held for every caller, and the budget wait that turns into a yield.

use crate::support::World;
use patchbay_store::{BreakerState, BudgetStore};
use patchbay_sync::breaker::connection_key;
use patchbay_sync::call::{ApiRequest, Session};
use patchbay_sync::SyncError;
use patchbay_testkit::fakes::google::ApiFailure;
use reqwest::Method;
use std::time::Duration;

on_both_stores!(
    sustained_server_errors_open_the_breaker_and_a_successful_probe_closes_it,
    rate_limits_do_not_count_toward_the_breaker,
    a_retry_after_holds_the_budget_for_every_caller,
    a_budget_too_far_away_is_a_rate_limit_not_a_wait,
);

fn calendar_list(world: &World, session: &Session) -> ApiRequest {
    ApiRequest {
        method: Method::GET,
        url: world.deps.settings.google_api_url.join("calendar/v3/users/me/calendarList").unwrap(),
        headers: vec![],
        body: None,
        spend: session.google_spend(),
    }
}

async fn breaker_state(world: &World, key: &str) -> (BreakerState, i32) {
    let store: &dyn BudgetStore = &*world.store;
    store.breaker(key).await.unwrap().map_or((BreakerState::Closed, 0), |b| (b.state, b.consecutive_failures))
}

async fn sustained_server_errors_open_the_breaker_and_a_successful_probe_closes_it(mut world: World) {
    world.tune(|s| {
        s.breaker.failure_threshold = 3;
        s.breaker.base_cooldown_ms = 300;
    });
    let conn = world.google_connection("org:breaker", "breaker-user").await;
    let session = world.session(&conn).await;
    let request = calendar_list(&world, &session);
    world.google.fail_calendar_api(ApiFailure::Server(503), 3);
    for n in 1..=3 {
        let error = session.call(&request).await.expect_err("a 503 fails the call");
        assert!(matches!(error, SyncError::Transient(_)), "call {n}: a 503 is transient, got {error:?}");
    }
    assert_eq!(breaker_state(&world, &connection_key(conn.id)).await, (BreakerState::Open, 3));

    let calls = world.google.api_calls();
    let error = session.call(&request).await.expect_err("an open breaker refuses");
    assert!(matches!(error, SyncError::CircuitOpen(_)), "refused by the breaker, got {error:?}");
    assert_eq!(world.google.api_calls(), calls, "an open breaker makes no provider call");

    tokio::time::sleep(Duration::from_millis(350)).await;
    session.call(&request).await.expect("the probe after the cooldown succeeds");
    assert_eq!(breaker_state(&world, &connection_key(conn.id)).await, (BreakerState::Closed, 0));
    session.call(&request).await.expect("a closed breaker lets calls through");
}

async fn rate_limits_do_not_count_toward_the_breaker(mut world: World) {
    world.tune(|s| s.breaker.failure_threshold = 2);
    let conn = world.google_connection("org:rate", "rate-user").await;
    let session = world.session(&conn).await;
    let request = calendar_list(&world, &session);
    world.google.fail_calendar_api(ApiFailure::UserRateLimitExceeded, 1);
    world.google.fail_calendar_api(ApiFailure::RateLimitExceeded, 1);
    world.google.fail_calendar_api(ApiFailure::TooManyRequests { retry_after: Some(1) }, 1);
    for _ in 0..3 {
        let error = session.call(&request).await.expect_err("a rate limit fails the call");
        assert!(matches!(error, SyncError::RateLimited(_)), "a rate limit, got {error:?}");
    }
    assert_eq!(breaker_state(&world, &connection_key(conn.id)).await, (BreakerState::Closed, 0));
}

async fn a_retry_after_holds_the_budget_for_every_caller(mut world: World) {
    world.tune(|s| s.max_budget_wait = Duration::from_millis(200));
    let conn = world.google_connection("org:retry-after", "retry-user").await;
    let session = world.session(&conn).await;
    let request = calendar_list(&world, &session);
    world.google.fail_calendar_api(ApiFailure::TooManyRequests { retry_after: Some(30) }, 1);
    let started = chrono::Utc::now();
    let Err(SyncError::RateLimited(until)) = session.call(&request).await else { panic!("a 429 is a rate limit") };
    assert!(until >= started + chrono::Duration::seconds(29), "Retry-After: 30 is honoured");

    // Another session of the same Google user (another run, another instance) waits too.
    let calls = world.google.api_calls();
    let other = world.session(&conn).await;
    let Err(SyncError::RateLimited(again)) = other.call(&request).await else { panic!("the budget is held") };
    assert!(again >= started + chrono::Duration::seconds(29), "held until the provider's time");
    assert_eq!(world.google.api_calls(), calls, "no call is made while the provider said wait");
}

async fn a_budget_too_far_away_is_a_rate_limit_not_a_wait(mut world: World) {
    world.tune(|s| {
        s.google_user_per_minute = 20;
        s.max_budget_wait = Duration::from_millis(100);
    });
    let conn = world.google_connection("org:budget", "budget-user").await;
    let session = world.session(&conn).await;
    let request = calendar_list(&world, &session);
    let started = std::time::Instant::now();
    let mut admitted = 0;
    let until = loop {
        match session.call(&request).await {
            Ok(_) => admitted += 1,
            Err(SyncError::RateLimited(until)) => break until,
            Err(other) => panic!("only the budget refuses, got {other:?}"),
        }
        assert!(admitted < 20, "a budget of 20/min cannot admit 20 calls at once");
    };
    assert!(admitted >= 1, "the first call is admitted");
    assert!(started.elapsed() < Duration::from_secs(5), "the session did not wait past its cap");
    assert!(until > chrono::Utc::now(), "the refusal names a future time");
    assert_eq!(world.google.api_calls(), admitted, "every admitted call reached the fake, no refused one did");
    assert_eq!(world.google.rate_limited(), 0, "the fake never had to refuse");
}
