//! Fake Google Calendar API v3, seen through real HTTP: paging with short and empty pages, sync
//! tokens and their invalidation, errors in Google's shape, injected failures, the per-user
//! quota, users kept apart, and the fake's state view matching a full sync.

use super::http;
use patchbay_testkit::fakes::google::{EventSpec, EventTime};
use patchbay_testkit::fakes::FakeGoogle;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const READONLY: &str = "https://www.googleapis.com/auth/calendar.readonly";
const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";
const EVENTS: &str = "calendars/primary/events";
const LIST: &str = "users/me/calendarList";

mod access;

/// What a full sync sends besides paging (architecture.md §4.3).
const FULL: [(&str, &str); 3] =
    [("singleEvents", "false"), ("showDeleted", "true"), ("timeMin", "2020-01-01T00:00:00Z")];

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

async fn fake() -> (FakeGoogle, String) {
    let google = FakeGoogle::start().await;
    google.add_user("1001", ADA);
    google.add_user("1002", BOB);
    let token = google.issue_access_token(ADA, &[READONLY]);
    (google, token)
}

async fn get(google: &FakeGoogle, token: &str, path: &str, query: &[(&str, &str)]) -> Answer {
    let url = google.calendar_api_url().join(path).unwrap();
    let response = http().get(url).bearer_auth(token).query(query).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    Answer { status, retry_after, body: response.json().await.unwrap() }
}

/// Follows `nextPageToken` from `query`; returns every page and the final `nextSyncToken`,
/// asserting the tokens' rules on the way.
async fn list_all(google: &FakeGoogle, token: &str, path: &str, query: &[(&str, &str)]) -> (Vec<Vec<Value>>, String) {
    let mut pages = Vec::new();
    let mut page_token: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        if let Some(page_token) = &page_token {
            q.push(("pageToken", page_token));
        }
        let answer = get(google, token, path, &q).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let body = answer.body;
        pages.push(body["items"].as_array().expect("items").clone());
        match (body.get("nextPageToken"), body.get("nextSyncToken")) {
            (Some(next), None) => page_token = Some(next.as_str().unwrap().to_owned()),
            (None, Some(sync)) => return (pages, sync.as_str().unwrap().to_owned()),
            other => panic!("a page carries exactly one of nextPageToken and nextSyncToken: {other:?}"),
        }
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

fn keys(item: &Value) -> BTreeSet<String> {
    item.as_object().unwrap().keys().cloned().collect()
}

fn error_reason(body: &Value) -> &str {
    body["error"]["errors"][0]["reason"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn calendar_full_sync_pages_through_short_and_empty_pages_and_ends_with_a_sync_token() {
    let (google, token) = fake().await;
    let inserted: Vec<String> = (0..5)
        .map(|i| {
            let start = format!("2025-03-0{}T09:00:00Z", i + 1);
            let end = format!("2025-03-0{}T10:00:00Z", i + 1);
            google.insert_event(ADA, "primary", EventSpec::timed(&format!("e{i}"), &start, &end))
        })
        .collect();
    google.set_page_plan(&[2, 0, 1]);

    let query = [FULL.as_slice(), &[("maxResults", "2")]].concat();
    let (pages, _sync) = list_all(&google, &token, EVENTS, &query).await;

    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 0, 1, 2], "short, empty, short, then full pages");
    assert_eq!(ids(&pages.concat()), inserted, "every event once, in order");
    assert_eq!(google.api_calls_to("/calendar/v3/calendars/primary/events"), 4);
}

#[tokio::test]
async fn calendar_max_results_defaults_to_250_and_is_capped_at_2500() {
    let (google, token) = fake().await;
    for i in 0..2600 {
        google.insert_event(ADA, "primary", EventSpec::all_day(&format!("day {i}"), "2025-01-01", "2025-01-02"));
    }
    let first = get(&google, &token, EVENTS, &[]).await.body;
    assert_eq!(first["items"].as_array().unwrap().len(), 250);
    let capped = get(&google, &token, EVENTS, &[("maxResults", "5000")]).await.body;
    assert_eq!(capped["items"].as_array().unwrap().len(), 2500);
    assert!(capped.get("nextPageToken").is_some() && capped.get("nextSyncToken").is_none());
    let zero = get(&google, &token, EVENTS, &[("maxResults", "0")]).await;
    assert_eq!(zero.status, 400, "{}", zero.body);
}

#[tokio::test]
async fn a_bulk_insert_pages_back_every_event_once_in_insertion_order() {
    let (google, token) = fake().await;
    let specs = (0..5100).map(|i| EventSpec::all_day(&format!("bulk {i}"), "2025-01-01", "2025-01-02"));
    let inserted = google.insert_events(ADA, "primary", specs);

    let query = [FULL.as_slice(), &[("maxResults", "2500")]].concat();
    let (pages, _sync) = list_all(&google, &token, EVENTS, &query).await;

    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2500, 2500, 100]);
    assert_eq!(ids(&pages.concat()), inserted, "every event once, in order");
}

