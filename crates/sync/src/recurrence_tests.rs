//! Expansion cases: DST in Europe/Berlin, COUNT, UNTIL, EXDATE, all-day series, exceptions.

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn window(min: &str, max: &str) -> Window {
    Window { min: at(min), max: at(max) }
}

fn weekly_berlin(lines: &[&str]) -> Value {
    json!({
        "id": "m1",
        "summary": "standup",
        "start": {"dateTime": "2026-03-16T10:00:00+01:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2026-03-16T10:30:00+01:00", "timeZone": "Europe/Berlin"},
        "recurrence": lines,
    })
}

fn ids(events: &[(DateTime<Utc>, Value)]) -> Vec<String> {
    events.iter().map(|(_, e)| e["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn weekly_series_keeps_its_wall_time_across_the_dst_change() {
    let master = weekly_berlin(&["RRULE:FREQ=WEEKLY;BYDAY=MO"]);
    let got = expand_series(&master, &[], window("2026-03-16T00:00:00Z", "2026-04-07T00:00:00Z"), 100).unwrap();
    // Berlin moves to CEST on 29 March: 10:00 local is 09:00Z before and 08:00Z after.
    assert_eq!(ids(&got), ["m1_20260316T090000Z", "m1_20260323T090000Z", "m1_20260330T080000Z", "m1_20260406T080000Z"]);
    let after = &got[2].1;
    assert_eq!(after["start"]["dateTime"], "2026-03-30T10:00:00+02:00");
    assert_eq!(after["end"]["dateTime"], "2026-03-30T10:30:00+02:00");
    assert_eq!(after["start"]["timeZone"], "Europe/Berlin");
    assert_eq!(after["recurringEventId"], "m1");
    assert_eq!(after["originalStartTime"], after["start"]);
    assert_eq!(after["summary"], "standup");
    assert!(after.get("recurrence").is_none(), "an occurrence carries no rule");
}

#[test]
fn count_and_until_end_the_series() {
    let wide = window("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
    let counted = expand_series(&weekly_berlin(&["RRULE:FREQ=WEEKLY;COUNT=3"]), &[], wide, 100).unwrap();
    assert_eq!(counted.len(), 3, "COUNT=3");
    let until = weekly_berlin(&["RRULE:FREQ=WEEKLY;UNTIL=20260330T075959Z"]);
    let got = expand_series(&until, &[], wide, 100).unwrap();
    assert_eq!(ids(&got), ["m1_20260316T090000Z", "m1_20260323T090000Z"], "UNTIL excludes the 30 March 08:00Z one");
}

#[test]
fn exdate_removes_an_occurrence_in_local_or_utc_form() {
    let master = weekly_berlin(&[
        "RRULE:FREQ=WEEKLY;COUNT=4",
        "EXDATE;TZID=Europe/Berlin:20260323T100000",
        "EXDATE:20260406T080000Z",
    ]);
    let got = expand_series(&master, &[], window("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"), 100).unwrap();
    assert_eq!(ids(&got), ["m1_20260316T090000Z", "m1_20260330T080000Z"]);
}

#[test]
fn rdate_adds_an_occurrence() {
    let master = weekly_berlin(&["RRULE:FREQ=WEEKLY;COUNT=1", "RDATE;TZID=Europe/Berlin:20260318T150000"]);
    let got = expand_series(&master, &[], window("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"), 100).unwrap();
    assert_eq!(ids(&got), ["m1_20260316T090000Z", "m1_20260318T140000Z"]);
}

#[test]
fn all_day_series_uses_dates_and_date_ids() {
    let master = json!({
        "id": "bday",
        "start": {"date": "2026-03-28"},
        "end": {"date": "2026-03-29"},
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=5", "EXDATE;VALUE=DATE:20260330"],
    });
    let got = expand_series(&master, &[], window("2026-03-29T00:00:00Z", "2026-04-01T00:00:00Z"), 100).unwrap();
    assert_eq!(ids(&got), ["bday_20260329", "bday_20260331"]);
    assert_eq!(got[0].1["start"], json!({"date": "2026-03-29"}));
    assert_eq!(got[0].1["end"], json!({"date": "2026-03-30"}));
}

#[test]
fn an_occurrence_overlapping_the_window_start_is_included() {
    let master = weekly_berlin(&["RRULE:FREQ=WEEKLY"]);
    // 16 March 09:00Z–09:30Z overlaps a window starting 09:15Z; the next one starts after it ends.
    let got = expand_series(&master, &[], window("2026-03-16T09:15:00Z", "2026-03-20T00:00:00Z"), 100).unwrap();
    assert_eq!(ids(&got), ["m1_20260316T090000Z"]);
}

fn exception(id: &str, original: &str, status: &str, start: Option<&str>) -> Value {
    let mut e = json!({
        "id": id, "recurringEventId": "m1", "status": status,
        "originalStartTime": {"dateTime": original, "timeZone": "Europe/Berlin"},
    });
    if let Some(start) = start {
        e["start"] = json!({"dateTime": start});
        e["end"] = json!({"dateTime": start});
    }
    e
}

#[test]
fn cancelled_and_moved_exceptions_replace_their_occurrences() {
    let master = weekly_berlin(&["RRULE:FREQ=WEEKLY;COUNT=4"]);
    let cancelled = exception("m1_20260323T090000Z", "2026-03-23T10:00:00+01:00", "cancelled", None);
    // Moved from 30 March to a day outside the window: gone from the window entirely.
    let moved_out =
        exception("m1_20260330T080000Z", "2026-03-30T10:00:00+02:00", "confirmed", Some("2026-05-01T10:00:00+02:00"));
    // Moved within the window: the stored exception shows, not the generated occurrence.
    let moved_in =
        exception("m1_20260406T080000Z", "2026-04-06T10:00:00+02:00", "confirmed", Some("2026-04-07T12:00:00+02:00"));
    let stored = HashMap::from([("m1".to_owned(), vec![cancelled.clone(), moved_out.clone(), moved_in.clone()])]);
    let events = vec![(1, master), (2, cancelled), (3, moved_in)];
    let got = expand_window(window("2026-03-01T00:00:00Z", "2026-04-30T00:00:00Z"), events, &stored, 100).unwrap();
    let summary: Vec<(&str, i32, bool)> =
        got.iter().map(|i| (i.event["id"].as_str().unwrap(), i.source, i.generated)).collect();
    assert_eq!(summary, [("m1_20260316T090000Z", 1, true), ("m1_20260406T080000Z", 3, false)]);
}

#[test]
fn window_merges_single_events_by_start_and_drops_those_outside() {
    let master = weekly_berlin(&["RRULE:FREQ=WEEKLY;COUNT=2"]);
    let single =
        json!({"id": "s1", "start": {"dateTime": "2026-03-20T12:00:00Z"}, "end": {"dateTime": "2026-03-20T13:00:00Z"}});
    let outside =
        json!({"id": "s2", "start": {"dateTime": "2026-06-20T12:00:00Z"}, "end": {"dateTime": "2026-06-20T13:00:00Z"}});
    let events = vec![("m", master), ("s", single), ("o", outside)];
    let got =
        expand_window(window("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"), events, &HashMap::new(), 100).unwrap();
    let order: Vec<&str> = got.iter().map(|i| i.event["id"].as_str().unwrap()).collect();
    assert_eq!(order, ["m1_20260316T090000Z", "s1", "m1_20260323T090000Z"]);
}

#[test]
fn more_occurrences_than_the_cap_is_an_error() {
    let master = json!({
        "id": "d", "start": {"dateTime": "2026-01-01T08:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2026-01-01T09:00:00Z", "timeZone": "UTC"}, "recurrence": ["RRULE:FREQ=DAILY"],
    });
    let got =
        expand_window(window("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"), vec![((), master)], &HashMap::new(), 100);
    assert_eq!(got.unwrap_err(), RecurrenceError::TooMany(100));
}

#[test]
fn an_unreadable_rule_skips_only_that_series() {
    let broken =
        json!({"id": "b", "start": {"dateTime": "2026-01-01T08:00:00Z"}, "recurrence": ["RRULE:FREQ=SOMETIMES"]});
    let single =
        json!({"id": "s", "start": {"dateTime": "2026-01-02T08:00:00Z"}, "end": {"dateTime": "2026-01-02T09:00:00Z"}});
    let got = expand_window(
        window("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
        vec![(0, broken), (1, single)],
        &HashMap::new(),
        10,
    )
    .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event["id"], "s");
}
