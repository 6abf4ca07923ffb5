//! Fake Google Calendar API: who gets in — token errors, injected failures and latency, the
//! per-user quota, and users kept apart.

use super::{error_reason, fake, get, ids, list_all, ADA, BOB, EVENTS, FULL, LIST, READONLY};
use patchbay_testkit::fakes::google::{ApiFailure, EventSpec};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn calendar_rejects_bad_expired_and_underscoped_tokens() {
    let (google, token) = fake().await;
    let bad = get(&google, &token.replace("ya29", "ya30"), EVENTS, &[]).await;
    let expected = json!({ "error": { "errors": [{ "domain": "global", "reason": "authError", "message": "Invalid Credentials",
        "locationType": "header", "location": "Authorization" }], "code": 401, "message": "Invalid Credentials" } });
    assert_eq!((bad.status, bad.body), (401, expected));
    let openid_only = google.issue_access_token(ADA, &["openid", "email"]);
    let underscoped = get(&google, &openid_only, LIST, &[]).await;
    assert_eq!((underscoped.status, error_reason(&underscoped.body)), (403, "insufficientPermissions"));

    assert_eq!(get(&google, &token, LIST, &[]).await.status, 200);
    google.expire_access_tokens();
    let expired = get(&google, &token, LIST, &[]).await;
    assert_eq!((expired.status, error_reason(&expired.body)), (401, "authError"));
}

#[tokio::test]
async fn calendar_forced_failures_answer_in_order_then_the_api_recovers() {
    let (google, token) = fake().await;
    google.fail_calendar_api(ApiFailure::Server(503), 1);
    google.fail_calendar_api(ApiFailure::TooManyRequests { retry_after: Some(7) }, 1);
    google.fail_calendar_api(ApiFailure::RateLimitExceeded, 1);
    google.fail_calendar_api(ApiFailure::UserRateLimitExceeded, 1);
    google.set_calendar_latency(Duration::from_millis(30));

    let began = Instant::now();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let answer = get(&google, &token, EVENTS, &[]).await;
        seen.push((answer.status, error_reason(&answer.body).to_owned(), answer.retry_after));
    }

    let s = |status: u16, reason: &str, retry: Option<&str>| (status, reason.to_owned(), retry.map(str::to_owned));
    let expected = [
        s(503, "backendError", None),
        s(429, "rateLimitExceeded", Some("7")),
        s(403, "rateLimitExceeded", None),
        s(403, "userRateLimitExceeded", None),
        s(200, "", None),
    ];
    assert_eq!(seen, expected);
    assert!(began.elapsed() >= Duration::from_millis(150), "every request waited the injected latency");
    assert_eq!((google.api_calls(), google.rate_limited()), (5, 3));
}

#[tokio::test]
async fn calendar_per_user_quota_counts_a_minute_of_the_fake_clock() {
    let (google, ada) = fake().await;
    let bob = google.issue_access_token(BOB, &[READONLY]);
    google.set_calendar_user_quota(Some(3));

    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(&google, &ada, LIST, &[]).await.status);
    }
    let limited = get(&google, &ada, EVENTS, &[]).await;
    assert_eq!(statuses, [200, 200, 200, 403]);
    assert_eq!((limited.status, error_reason(&limited.body)), (403, "userRateLimitExceeded"));
    assert_eq!(get(&google, &bob, LIST, &[]).await.status, 200, "the quota is per user");

    google.advance_clock(Duration::from_secs(61));
    assert_eq!(get(&google, &ada, LIST, &[]).await.status, 200, "a minute later the window is free");
    assert_eq!(google.rate_limited(), 2);
    google.set_calendar_user_quota(None);
}

#[tokio::test]
async fn calendar_per_user_quota_window_can_be_shortened_and_every_verdict_is_logged() {
    let (google, ada) = fake().await;
    google.set_calendar_user_quota(Some(2));
    google.set_calendar_quota_window(Duration::from_secs(2));

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(get(&google, &ada, LIST, &[]).await.status);
    }
    google.advance_clock(Duration::from_millis(1_500));
    statuses.push(get(&google, &ada, LIST, &[]).await.status);
    google.advance_clock(Duration::from_millis(600));
    statuses.push(get(&google, &ada, LIST, &[]).await.status);

    assert_eq!(statuses, [200, 200, 403, 403, 200], "the window is 2 s of the fake's clock");
    let log = google.quota_log();
    assert_eq!(log.iter().map(|r| r.admitted).collect::<Vec<_>>(), [true, true, false, false, true]);
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at), "oldest first");
    assert!(log.iter().all(|r| r.sub == log[0].sub));
    let span = log[4].at.duration_since(log[0].at).unwrap();
    assert!(span >= Duration::from_millis(2_100), "{span:?}");
}

#[tokio::test]
async fn calendar_users_are_isolated() {
    let (google, ada) = fake().await;
    let bob = google.issue_access_token(BOB, &[READONLY]);
    google.add_calendar(ADA, "ada-team@group.calendar.google.com", "Ada's team");
    let ada_event = google.insert_event(ADA, "primary", EventSpec::all_day("ada", "2025-03-01", "2025-03-02"));
    let bob_event = google.insert_event(BOB, "primary", EventSpec::all_day("bob", "2025-03-01", "2025-03-02"));

    let (ada_pages, ada_sync) = list_all(&google, &ada, EVENTS, &FULL).await;
    let (bob_pages, _) = list_all(&google, &bob, EVENTS, &FULL).await;
    assert_eq!(ids(&ada_pages.concat()), [ada_event]);
    assert_eq!(ids(&bob_pages.concat()), [bob_event]);
    let (bob_list, _) = list_all(&google, &bob, LIST, &[]).await;
    assert_eq!(ids(&bob_list.concat()), [BOB]);
    assert_eq!(bob_list[0][0]["primary"], true);
    let foreign = get(&google, &bob, "calendars/ada-team%40group.calendar.google.com/events", &[]).await;
    assert_eq!((foreign.status, error_reason(&foreign.body)), (404, "notFound"));
    let stolen = get(&google, &bob, EVENTS, &[("syncToken", &ada_sync)]).await;
    assert_eq!(stolen.status, 410, "a sync token belongs to its user");
}
