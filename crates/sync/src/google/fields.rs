//! Turns a Calendar event resource into a record write: the clear fields queries use (start,
//! end, series, status, `updated`) and the sealed JSON exactly as received (so an unchanged event
//! seals to the same keyed hash and is not rewritten).

use super::events::CalendarRef;
use crate::engine::{Clear, Engine};
use chrono::{DateTime, NaiveDate, Utc};
use patchbay_store::{RecordKind, RecordWrite};
use serde_json::Value;

/// The write for one item of an `events.list` page of `calendar`, keyed by the calendar and the
/// event id (an event id is unique only within a calendar); `None` for an item without an id
/// (nothing to key it by).
pub(crate) fn event_write(engine: &Engine<'_>, calendar_ref: &CalendarRef, item: &Value) -> Option<RecordWrite> {
    let id = item.get("id").and_then(Value::as_str)?;
    let record_id = engine.event_id(&calendar_ref.provider_id, id);
    let calendar = calendar_ref.record_id;
    let status = item.get("status").and_then(Value::as_str);
    let series_id = item.get("recurringEventId").and_then(Value::as_str).map(str::to_owned);
    if status == Some("cancelled") {
        // A cancelled instance of a series is an exception expansion must apply; any other
        // cancelled event is a deletion.
        if series_id.is_none() {
            return Some(engine.delete_as(RecordKind::GoogleEvent, record_id, id, Some(calendar)));
        }
        let at = item.get("originalStartTime").and_then(instant);
        let clear = Clear {
            starts_at: at,
            ends_at: at,
            series_id,
            status: Some("cancelled".into()),
            provider_updated_at: updated(item),
        };
        return Some(engine.record_as(RecordKind::GoogleEvent, record_id, id, Some(calendar), item, clear));
    }
    let starts_at = item.get("start").and_then(instant);
    let recurring = item.get("recurrence").and_then(Value::as_array).is_some_and(|lines| !lines.is_empty());
    // A series' master spans from its first start; its end is left open (expansion decides).
    let ends_at = if recurring { None } else { item.get("end").and_then(instant) };
    let clear = Clear {
        starts_at,
        ends_at,
        series_id,
        status: Some(status.unwrap_or("confirmed").to_owned()),
        provider_updated_at: updated(item),
    };
    Some(engine.record_as(RecordKind::GoogleEvent, record_id, id, Some(calendar), item, clear))
}

/// An `EventDateTime`: `dateTime` (RFC 3339 with offset) or an all-day `date` (midnight UTC).
pub(crate) fn instant(time: &Value) -> Option<DateTime<Utc>> {
    if let Some(at) = time.get("dateTime").and_then(Value::as_str) {
        return DateTime::parse_from_rfc3339(at).ok().map(|at| at.with_timezone(&Utc));
    }
    let day = time.get("date").and_then(Value::as_str)?;
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|at| at.and_utc())
}

fn updated(item: &Value) -> Option<DateTime<Utc>> {
    let at = item.get("updated").and_then(Value::as_str)?;
    DateTime::parse_from_rfc3339(at).ok().map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_read_both_forms() {
        let timed = instant(&json!({"dateTime": "2026-03-01T09:00:00+01:00", "timeZone": "Europe/Paris"}));
        assert_eq!(timed, Some("2026-03-01T08:00:00Z".parse().unwrap()));
        assert_eq!(instant(&json!({"date": "2026-03-02"})), Some("2026-03-02T00:00:00Z".parse().unwrap()));
        assert_eq!(instant(&json!({"date": "not a day"})), None);
        assert_eq!(instant(&json!({})), None);
    }
}
