//! The Google read API over HTTP, on both stores, after a real sync from the fake: keyset pages
//! that together hold every event exactly once, a `time_min`/`time_max` window, `expand=instances`
//! placing a weekly Europe/Berlin series across the 2027 daylight-saving change with its EXDATE,
//! a moved exception and a cancelled instance applied, the change feed resuming from its cursor
//! with exactly what changed, and bad queries answered 400 with problem details; and the monday
//! read API: boards with columns and groups, items in pages and by group, and its change feed.

use crate::connect::{world, World};
use crate::helpers::{json, token, Db};
use chrono::{DateTime, Duration, TimeZone, Utc};
use patchbay_testkit::fakes::google::{EventSpec, EventTime};
use patchbay_testkit::fakes::GOOGLE_SUB;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Single events, one an hour from 2027-06-01T00:00Z, 30 minutes long.
const SLOTS: i64 = 120;

fn slot_start(i: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 6, 1, 0, 0, 0).unwrap() + Duration::hours(i)
}

/// Syncs once through the API (a manual run, executed by the worker).
async fn sync(w: &World, bearer: &str, id: &str) {
    let response = w.app.client.post(w.app.url(&format!("/v1/connections/{id}/sync"))).bearer_auth(bearer).send().await;
    let status = response.unwrap().status();
    assert!(status == 202 || status == 200, "sync requested: {status}");
    assert!(w.app.run_jobs().await >= 1, "the worker ran the sync");
}

async fn get(w: &World, bearer: &str, path: &str) -> Value {
    let response = w.app.get_as(path, bearer).await;
    assert_eq!(response.status(), 200, "GET {path}");
    json(response).await
}

