//! Recurring-event expansion (architecture §5.3, `expand=instances`): turns the stored Calendar
//! events of a time window — single events, recurring masters and their exceptions, as Google's
//! `singleEvents=false` listing returns them — into the occurrences a calendar shows, the way
//! Google's `singleEvents=true` would: each master's `recurrence` (RRULE, RDATE, EXDATE) is
//! expanded in the master's own time zone (so a weekly 10:00 in Europe/Berlin stays at 10:00
//! across DST), cancelled exceptions remove their occurrence, modified exceptions replace it.
//!
//! Pure: no store, no vault. The caller opens the records and hands each event with its own
//! payload `T` (the record it came from); occurrences carry their master's payload.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use rrule::{RRule, RRuleSet, Tz, Unvalidated};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// Occurrences generated before the window ends, per series, before expansion gives up: a
/// daily series started ten years ago is ~3,650; this only stops pathological rules.
const MAX_GENERATED: usize = 200_000;

/// A half-open time window `[min, max)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub min: DateTime<Utc>,
    pub max: DateTime<Utc>,
}

impl Window {
    /// Whether an event spanning `[start, end)` shows in the window (a zero-length event at
    /// `min` does, like Google's `timeMin`/`timeMax` filter).
    pub fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        start < self.max && (end > self.min || (end <= start && start >= self.min))
    }
}

/// Why a window or a series could not be expanded.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    /// More occurrences than the caller's cap: the window must shrink.
    #[error("the window holds more than {0} events")]
    TooMany(usize),
    /// The master's start is missing or unreadable.
    #[error("the recurring event has no readable start")]
    NoStart,
    /// A recurrence line cannot be read (the message names the property, never the event).
    #[error("a recurrence line cannot be read: {0}")]
    Rule(String),
}

/// One event of an expanded window.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance<T> {
    /// The stored record it comes from: the master for a generated occurrence.
    pub source: T,
    /// The event JSON (an occurrence is its master's JSON with its own id, start, end,
    /// `recurringEventId` and `originalStartTime`, without `recurrence`).
    pub event: Value,
    /// Whether it was generated from a rule (not stored as such).
    pub generated: bool,
    /// Its start, for ordering.
    pub start: DateTime<Utc>,
}

/// Whether an event is a recurring master (it has recurrence lines).
pub fn is_master(event: &Value) -> bool {
    event.get("recurrence").and_then(Value::as_array).is_some_and(|lines| !lines.is_empty())
}

/// Expands a window. `events` are the stored events overlapping it (masters, whose stored end is
/// open, included); `exceptions` maps a master's provider id to all its stored exceptions
/// (wherever they moved to). Answers single events, modified exceptions and occurrences in the
/// window, ordered by start then id; cancelled events never. More than `cap` → `TooMany`.
/// A master whose rule cannot be read is skipped with a warning (its id only).
pub fn expand_window<T: Clone>(
    window: Window,
    events: Vec<(T, Value)>,
    exceptions: &HashMap<String, Vec<Value>>,
    cap: usize,
) -> Result<Vec<Instance<T>>, RecurrenceError> {
    let mut out = Vec::new();
    for (source, event) in events {
        if event.get("status").and_then(Value::as_str) == Some("cancelled") {
            continue;
        }
        if is_master(&event) {
            let id = event.get("id").and_then(Value::as_str).unwrap_or_default();
            let stored = exceptions.get(id).map(Vec::as_slice).unwrap_or_default();
            match expand_series(&event, stored, window, cap.saturating_sub(out.len())) {
                Ok(occurrences) => out.extend(occurrences.into_iter().map(|(start, event)| Instance {
                    source: source.clone(),
                    event,
                    generated: true,
                    start,
                })),
                Err(RecurrenceError::TooMany(_)) => return Err(RecurrenceError::TooMany(cap)),
                Err(e) => tracing::warn!(event = id, error = %e, "a recurring event cannot be expanded; skipped"),
            }
        } else if let Some((start, end)) = span(&event) {
            if window.overlaps(start, end) {
                out.push(Instance { source, event, generated: false, start });
            }
        }
        if out.len() > cap {
            return Err(RecurrenceError::TooMany(cap));
        }
    }
    out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| event_id(&a.event).cmp(event_id(&b.event))));
    Ok(out)
}

/// The occurrences of one master inside `window` (with their starts), minus those its
/// `exceptions` replace or cancel (modified exceptions are stored events of their own and come
/// through the window listing). At most `cap`, else `TooMany`.
pub fn expand_series(
    master: &Value,
    exceptions: &[Value],
    window: Window,
    cap: usize,
) -> Result<Vec<(DateTime<Utc>, Value)>, RecurrenceError> {
    let series = Series::read(master)?;
    let replaced: HashSet<DateTime<Utc>> =
        exceptions.iter().filter_map(|e| e.get("originalStartTime").and_then(instant)).collect();
    let mut out = Vec::new();
    for (n, at) in series.set.clone().limit().into_iter().enumerate() {
        let start = at.with_timezone(&Utc);
        if start >= window.max {
            break;
        }
        if n >= MAX_GENERATED {
            return Err(RecurrenceError::TooMany(cap));
        }
        if !window.overlaps(start, start + series.duration) || replaced.contains(&start) {
            continue;
        }
        if out.len() == cap {
            return Err(RecurrenceError::TooMany(cap));
        }
        out.push((start, series.occurrence(master, at)));
    }
    Ok(out)
}