#[tokio::test]
async fn calendar_incremental_sync_returns_exactly_the_changes() {
    let (google, token) = fake().await;
    let kept =
        google.insert_event(ADA, "primary", EventSpec::timed("kept", "2025-03-01T09:00:00Z", "2025-03-01T10:00:00Z"));
    let changed = google.insert_event(ADA, "primary", EventSpec::all_day("changed", "2025-03-02", "2025-03-03"));
    let deleted =
        google.insert_event(ADA, "primary", EventSpec::timed("gone", "2025-03-04T09:00:00Z", "2025-03-04T10:00:00Z"));
    let series = EventSpec::new(
        "standup",
        EventTime::zoned("2025-03-03T09:00:00+01:00", "Europe/Berlin"),
        EventTime::zoned("2025-03-03T09:15:00+01:00", "Europe/Berlin"),
    )
    .recurring("RRULE:FREQ=DAILY;COUNT=10");
    let master = google.insert_event(ADA, "primary", series);
    let moved_spec = EventSpec::new(
        "standup (moved)",
        EventTime::zoned("2025-03-04T11:00:00+01:00", "Europe/Berlin"),
        EventTime::zoned("2025-03-04T11:15:00+01:00", "Europe/Berlin"),
    );
    let moved = google.modify_instance(
        ADA,
        "primary",
        &master,
        EventTime::zoned("2025-03-04T09:00:00+01:00", "Europe/Berlin"),
        moved_spec,
    );
    let (pages, sync) = list_all(&google, &token, EVENTS, &FULL).await;
    let full = pages.concat();
    assert_eq!(ids(&full), [kept.as_str(), &changed, &deleted, &master, &moved]);
    assert_eq!(full[3]["recurrence"], json!(["RRULE:FREQ=DAILY;COUNT=10"]));
    assert_eq!(full[4]["recurringEventId"], json!(master));
    assert_eq!(full[4]["originalStartTime"]["dateTime"], "2025-03-04T09:00:00+01:00");
    assert_eq!(moved, format!("{master}_20250304T080000Z"), "instance ids carry the original start in UTC");

    google.advance_clock(Duration::from_secs(60));
    google.update_event(ADA, "primary", &changed, |e| e.summary = "changed!".into());
    google.delete_event(ADA, "primary", &deleted);
    let cancelled =
        google.cancel_instance(ADA, "primary", &master, EventTime::zoned("2025-03-06T09:00:00+01:00", "Europe/Berlin"));
    let added = google.insert_event(ADA, "primary", EventSpec::all_day("new", "2025-03-09", "2025-03-10"));

    // Paged with maxResults=2: the identical request plus pageToken until the sync token.
    let (pages, next_sync) =
        list_all(&google, &token, EVENTS, &[("syncToken", sync.as_str()), ("maxResults", "2")]).await;
    let changes = pages.concat();
    assert_eq!(pages.len(), 2);
    assert_eq!(ids(&changes), [changed.as_str(), &deleted, &cancelled, &added], "exactly the changes, in order");
    assert_eq!(changes[0]["summary"], "changed!");
    assert_ne!(changes[0]["etag"], full[1]["etag"], "the etag moves with every update");
    assert!(changes[0]["updated"].as_str() > full[1]["updated"].as_str());
    assert_eq!(
        changes[1],
        json!({ "kind": "calendar#event", "etag": changes[1]["etag"], "id": deleted, "status": "cancelled" })
    );
    let instance_keys = ["etag", "id", "kind", "originalStartTime", "recurringEventId", "status"];
    assert_eq!(keys(&changes[2]), instance_keys.iter().map(|k| (*k).to_owned()).collect());
    assert_eq!(changes[2]["status"], "cancelled");
    assert_eq!(changes[2]["recurringEventId"], json!(master));
    assert_eq!(changes[2]["originalStartTime"]["dateTime"], "2025-03-06T09:00:00+01:00");

    let (quiet, _) = list_all(&google, &token, EVENTS, &[("syncToken", next_sync.as_str())]).await;
    assert_eq!(quiet.concat(), Vec::<Value>::new(), "nothing changed since");
}