fn instant(event: &Value) -> DateTime<Utc> {
    let text = event["start"]["date_time"].as_str().unwrap_or_else(|| panic!("a timed start: {event}"));
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

async fn read_api(db: Db) {
    let Some(w) = world(db, "v2").await else { return };
    let fake = &w.google;
    // A weekly stand-up, 09:00 Berlin, six weeks from Monday 2027-03-15 (the clocks change on
    // Sunday 2027-03-28): the 22nd is excluded by EXDATE, the 5 April one moved to 14:00 and
    // renamed, the 12 April one cancelled.
    let master = fake.insert_event(
        GOOGLE_SUB,
        "primary",
        EventSpec::new(
            "standup",
            EventTime::zoned("2027-03-15T09:00:00+01:00", "Europe/Berlin"),
            EventTime::zoned("2027-03-15T09:15:00+01:00", "Europe/Berlin"),
        )
        .recurring("RRULE:FREQ=WEEKLY;COUNT=6")
        .recurring("EXDATE;TZID=Europe/Berlin:20270322T090000"),
    );
    fake.modify_instance(
        GOOGLE_SUB,
        "primary",
        &master,
        EventTime::zoned("2027-04-05T09:00:00+02:00", "Europe/Berlin"),
        EventSpec::new(
            "moved standup",
            EventTime::zoned("2027-04-05T14:00:00+02:00", "Europe/Berlin"),
            EventTime::zoned("2027-04-05T14:15:00+02:00", "Europe/Berlin"),
        ),
    );
    fake.cancel_instance(
        GOOGLE_SUB,
        "primary",
        &master,
        EventTime::zoned("2027-04-12T09:00:00+02:00", "Europe/Berlin"),
    );
    let slots: Vec<String> = fake.insert_events(
        GOOGLE_SUB,
        "primary",
        (0..SLOTS).map(|i| {
            let start = slot_start(i);
            EventSpec::timed(&format!("slot-{i}"), &start.to_rfc3339(), &(start + Duration::minutes(30)).to_rfc3339())
        }),
    );

    let alice = token("alice", json!({}));
    let back = w.connect(&alice, "google", json!({})).await;
    let id = back["connection_id"].to_string();
    sync(&w, &alice, &id).await;
    let calendars = get(&w, &alice, &format!("/v1/connections/{id}/google/calendars")).await;
    let calendar = calendars["data"][0]["id"].as_str().expect("the primary calendar is served").to_owned();
    let provider_id = calendars["data"][0]["provider_id"].as_str().unwrap();
    let filtered = get(&w, &alice, &format!("/v1/connections/{id}/google/calendars?provider_id={provider_id}")).await;
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1, "a provider id filter finds its calendar");
    assert_eq!(filtered["data"][0]["id"], calendar.as_str());
    let events = format!("/v1/connections/{id}/google/calendars/{calendar}/events");

    // Keyset pages of 50: every stored event once, in id order, the last page without a cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("{events}?limit=50&cursor={c}"),
            None => format!("{events}?limit=50"),
        };
        let page = get(&w, &alice, &path).await;
        pages += 1;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 50, "a page holds at most `limit` events");
        seen.extend(
            data.iter().map(|e| (e["id"].as_str().unwrap().to_owned(), e["provider_id"].as_str().unwrap().to_owned())),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging ends");
    }
    let ids: Vec<&String> = seen.iter().map(|(id, _)| id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "pages are in id order with nothing repeated");
    let provider_ids: BTreeSet<&str> = seen.iter().map(|(_, p)| p.as_str()).collect();
    for slot in &slots {
        assert!(provider_ids.contains(slot.as_str()), "slot {slot} is on some page");
    }
    assert!(provider_ids.contains(master.as_str()), "the series master is on some page");
    assert!(pages >= 3, "{} events took {pages} pages of 50", seen.len());

    // A window: the slots that overlap 2027-06-02 (starts from 24 h to 47 h; the 23 h slot ends
    // at 23:30 on the 1st).
    let (min, max) = ("2027-06-02T00:00:00Z", "2027-06-03T00:00:00Z");
    let windowed = get(&w, &alice, &format!("{events}?time_min={min}&time_max={max}&limit=500")).await;
    let in_window: BTreeSet<String> = windowed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["summary"].as_str().filter(|s| s.starts_with("slot-")).map(str::to_owned))
        .collect();
    let expected: BTreeSet<String> = (24..48).map(|i| format!("slot-{i}")).collect();
    assert_eq!(in_window, expected, "the window keeps exactly the overlapping slots");

    // The series expanded in March–April: EXDATE and the cancelled instance gone, the moved one
    // at its new time, 09:00 Berlin before and after the clocks change.
    let expanded = get(
        &w,
        &alice,
        &format!("{events}?expand=instances&time_min=2027-03-01T00:00:00Z&time_max=2027-05-01T00:00:00Z"),
    )
    .await;
    assert!(expanded["next_cursor"].is_null(), "an expanded window is one page");
    let occurrences: Vec<(DateTime<Utc>, String)> = expanded["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (instant(e), e["summary"].as_str().unwrap_or_default().to_owned()))
        .collect();
    let at = |d, h| Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap() + Duration::days(d) + Duration::hours(h);
    let expected = vec![
        (at(14, 8), "standup".to_owned()),        // 15 March, 09:00 CET
        (at(28, 7), "standup".to_owned()),        // 29 March, 09:00 CEST
        (at(35, 12), "moved standup".to_owned()), // 5 April, moved to 14:00 CEST
        (at(49, 7), "standup".to_owned()),        // 19 April
    ];
    assert_eq!(occurrences, expected, "the occurrences of the window, in start order");
    let generated = &expanded["data"][0];
    assert_eq!(
        generated["provider_id"],
        format!("{master}_20270315T080000Z"),
        "an occurrence has Google's instance id"
    );

    // The change feed: read to the end, then one deletion and one rename at the fake and a sync
    // show up after the cursor as exactly two changes, in change_seq order.
    let feed = format!("/v1/connections/{id}/google/changes");
    let mut after = 0;
    loop {
        let page = get(&w, &alice, &format!("{feed}?after={after}&limit=500")).await;
        let next = page["next_cursor"].as_i64().unwrap();
        assert!(next >= after, "the cursor never goes back");
        let done = page["data"].as_array().unwrap().len() < 500;
        after = next;
        if done {
            break;
        }
    }
    fake.delete_event(GOOGLE_SUB, "primary", &slots[0]);
    fake.update_event(GOOGLE_SUB, "primary", &slots[1], |e| e.summary = "renamed slot".into());
    sync(&w, &alice, &id).await;
    let page = get(&w, &alice, &format!("{feed}?after={after}")).await;
    let changes: Vec<(String, bool, Option<String>)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["provider_id"].as_str().unwrap().to_owned(),
                c["deleted"].as_bool().unwrap(),
                c["fields"]["summary"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let mut sorted = changes.clone();
    sorted.sort();
    let mut want = vec![(slots[0].clone(), true, None), (slots[1].clone(), false, Some("renamed slot".to_owned()))];
    want.sort();
    assert_eq!(sorted, want, "exactly the two changes follow the cursor");
    let seqs: Vec<i64> = page["data"].as_array().unwrap().iter().map(|c| c["change_seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] > after, "in change_seq order, after the cursor: {seqs:?}");

    // Bad queries: 400 with problem details naming the parameter, never a 500.
    for (query, names) in [
        ("time_min=yesterday", "time_min"),
        ("time_min=2027-06-03T00:00:00Z&time_max=2027-06-02T00:00:00Z", "time_min"),
        ("expand=instances", "time_min"),
        ("expand=occurrences&time_min=2027-06-02T00:00:00Z&time_max=2027-06-03T00:00:00Z", "expand"),
        ("expand=instances&time_min=2027-01-01T00:00:00Z&time_max=2029-01-01T00:00:00Z", "366"),
        ("cursor=not-a-cursor", "cursor"),
        ("limit=0", "limit"),
    ] {
        let response = w.app.get_as(&format!("{events}?{query}"), &alice).await;
        assert_eq!(response.status(), 400, "{query}");
        let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(kind, "application/problem+json", "{query}");
        let body = json(response).await;
        assert!(body["detail"].as_str().unwrap_or_default().contains(names), "{query}: {body}");
    }
    let response = w.app.get_as(&format!("{feed}?cursor=abc"), &alice).await;
    assert_eq!(response.status(), 400, "a foreign change-feed cursor");

    // Another tenant: 404 on every read, the feed included.
    let bob = token("bob", json!({}));
    for path in [format!("/v1/connections/{id}/google/calendars"), events.clone(), feed.clone()] {
        assert_eq!(w.app.get_as(&path, &bob).await.status(), 404, "{path} for another tenant");
    }
    w.app.stop().await;
}

crate::both_stores!(the_google_read_api_pages_windows_expands_and_feeds_changes, read_api);

/// Google event ids are unique only within a calendar: one meeting (and one weekly series) with
/// the same ids in the primary calendar and in "work" is served under each calendar with that
/// calendar's data and its own Patchbay ids, occurrences included; cancelling the meeting in
/// "work" is one tombstone in the feed and leaves the primary calendar's copy.
async fn same_event_in_two_calendars(db: Db) {
    let Some(w) = world(db, "v2").await else { return };
    let fake = &w.google;
    fake.add_calendar(GOOGLE_SUB, "work", "Work");
    let (meeting, series) = ("sharedmeet0001", "sharedseries01");
    let (start, end) = ("2027-06-02T09:00:00Z", "2027-06-02T10:00:00Z");
    for (calendar, who) in [("primary", "organiser"), ("work", "attendee")] {
        fake.insert_event(
            GOOGLE_SUB,
            calendar,
            EventSpec::timed(&format!("sync ({who})"), start, end).with_id(meeting),
        );
        let weekly = EventSpec::new(
            &format!("weekly ({who})"),
            EventTime::zoned("2027-06-07T09:00:00+02:00", "Europe/Berlin"),
            EventTime::zoned("2027-06-07T09:30:00+02:00", "Europe/Berlin"),
        );
        fake.insert_event(GOOGLE_SUB, calendar, weekly.recurring("RRULE:FREQ=WEEKLY;COUNT=3").with_id(series));
    }
    let alice = token("alice", json!({}));
    let back = w.connect(&alice, "google", json!({})).await;
    let id = back["connection_id"].to_string();
    sync(&w, &alice, &id).await;
    let calendars = get(&w, &alice, &format!("/v1/connections/{id}/google/calendars")).await;
    let mut under = Vec::new();
    for calendar in calendars["data"].as_array().unwrap() {
        let who = if calendar["provider_id"] == "work" { "attendee" } else { "organiser" };
        let events = format!("/v1/connections/{id}/google/calendars/{}/events", calendar["id"].as_str().unwrap());
        let found = get(&w, &alice, &format!("{events}?provider_id={meeting}")).await;
        let data = found["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{who}: one copy under the calendar");
        assert_eq!(data[0]["summary"], format!("sync ({who})"), "{who}: the calendar's own data");
        let window = "time_min=2027-06-01T00:00:00Z&time_max=2027-07-01T00:00:00Z";
        let expanded = get(&w, &alice, &format!("{events}?expand=instances&{window}")).await;
        let occurrences: Vec<&Value> =
            expanded["data"].as_array().unwrap().iter().filter(|e| e["summary"] == format!("weekly ({who})")).collect();
        assert_eq!(occurrences.len(), 3, "{who}: the series' occurrences from the calendar's own master");
        let ids: Vec<String> = occurrences.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
        under.push((data[0]["id"].as_str().unwrap().to_owned(), ids));
    }
    assert_eq!(under.len(), 2, "both calendars are served");
    assert_ne!(under[0].0, under[1].0, "the meeting has a Patchbay id per calendar");
    let occurrence_ids: BTreeSet<&String> = under.iter().flat_map(|(_, ids)| ids).collect();
    assert_eq!(occurrence_ids.len(), 6, "occurrence ids differ between the calendars too");

    let feed = format!("/v1/connections/{id}/google/changes");
    let after = get(&w, &alice, &format!("{feed}?limit=500")).await["next_cursor"].as_i64().unwrap();
    fake.delete_event(GOOGLE_SUB, "work", meeting);
    sync(&w, &alice, &id).await;
    let page = get(&w, &alice, &format!("{feed}?after={after}")).await;
    let changes: Vec<(&str, bool)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["provider_id"].as_str().unwrap(), c["deleted"].as_bool().unwrap()))
        .collect();
    assert_eq!(changes, [(meeting, true)], "one tombstone: the attendee's copy");
    let tombstone = &page["data"][0]["id"];
    let kept = under.iter().map(|(id, _)| id.as_str()).find(|id| *id != tombstone).unwrap().to_owned();
    let all = get(&w, &alice, &format!("/v1/connections/{id}/google/calendars")).await;
    let mut served = Vec::new();
    for calendar in all["data"].as_array().unwrap() {
        let events = format!("/v1/connections/{id}/google/calendars/{}/events", calendar["id"].as_str().unwrap());
        let found = get(&w, &alice, &format!("{events}?provider_id={meeting}")).await;
        served.extend(found["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(served, [kept], "the organiser's copy is still served, the attendee's is gone");
    w.app.stop().await;
}

crate::both_stores!(the_same_event_id_in_two_calendars_is_served_per_calendar, same_event_in_two_calendars);

/// The monday read API: a board with its columns and groups, items in keyset pages, the
/// `group_id` and `provider_id` filters, and the change feed after a rename, a column change and
/// a new item at the fake.
async fn monday_read_api(db: Db) {
    let Some(w) = world(db, "v2").await else { return };
    let fake = &w.monday;
    fake.add_board(1001, 7001, "Roadmap");
    fake.add_column(7001, "status", "Status", "status");
    fake.add_column(7001, "text0", "Notes", "text");
    fake.add_group(7001, "topics", "Topics");
    fake.add_group(7001, "done", "Done");
    let items: Vec<u64> = (0..30)
        .map(|n| fake.create_item(7001, if n % 3 == 0 { "done" } else { "topics" }, &format!("Task {n}")))
        .collect();

    let alice = token("alice", json!({}));
    let back = w.connect(&alice, "monday", json!({})).await;
    let id = back["connection_id"].to_string();
    sync(&w, &alice, &id).await;

    let boards = get(&w, &alice, &format!("/v1/connections/{id}/monday/boards")).await;
    let board = &boards["data"][0];
    assert_eq!((board["provider_id"].as_str(), board["name"].as_str()), (Some("7001"), Some("Roadmap")), "{boards}");
    let titles = |key: &str| -> BTreeSet<String> {
        board[key].as_array().unwrap().iter().map(|c| c["title"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(titles("columns"), BTreeSet::from(["Status".to_owned(), "Notes".to_owned()]));
    assert_eq!(titles("groups"), BTreeSet::from(["Topics".to_owned(), "Done".to_owned()]));
    let board_id = board["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/connections/{id}/monday/boards/{board_id}/items");

    // Every item once across pages of 7; and the `done` group's items through the filter.
    let all = |query: &'static str| {
        let (w, alice, path) = (&w, &alice, &path);
        async move {
            let mut names = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..20 {
                let url = match &cursor {
                    Some(c) => format!("{path}?limit=7{query}&cursor={c}"),
                    None => format!("{path}?limit=7{query}"),
                };
                let page = get(w, alice, &url).await;
                assert!(page["data"].as_array().unwrap().len() <= 7);
                names.extend(page["data"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_owned()));
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => return names,
                }
            }
            panic!("paging ends")
        }
    };
    let mut names = all("").await;
    names.sort();
    let mut want: Vec<String> = (0..30).map(|n| format!("Task {n}")).collect();
    want.sort();
    assert_eq!(names, want, "every item exactly once");
    let mut done = all("&group_id=done").await;
    done.sort();
    let mut want: Vec<String> = (0..30).filter(|n| n % 3 == 0).map(|n| format!("Task {n}")).collect();
    want.sort();
    assert_eq!(done, want, "the group filter keeps the group's items only");
    let one = get(&w, &alice, &format!("{path}?provider_id={}", items[4])).await;
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    assert_eq!(one["data"][0]["name"], "Task 4");

    // The change feed from its end: a rename, a column change and a new item, nothing else.
    let feed = format!("/v1/connections/{id}/monday/changes");
    let end = get(&w, &alice, &format!("{feed}?limit=500")).await;
    assert!(end["data"].as_array().unwrap().len() >= 1 + 2 + 2 + 30, "the board, columns, groups and items");
    let after = end["next_cursor"].as_i64().unwrap();
    fake.rename_item(items[1], "Task 1 renamed");
    fake.update_item_column(items[2], "text0", json!("a note"));
    let added = fake.create_item(7001, "topics", "Task 30");
    sync(&w, &alice, &id).await;
    let page = get(&w, &alice, &format!("{feed}?after={after}")).await;
    let changed: BTreeSet<(String, String)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (c["provider_id"].as_str().unwrap().to_owned(), c["fields"]["name"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    let want = BTreeSet::from([
        (items[1].to_string(), "Task 1 renamed".to_owned()),
        (items[2].to_string(), "Task 2".to_owned()),
        (added.to_string(), "Task 30".to_owned()),
    ]);
    assert_eq!(changed, want, "exactly the changed items follow the cursor");

    let bob = token("bob", json!({}));
    for path in [format!("/v1/connections/{id}/monday/boards"), path.clone(), feed] {
        assert_eq!(w.app.get_as(&path, &bob).await.status(), 404, "{path} for another tenant");
    }
    let google_path = format!("/v1/connections/{id}/google/calendars");
    assert_eq!(w.app.get_as(&google_path, &alice).await.status(), 404, "a monday connection has no calendars");
    w.app.stop().await;
}

crate::both_stores!(the_monday_read_api_pages_filters_and_feeds_changes, monday_read_api);
