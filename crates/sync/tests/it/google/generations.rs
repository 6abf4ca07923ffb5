//! Full re-syncs under a new generation (410) and resuming a listing cut short by an error.

use super::*;
use patchbay_testkit::fakes::google::{ApiFailure, EventSpec};

on_both_stores!(
    a_410_resync_never_shows_an_empty_calendar_and_sweeps_in_its_last_commit,
    a_failed_full_sync_resumes_at_the_page_after_the_last_commit,
    a_deleted_calendar_takes_its_events_with_it,
);

async fn a_410_resync_never_shows_an_empty_calendar_and_sweeps_in_its_last_commit(mut world: World) {
    world.tune(|s| s.google_page_size = 2);
    let conn = world.google_connection("acme", USER).await;
    let mut ids = Vec::new();
    for n in 0..7 {
        let start = day_at(-(n as i64), 9, 0);
        ids.push(world.google.insert_event(USER, "primary", EventSpec::timed(&format!("Event {n}"), &start, &start)));
    }
    sync_ok(&world, &conn).await;
    let part = format!("events:{}", primary());

    // While the token is dead: one event leaves the window (a bounded full listing no longer
    // shows it), the last one is deleted, a new one arrives.
    world.google.update_event(USER, "primary", &ids[0], |e| {
        e.start = patchbay_testkit::fakes::google::EventTime::at(&day_at(-700, 9, 0));
        e.end = e.start.clone();
    });
    world.google.delete_event(USER, "primary", &ids[6]);
    let fresh =
        world.google.insert_event(USER, "primary", EventSpec::timed("Fresh", &day_at(3, 9, 0), &day_at(3, 10, 0)));
    world.google.invalidate_sync_tokens(USER, "primary");

    // calendarList, the 410, the first full page; then the API breaks.
    world.google.fail_calendar_api_after(3, ApiFailure::Server(500), 1);
    let (result, _) = sync(&world, &conn).await;
    assert!(matches!(result, Err(SyncError::Transient(_))), "{result:?}");
    let state = world.store.sync_state(conn.id, &part).await.unwrap().unwrap();
    assert_eq!(state.generation, 2, "the first page of the re-sync committed under the new generation");
    assert!(state.checkpoint.get("page_token").is_some());
    let live = live_events(&world, &conn, &primary()).await;
    for id in &ids {
        assert!(live.contains_key(id), "a reader between pages of the re-sync still sees {id}");
    }
    assert!(live.values().any(|r| r.generation == 2) && live.values().any(|r| r.generation == 1));

    sync_ok(&world, &conn).await;
    assert_matches(&world, &conn, &primary(), "after the resumed re-sync").await;
    let all = records(&world, &conn, RecordKind::GoogleEvent, None).await;
    assert!(all[&ids[0]].deleted_at.is_some(), "the event the re-sync did not see was swept");
    assert!(all[&ids[6]].deleted_at.is_some(), "the deleted event was tombstoned");
    assert!(all[&fresh].deleted_at.is_none());
    let live = live_events(&world, &conn, &primary()).await;
    assert!(live.values().all(|r| r.generation == 2));
    assert_eq!(feed_live_set(&world, &conn).await, live_set(&world, &conn).await);
}

async fn a_failed_full_sync_resumes_at_the_page_after_the_last_commit(mut world: World) {
    world.tune(|s| s.google_page_size = 2);
    let conn = world.google_connection("acme", USER).await;
    for n in 0..9 {
        let start = day_at(-(n as i64) * 10, 9, 0);
        world.google.insert_event(USER, "primary", EventSpec::timed(&format!("Event {n}"), &start, &start));
    }
    let events_path = format!("/calendar/v3/calendars/{}/events", primary());
    // calendarList and two pages of events (four events) commit; the third page fails.
    world.google.fail_calendar_api_after(3, ApiFailure::Server(503), 1);
    let (result, counts) = sync(&world, &conn).await;
    assert!(matches!(result, Err(SyncError::Transient(_))), "{result:?}");
    assert_eq!(counts.upserted, 1 + 4, "the calendar and two pages of events");
    assert_eq!(stored(&world, &conn, &primary()).await.len(), 4);
    assert_eq!(world.google.api_calls_to(&events_path), 3);

    let calls = world.google.api_calls();
    let counts = sync_ok(&world, &conn).await;
    assert_eq!(counts.upserted, 5, "only the events not committed before");
    // An incremental calendarList, then pages three to five of the same full listing.
    assert_eq!(world.google.api_calls() - calls, 1 + 3, "no committed page is fetched again");
    assert_eq!(world.google.api_calls_to(&events_path), 3 + 3);
    assert_matches(&world, &conn, &primary(), "after the resumed full sync").await;
}

async fn a_deleted_calendar_takes_its_events_with_it(world: World) {
    let conn = world.google_connection("acme", USER).await;
    world.google.add_calendar(USER, "team", "Team");
    world.google.add_calendar(USER, "trips", "Trips");
    for calendar in ["team", "trips"] {
        for n in 0..3 {
            let start = day_at(n, 9, 0);
            world.google.insert_event(USER, calendar, EventSpec::timed(&format!("{calendar} {n}"), &start, &start));
        }
    }
    sync_ok(&world, &conn).await;
    assert_eq!(live_events(&world, &conn, "team").await.len(), 3);

    // Seen through the list's sync token as `deleted: true`.
    world.google.delete_calendar(USER, "team");
    sync_ok(&world, &conn).await;
    let calendars = records(&world, &conn, RecordKind::GoogleCalendar, None).await;
    assert!(calendars["team"].deleted_at.is_some());
    assert!(live_events(&world, &conn, "team").await.is_empty(), "its events went with it");
    assert_eq!(live_events(&world, &conn, "trips").await.len(), 3);

    // Missing from a full listing (the list's token died meanwhile).
    world.google.delete_calendar(USER, "trips");
    world.google.invalidate_all_sync_tokens();
    sync_ok(&world, &conn).await;
    let calendars = records(&world, &conn, RecordKind::GoogleCalendar, None).await;
    assert!(calendars["trips"].deleted_at.is_some());
    assert!(live_events(&world, &conn, "trips").await.is_empty());
    assert!(calendars[&primary()].deleted_at.is_none());
    assert_eq!(feed_live_set(&world, &conn).await, live_set(&world, &conn).await);

    // A calendar re-created under the same id starts over with a full sync.
    world.google.add_calendar(USER, "team", "Team again");
    world.google.insert_event(USER, "team", EventSpec::timed("Kickoff", &day_at(1, 9, 0), &day_at(1, 10, 0)));
    sync_ok(&world, &conn).await;
    assert_matches(&world, &conn, "team", "after the calendar came back").await;
}