/// A master's rule set and timing.
struct Series {
    set: RRuleSet,
    duration: Duration,
    all_day: bool,
    zone: Tz,
}

impl Series {
    fn read(master: &Value) -> Result<Self, RecurrenceError> {
        let start = master.get("start").ok_or(RecurrenceError::NoStart)?;
        let all_day = start.get("date").is_some();
        // All-day series run on floating dates: evaluate them at midnight UTC.
        let zone = match start.get("timeZone").and_then(Value::as_str) {
            Some(name) if !all_day => {
                name.parse::<chrono_tz::Tz>().map(Tz::Tz).map_err(|_| RecurrenceError::Rule("timeZone".into()))?
            }
            _ => Tz::UTC,
        };
        let first = instant(start).ok_or(RecurrenceError::NoStart)?;
        let end = master.get("end").and_then(instant).unwrap_or(first);
        let dt_start = first.with_timezone(&zone);
        let mut set = RRuleSet::new(dt_start);
        for line in master.get("recurrence").and_then(Value::as_array).into_iter().flatten() {
            let Some(line) = line.as_str() else { continue };
            let (head, value) =
                line.split_once(':').ok_or_else(|| RecurrenceError::Rule("a line without ':'".into()))?;
            let mut params = head.split(';');
            let name = params.next().unwrap_or_default().to_ascii_uppercase();
            let params: Vec<&str> = params.collect();
            set = match name.as_str() {
                "RRULE" => {
                    let rule: RRule<Unvalidated> = value.parse().map_err(|_| RecurrenceError::Rule("RRULE".into()))?;
                    set.rrule(rule.validate(dt_start).map_err(|_| RecurrenceError::Rule("RRULE".into()))?)
                }
                "RDATE" => dates(value, &params, zone)?.into_iter().fold(set, RRuleSet::rdate),
                "EXDATE" => dates(value, &params, zone)?.into_iter().fold(set, RRuleSet::exdate),
                // EXRULE is deprecated (RFC 5545) and Google does not write it.
                _ => set,
            };
        }
        Ok(Self { set, duration: end - first, all_day, zone })
    }

    /// The master's JSON as the occurrence starting at `at`.
    fn occurrence(&self, master: &Value, at: DateTime<Tz>) -> Value {
        let master_id = event_id(master);
        let mut event = master.clone();
        let (id, start, end) = if self.all_day {
            let day = at.date_naive();
            let last = (at + self.duration).date_naive();
            (
                format!("{master_id}_{}", day.format("%Y%m%d")),
                json!({"date": day.format("%Y-%m-%d").to_string()}),
                json!({"date": last.format("%Y-%m-%d").to_string()}),
            )
        } else {
            let zone = self.zone.name();
            (
                format!("{master_id}_{}", at.with_timezone(&Utc).format("%Y%m%dT%H%M%SZ")),
                json!({"dateTime": at.to_rfc3339(), "timeZone": zone}),
                json!({"dateTime": (at + self.duration).to_rfc3339(), "timeZone": zone}),
            )
        };
        if let Some(object) = event.as_object_mut() {
            object.remove("recurrence");
            object.insert("id".into(), Value::String(id));
            object.insert("recurringEventId".into(), Value::String(master_id.to_owned()));
            object.insert("originalStartTime".into(), start.clone());
            object.insert("start".into(), start);
            object.insert("end".into(), end);
        }
        event
    }
}

/// The values of an RDATE/EXDATE line: `YYYYMMDD` (`VALUE=DATE`), `YYYYMMDDTHHMMSS` in its
/// `TZID` (or the series' zone), or `YYYYMMDDTHHMMSSZ`.
fn dates(value: &str, params: &[&str], zone: Tz) -> Result<Vec<DateTime<Tz>>, RecurrenceError> {
    let bad = || RecurrenceError::Rule("RDATE/EXDATE".into());
    let tz = match params.iter().find_map(|p| p.strip_prefix("TZID=")) {
        Some(name) => Tz::Tz(name.parse::<chrono_tz::Tz>().map_err(|_| bad())?),
        None => zone,
    };
    value
        .split(',')
        .map(|v| {
            if let Some(utc) = v.strip_suffix('Z') {
                let at = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").map_err(|_| bad())?;
                Ok(at.and_utc().with_timezone(&zone))
            } else if v.len() == 8 {
                let day = NaiveDate::parse_from_str(v, "%Y%m%d").map_err(|_| bad())?;
                Ok(day.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc().with_timezone(&zone))
            } else {
                let at = NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").map_err(|_| bad())?;
                // A wall time skipped by DST has no instant; an ambiguous one takes the earlier.
                tz.from_local_datetime(&at).earliest().ok_or_else(bad)
            }
        })
        .collect()
}

/// An `EventDateTime` as an instant: `dateTime` (RFC 3339) or an all-day `date` (midnight UTC).
pub fn instant(time: &Value) -> Option<DateTime<Utc>> {
    if let Some(at) = time.get("dateTime").and_then(Value::as_str) {
        return DateTime::parse_from_rfc3339(at).ok().map(|at| at.with_timezone(&Utc));
    }
    let day = time.get("date").and_then(Value::as_str)?;
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|at| at.and_utc())
}

/// An event's `[start, end)` (end defaults to start).
fn span(event: &Value) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let start = event.get("start").and_then(instant)?;
    Some((start, event.get("end").and_then(instant).unwrap_or(start)))
}

fn event_id(event: &Value) -> &str {
    event.get("id").and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
#[path = "recurrence_tests.rs"]
mod tests;
