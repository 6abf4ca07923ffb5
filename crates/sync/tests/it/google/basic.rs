//! Full and incremental syncs, paging, clear fields and cancellations.

use super::*;
use patchbay_testkit::fakes::google::{EventSpec, EventTime};

on_both_stores!(
    full_then_incremental_sync_equals_the_fake,
    short_and_empty_pages_are_followed,
    an_unchanged_calendar_resyncs_without_new_changes,
    a_cancelled_event_is_tombstoned_and_a_cancelled_instance_kept,
);

async fn full_then_incremental_sync_equals_the_fake(world: World) {
    let conn = world.google_connection("acme", USER).await;
    let primary = primary();
    world.google.add_calendar(USER, "work", "Work");
    let standup =
        world.google.insert_event(USER, "primary", EventSpec::timed("Standup", &day_at(-3, 9, 2), &day_at(-3, 10, 2)));
    let holiday = world.google.insert_event(USER, "primary", EventSpec::all_day("Holiday", &day(5), &day(7)));
    let weekly_start = day_at(-100, 8, 0);
    let weekly = world.google.insert_event(
        USER,
        "primary",
        EventSpec::new("Weekly", EventTime::zoned(&weekly_start, "UTC"), EventTime::zoned(&day_at(-100, 9, 0), "UTC"))
            .recurring("RRULE:FREQ=WEEKLY"),
    );
    let ancient = world.google.insert_event(
        USER,
        "primary",
        EventSpec::timed("Ancient", &day_at(-800, 9, 0), &day_at(-800, 10, 0)),
    );
    let old_series = world.google.insert_event(
        USER,
        "primary",
        EventSpec::new(
            "Old series",
            EventTime::zoned(&day_at(-900, 8, 0), "UTC"),
            EventTime::zoned(&day_at(-900, 9, 0), "UTC"),
        )
        .recurring("RRULE:FREQ=DAILY"),
    );
    world.google.insert_event(USER, "work", EventSpec::timed("Review", &day_at(1, 14, -5), &day_at(1, 15, -5)));

    sync_ok(&world, &conn).await;
    assert_matches(&world, &conn, &primary, "after the full sync").await;
    assert_matches(&world, &conn, "work", "after the full sync").await;
    let calendars = records(&world, &conn, RecordKind::GoogleCalendar, None).await;
    let want: BTreeSet<String> = world.google.calendars(USER).iter().map(|c| text(c, "id")).collect();
    assert_eq!(calendars.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(text(&opened(&world, &calendars["work"]), "summary"), "Work");

    let events = live_events(&world, &conn, &primary).await;
    assert!(!events.contains_key(&ancient), "an event that ended before the window is not fetched");
    assert!(events.contains_key(&old_series), "an unbounded series from before the window is fetched");
    let fields = &events[&standup].fields;
    assert_eq!(fields.starts_at, Some(DateTime::parse_from_rfc3339(&day_at(-3, 9, 2)).unwrap().with_timezone(&Utc)));
    assert_eq!(fields.ends_at, Some(DateTime::parse_from_rfc3339(&day_at(-3, 10, 2)).unwrap().with_timezone(&Utc)));
    assert_eq!(fields.status.as_deref(), Some("confirmed"));
    assert!(fields.provider_updated_at.is_some());
    let all_day = &events[&holiday].fields;
    assert_eq!(
        all_day.starts_at,
        Some(NaiveDate::parse_from_str(&day(5), "%Y-%m-%d").unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc())
    );
    assert_eq!(
        all_day.ends_at,
        Some(NaiveDate::parse_from_str(&day(7), "%Y-%m-%d").unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc())
    );
    let master = &events[&weekly].fields;
    assert_eq!(master.starts_at, Some(DateTime::parse_from_rfc3339(&weekly_start).unwrap().with_timezone(&Utc)));
    assert_eq!(master.ends_at, None, "a series without an end is unbounded");
    assert_eq!(events[&weekly].parent_id, Some(calendar_id(&conn, &primary)));

    // Changes arrive through the sync token.
    world.google.update_event(USER, "primary", &standup, |e| e.summary = "Standup (moved)".into());
    world.google.insert_event(USER, "work", EventSpec::timed("Planning", &day_at(2, 10, 0), &day_at(2, 11, 0)));
    world.google.delete_event(USER, "primary", &holiday);
    let calls = world.google.api_calls();
    let counts = sync_ok(&world, &conn).await;
    assert_eq!(world.google.api_calls() - calls, 3, "one incremental page per listing");
    assert_eq!(counts, Counts { upserted: 2, deleted: 1 });
    assert_matches(&world, &conn, &primary, "after the incremental sync").await;
    assert_matches(&world, &conn, "work", "after the incremental sync").await;
    assert_eq!(feed_live_set(&world, &conn).await, live_set(&world, &conn).await);
}

async fn short_and_empty_pages_are_followed(mut world: World) {
    world.tune(|s| s.google_page_size = 4);
    let conn = world.google_connection("acme", USER).await;
    for n in 0..11 {
        let start = day_at(-(n as i64), 9, 0);
        world.google.insert_event(USER, "primary", EventSpec::timed(&format!("Event {n}"), &start, &start));
    }
    // Every listing's first page is empty, the second holds one item, the third none again.
    world.google.set_page_plan(&[0, 1, 0, 3]);
    sync_ok(&world, &conn).await;
    assert_matches(&world, &conn, &primary(), "after a full sync with short and empty pages").await;
    assert_eq!(stored(&world, &conn, &primary()).await.len(), 11);

    for n in 0..6 {
        let start = day_at(n, 12, 0);
        world.google.insert_event(USER, "primary", EventSpec::timed(&format!("Later {n}"), &start, &start));
    }
    world.google.set_page_plan(&[0, 2, 0]);
    let events_path = format!("/calendar/v3/calendars/{}/events", primary());
    let before = world.google.api_calls_to(&events_path);
    sync_ok(&world, &conn).await;
    assert!(world.google.api_calls_to(&events_path) - before >= 4, "the incremental listing was paged");
    assert_matches(&world, &conn, &primary(), "after a paged incremental sync").await;
    assert_eq!(stored(&world, &conn, &primary()).await.len(), 17);
}

async fn an_unchanged_calendar_resyncs_without_new_changes(mut world: World) {
    world.tune(|s| s.google_page_size = 3);
    let conn = world.google_connection("acme", USER).await;
    for n in 0..8 {
        let start = day_at(-(n as i64) * 3, 9, 0);
        world.google.insert_event(USER, "primary", EventSpec::timed(&format!("Event {n}"), &start, &start));
    }
    sync_ok(&world, &conn).await;
    let seq = high_water(&world, &conn).await;
    let part = format!("events:{}", primary());
    assert_eq!(world.store.sync_state(conn.id, &part).await.unwrap().unwrap().generation, 1);

    let counts = sync_ok(&world, &conn).await;
    assert_eq!(counts, Counts::default());
    assert_eq!(high_water(&world, &conn).await, seq, "an incremental sync without changes writes nothing");

    // A dead sync token: a full re-sync under a new generation that finds every row unchanged.
    world.google.invalidate_all_sync_tokens();
    let counts = sync_ok(&world, &conn).await;
    assert_eq!(counts, Counts::default());
    assert_eq!(high_water(&world, &conn).await, seq, "unchanged rows only take the new generation");
    let state = world.store.sync_state(conn.id, &part).await.unwrap().unwrap();
    assert_eq!(state.generation, 2);
    assert!(state.last_full_at.is_some());
    let events = live_events(&world, &conn, &primary()).await;
    assert_eq!(events.len(), 8);
    assert!(events.values().all(|r| r.generation == 2), "every row seen by the re-sync carries its generation");
}

async fn a_cancelled_event_is_tombstoned_and_a_cancelled_instance_kept(world: World) {
    let conn = world.google_connection("acme", USER).await;
    let single =
        world.google.insert_event(USER, "primary", EventSpec::timed("Lunch", &day_at(1, 12, 0), &day_at(1, 13, 0)));
    let series_start = EventTime::zoned(&day_at(-14, 8, 0), "Europe/Berlin");
    let series = world.google.insert_event(
        USER,
        "primary",
        EventSpec::new("Daily", series_start, EventTime::zoned(&day_at(-14, 9, 0), "Europe/Berlin"))
            .recurring("RRULE:FREQ=DAILY"),
    );
    sync_ok(&world, &conn).await;

    world.google.delete_event(USER, "primary", &single);
    let original = day_at(-7, 8, 0);
    let cancelled =
        world.google.cancel_instance(USER, "primary", &series, EventTime::zoned(&original, "Europe/Berlin"));
    let moved = world.google.modify_instance(
        USER,
        "primary",
        &series,
        EventTime::zoned(&day_at(-6, 8, 0), "Europe/Berlin"),
        EventSpec::new(
            "Daily (late)",
            EventTime::zoned(&day_at(-6, 10, 0), "Europe/Berlin"),
            EventTime::zoned(&day_at(-6, 11, 0), "Europe/Berlin"),
        ),
    );
    sync_ok(&world, &conn).await;
    assert_matches(&world, &conn, &primary(), "after the cancellations").await;

    let all = records(&world, &conn, RecordKind::GoogleEvent, None).await;
    assert!(all[&single].deleted_at.is_some(), "a cancelled single event is tombstoned");
    let instance = &all[&cancelled];
    assert!(instance.deleted_at.is_none(), "a cancelled instance is kept for expansion");
    assert_eq!(instance.fields.status.as_deref(), Some("cancelled"));
    assert_eq!(instance.fields.series_id.as_deref(), Some(series.as_str()));
    assert_eq!(instance.fields.starts_at, Some(DateTime::parse_from_rfc3339(&original).unwrap().with_timezone(&Utc)));
    let exception = &all[&moved];
    assert_eq!(exception.fields.series_id.as_deref(), Some(series.as_str()));
    assert_eq!(exception.fields.status.as_deref(), Some("confirmed"));
    assert_eq!(text(&opened(&world, exception), "summary"), "Daily (late)");
}