#[tokio::test]
async fn calendar_sync_tokens_answer_410_after_invalidation_and_refuse_time_bounds() {
    let (google, token) = fake().await;
    google.add_calendar(ADA, "team@group.calendar.google.com", "Team");
    google.insert_event(ADA, "primary", EventSpec::all_day("a", "2025-03-01", "2025-03-02"));
    let team_path = "calendars/team%40group.calendar.google.com/events";
    let (_, primary_sync) = list_all(&google, &token, EVENTS, &FULL).await;
    let (_, team_sync) = list_all(&google, &token, team_path, &FULL).await;

    let bounded =
        get(&google, &token, EVENTS, &[("syncToken", &primary_sync), ("timeMin", "2025-01-01T00:00:00Z")]).await;
    assert_eq!((bounded.status, error_reason(&bounded.body)), (400, "invalid"), "{}", bounded.body);
    let hiding = get(&google, &token, EVENTS, &[("syncToken", &primary_sync), ("showDeleted", "false")]).await;
    assert_eq!(hiding.status, 400, "{}", hiding.body);

    google.invalidate_sync_tokens(ADA, "primary");
    let gone = get(&google, &token, EVENTS, &[("syncToken", &primary_sync)]).await;
    let message = "Sync token is no longer valid, a full sync is required.";
    let expected = json!({ "error": { "errors": [{ "domain": "calendar", "reason": "fullSyncRequired",
        "message": message, "locationType": "parameter", "location": "syncToken" }], "code": 410, "message": message } });
    assert_eq!((gone.status, gone.body), (410, expected));
    let corrupted = get(&google, &token, EVENTS, &[("syncToken", "CPjnot-a-token")]).await;
    assert_eq!(corrupted.status, 410);
    let elsewhere = get(&google, &token, EVENTS, &[("syncToken", &team_sync)]).await;
    assert_eq!(elsewhere.status, 410, "a token belongs to its calendar");
    let team = get(&google, &token, team_path, &[("syncToken", &team_sync)]).await;
    assert_eq!(team.status, 200, "other calendars keep their tokens: {}", team.body);

    let (_, fresh) = list_all(&google, &token, EVENTS, &FULL).await;
    assert_eq!(get(&google, &token, EVENTS, &[("syncToken", &fresh)]).await.status, 200, "a full sync recovers");
}

