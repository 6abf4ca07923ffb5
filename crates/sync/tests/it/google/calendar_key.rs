//! Google event ids are unique only within a calendar: the same meeting has the same event id in
//! the organiser's and an attendee's calendar of one user. Each calendar's copy is its own
//! record (id derived from the calendar too), synced, changed and cancelled on its own.

use super::*;
use patchbay_testkit::fakes::google::EventSpec;

on_both_stores!(the_same_event_in_two_calendars_is_two_records_changed_and_cancelled_apart);

/// The Google id both calendars give the meeting (base32hex, as Google's).
const SHARED: &str = "sharedmeet0001";

async fn the_same_event_in_two_calendars_is_two_records_changed_and_cancelled_apart(world: World) {
    let conn = world.google_connection("acme", USER).await;
    let primary = primary();
    world.google.add_calendar(USER, "work", "Work");
    let (start, end) = (day_at(2, 9, 0), day_at(2, 10, 0));
    world.google.insert_event(USER, "primary", EventSpec::timed("Sync (organiser)", &start, &end).with_id(SHARED));
    world.google.insert_event(USER, "work", EventSpec::timed("Sync (attendee)", &start, &end).with_id(SHARED));
    world.google.insert_event(USER, "work", EventSpec::timed("Review", &day_at(3, 9, 0), &day_at(3, 10, 0)));

    sync_ok(&world, &conn).await;
    assert_matches(&world, &conn, &primary, "after the full sync").await;
    assert_matches(&world, &conn, "work", "after the full sync").await;
    let mine = live_events(&world, &conn, &primary).await[SHARED].clone();
    let theirs = live_events(&world, &conn, "work").await[SHARED].clone();
    assert_eq!(mine.id, RecordId::derive_event(conn.id, &primary, SHARED));
    assert_eq!(theirs.id, RecordId::derive_event(conn.id, "work", SHARED));
    assert_ne!(mine.id, theirs.id, "two calendars, two records");
    assert_eq!(text(&opened(&world, &mine), "summary"), "Sync (organiser)");
    assert_eq!(text(&opened(&world, &theirs), "summary"), "Sync (attendee)");
    // The read API's provider id filter under each calendar serves that calendar's copy.
    let scope = TenantScope::new(conn.tenant_id);
    for (calendar, want) in [(primary.as_str(), &mine), ("work", &theirs)] {
        let filter = RecordFilter {
            parent_id: Some(calendar_id(&conn, calendar)),
            provider_id: Some(SHARED.into()),
            ..RecordFilter::default()
        };
        let page = world.store.list_records(scope, conn.id, RecordKind::GoogleEvent, &filter, Page::first()).await;
        assert_eq!(page.unwrap().items, std::slice::from_ref(want), "{calendar} serves its own copy");
    }
    assert_eq!(feed_live_set(&world, &conn).await, live_set(&world, &conn).await);
    let after_full = high_water(&world, &conn).await;

    // A change in the organiser's calendar is one change; the attendee's copy is untouched.
    world.google.update_event(USER, "primary", SHARED, |e| e.summary = "Sync (moved)".into());
    assert_eq!(sync_ok(&world, &conn).await, Counts { upserted: 1, deleted: 0 });
    assert_matches(&world, &conn, &primary, "after the change").await;
    assert_matches(&world, &conn, "work", "after the change").await;
    assert_eq!(live_events(&world, &conn, "work").await[SHARED], theirs, "the other calendar's row is untouched");

    // The attendee declines and removes it: cancelled in that calendar only.
    world.google.delete_event(USER, "work", SHARED);
    assert_eq!(sync_ok(&world, &conn).await, Counts { upserted: 0, deleted: 1 });
    assert_matches(&world, &conn, &primary, "after the cancellation").await;
    assert_matches(&world, &conn, "work", "after the cancellation").await;
    let kept = &live_events(&world, &conn, &primary).await[SHARED];
    assert_eq!((kept.id, text(&opened(&world, kept), "summary")), (mine.id, "Sync (moved)".to_owned()));
    let all = records(&world, &conn, RecordKind::GoogleEvent, Some(calendar_id(&conn, "work"))).await;
    assert!(all[SHARED].deleted_at.is_some(), "the attendee's copy is tombstoned");
    // The feed after the full sync: the change of one copy, then the tombstone of the other.
    let page = world.store.change_feed(scope, conn.id, &[RecordKind::GoogleEvent], after_full, 100).await.unwrap();
    let changes: Vec<(RecordId, bool)> = page.records.iter().map(|r| (r.id, r.deleted_at.is_some())).collect();
    assert_eq!(changes, [(mine.id, false), (theirs.id, true)]);
    assert_eq!(feed_live_set(&world, &conn).await, live_set(&world, &conn).await);
}