#[tokio::test]
async fn calendar_list_syncs_incrementally_with_deleted_entries() {
    let (google, token) = fake().await;
    google.add_calendar(ADA, "a@group.calendar.google.com", "A");
    google.add_calendar(ADA, "b@group.calendar.google.com", "B");
    let (pages, sync) = list_all(&google, &token, LIST, &[("maxResults", "1")]).await;
    assert_eq!(pages.len(), 3);
    assert_eq!(ids(&pages.concat()), [ADA, "a@group.calendar.google.com", "b@group.calendar.google.com"]);
    assert_eq!(pages.concat(), google.calendars(ADA), "the state view equals the listing");

    google.delete_calendar(ADA, "a@group.calendar.google.com");
    google.add_calendar(ADA, "c@group.calendar.google.com", "C");
    let (changes, _) = list_all(&google, &token, LIST, &[("syncToken", &sync)]).await;
    let changes = changes.concat();
    assert_eq!(ids(&changes), ["a@group.calendar.google.com", "c@group.calendar.google.com"]);
    assert_eq!(changes[0]["deleted"], true);
    let deleted_events = get(&google, &token, "calendars/a%40group.calendar.google.com/events", &[]).await;
    assert_eq!(deleted_events.status, 404);
    let (full, _) = list_all(&google, &token, LIST, &[]).await;
    assert_eq!(full.concat().len(), 3, "a full listing hides deleted calendars");
}

#[tokio::test]
async fn calendar_state_view_equals_what_a_full_sync_returns() {
    let (google, token) = fake().await;
    google.insert_event(
        ADA,
        "primary",
        EventSpec::timed("a", "2025-03-01T09:00:00Z", "2025-03-01T10:00:00Z").described("x"),
    );
    let gone = google.insert_event(ADA, "primary", EventSpec::all_day("b", "2025-03-02", "2025-03-03"));
    let series = EventSpec::new(
        "weekly",
        EventTime::zoned("2025-03-03T09:00:00Z", "UTC"),
        EventTime::zoned("2025-03-03T10:00:00Z", "UTC"),
    )
    .recurring("RRULE:FREQ=WEEKLY");
    let master = google.insert_event(ADA, "primary", series);
    google.modify_instance(
        ADA,
        "primary",
        &master,
        EventTime::zoned("2025-03-10T09:00:00Z", "UTC"),
        EventSpec::timed("weekly (late)", "2025-03-10T11:00:00Z", "2025-03-10T12:00:00Z"),
    );
    let cancelled = google.cancel_instance(ADA, "primary", &master, EventTime::zoned("2025-03-17T09:00:00Z", "UTC"));
    google.delete_event(ADA, "primary", &gone);

    let (live, _) = list_all(&google, &token, EVENTS, &[("singleEvents", "false")]).await;
    assert_eq!(live.concat(), google.events(ADA, "primary"));
    let (with_deleted, _) = list_all(&google, &token, EVENTS, &FULL).await;
    let shown: BTreeSet<String> = ids(&with_deleted.concat()).into_iter().collect();
    assert!(shown.contains(&gone) && shown.contains(&cancelled), "showDeleted shows cancellations too");
}

#[tokio::test]
async fn calendar_updated_min_shows_deletions_and_answers_410_when_too_old() {
    let (google, token) = fake().await;
    let old = google.insert_event(ADA, "primary", EventSpec::all_day("old", "2025-03-01", "2025-03-02"));
    let gone = google.insert_event(ADA, "primary", EventSpec::all_day("gone", "2025-03-02", "2025-03-03"));
    // Half an hour on the fake's clock (its access tokens live an hour).
    google.advance_clock(Duration::from_secs(1800));
    let since = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now() + Duration::from_secs(900));
    let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    google.delete_event(ADA, "primary", &gone);

    let (pages, _) = list_all(&google, &token, EVENTS, &[("updatedMin", since.as_str())]).await;
    assert_eq!(ids(&pages.concat()), [gone], "only what changed since, deletions included: not {old}");

    let too_old = get(&google, &token, EVENTS, &[("updatedMin", "2001-01-01T00:00:00Z")]).await;
    assert_eq!((too_old.status, error_reason(&too_old.body)), (410, "updatedMinTooLongAgo"), "{}", too_old.body);
    let range = [("timeMin", "2025-03-02T00:00:00Z"), ("timeMax", "2025-03-01T00:00:00Z")];
    let empty = get(&google, &token, EVENTS, &range).await;
    assert_eq!((empty.status, error_reason(&empty.body)), (400, "timeRangeEmpty"));
}
