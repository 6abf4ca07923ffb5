//! What tests describe events with: [`EventSpec`] and [`EventTime`]. The fake renders them as
//! Google's event resource (providers.md B6.2).

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat, Utc};
use serde_json::{json, Value};

/// An event's start or end (Google's `EventDateTime`): an all-day `date`, or a `dateTime` with an
/// offset and an optional IANA `timeZone` (Google requires the zone on recurring events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventTime {
    /// `{"date": "yyyy-mm-dd"}`; an all-day end is exclusive.
    Date(NaiveDate),
    /// `{"dateTime": "…", "timeZone": "…"}`.
    DateTime {
        /// The instant, with the offset it is rendered with.
        at: DateTime<FixedOffset>,
        /// The IANA zone, if any.
        time_zone: Option<String>,
    },
}

impl EventTime {
    /// An all-day date, `yyyy-mm-dd`. Panics on anything else.
    pub fn date(day: &str) -> Self {
        EventTime::Date(NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap_or_else(|e| panic!("bad date {day}: {e}")))
    }

    /// A timestamp with an offset (RFC 3339) and no zone. Panics on anything else.
    pub fn at(rfc3339: &str) -> Self {
        EventTime::DateTime { at: parse_rfc3339(rfc3339), time_zone: None }
    }

    /// A timestamp with an offset (RFC 3339) in an IANA zone. Panics on a bad timestamp.
    pub fn zoned(rfc3339: &str, time_zone: &str) -> Self {
        EventTime::DateTime { at: parse_rfc3339(rfc3339), time_zone: Some(time_zone.to_owned()) }
    }

    /// Google's JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            EventTime::Date(day) => json!({ "date": day.format("%Y-%m-%d").to_string() }),
            EventTime::DateTime { at, time_zone } => {
                let mut value = json!({ "dateTime": at.to_rfc3339_opts(SecondsFormat::Secs, true) });
                if let Some(zone) = time_zone {
                    value["timeZone"] = zone.as_str().into();
                }
                value
            }
        }
    }

    /// The instant this time stands for; an all-day date counts from midnight UTC (the fake's
    /// simplification of "midnight in the calendar's zone").
    pub(crate) fn instant(&self) -> DateTime<Utc> {
        match self {
            EventTime::Date(day) => day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc(),
            EventTime::DateTime { at, .. } => at.with_timezone(&Utc),
        }
    }

    /// How Google suffixes an instance id with its original start: `20250301` for all-day series,
    /// `20250301T090000Z` for timed ones.
    pub(crate) fn id_suffix(&self) -> String {
        match self {
            EventTime::Date(day) => day.format("%Y%m%d").to_string(),
            EventTime::DateTime { at, .. } => at.with_timezone(&Utc).format("%Y%m%dT%H%M%SZ").to_string(),
        }
    }

    fn is_timed_without_zone(&self) -> bool {
        matches!(self, EventTime::DateTime { time_zone: None, .. })
    }
}

fn parse_rfc3339(value: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(value).unwrap_or_else(|e| panic!("bad RFC 3339 timestamp {value}: {e}"))
}

/// An event as a test describes it. The fake adds what Google adds (`etag`, `created`,
/// `updated`, `sequence`, `iCalUID`, `htmlLink`, organizer and creator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    /// A client-chosen id (base32hex: `a`–`v` and digits, 5–1024 chars); `None` lets the fake
    /// pick one.
    pub id: Option<String>,
    /// `summary`.
    pub summary: String,
    /// `description`, if any.
    pub description: Option<String>,
    /// `location`, if any.
    pub location: Option<String>,
    /// `start`.
    pub start: EventTime,
    /// `end`.
    pub end: EventTime,
    /// `RRULE:`/`EXDATE:`/`RDATE:` lines; non-empty makes the event a recurring series (its master).
    pub recurrence: Vec<String>,
    /// `status: tentative` instead of `confirmed`.
    pub tentative: bool,
}

impl EventSpec {
    /// A timed event between two RFC 3339 timestamps.
    pub fn timed(summary: &str, start: &str, end: &str) -> Self {
        Self::new(summary, EventTime::at(start), EventTime::at(end))
    }

    /// An all-day event from `first_day` up to (not including) `end_day`.
    pub fn all_day(summary: &str, first_day: &str, end_day: &str) -> Self {
        Self::new(summary, EventTime::date(first_day), EventTime::date(end_day))
    }

    /// An event between two [`EventTime`]s.
    pub fn new(summary: &str, start: EventTime, end: EventTime) -> Self {
        EventSpec {
            id: None,
            summary: summary.to_owned(),
            description: None,
            location: None,
            start,
            end,
            recurrence: Vec::new(),
            tentative: false,
        }
    }

    /// With a client-chosen id.
    pub fn with_id(mut self, id: &str) -> Self {
        self.id = Some(id.to_owned());
        self
    }

    /// Adds a recurrence line, e.g. `RRULE:FREQ=DAILY;COUNT=5`.
    pub fn recurring(mut self, line: &str) -> Self {
        self.recurrence.push(line.to_owned());
        self
    }

    /// With a description.
    pub fn described(mut self, description: &str) -> Self {
        self.description = Some(description.to_owned());
        self
    }

    /// Panics where Google's `events.insert` would answer 400 for a client-chosen id.
    pub(crate) fn check_id(&self) {
        if let Some(id) = &self.id {
            let base32hex = id.chars().all(|c| matches!(c, 'a'..='v' | '0'..='9'));
            assert!(
                base32hex && (5..=1024).contains(&id.len()),
                "Google rejects event id {id:?}: Invalid resource id value."
            );
        }
    }

    /// Panics where Google's `events.insert`/`update` would answer 400 for the content.
    pub(crate) fn check(&self) {
        assert!(
            self.end.instant() >= self.start.instant(),
            "Google rejects {:?}: The specified time range is empty.",
            self.summary
        );
        if !self.recurrence.is_empty() {
            assert!(
                !self.start.is_timed_without_zone() && !self.end.is_timed_without_zone(),
                "Google rejects recurring {:?}: Missing time zone definition for start time.",
                self.summary
            );
        }
    }

    /// The end of the series from an `RRULE` `UNTIL=`; `None` when unbounded (or bounded by
    /// `COUNT`, which the fake does not expand).
    pub(crate) fn series_until(&self) -> Option<DateTime<Utc>> {
        let rule = self.recurrence.iter().find_map(|line| line.strip_prefix("RRULE:"))?;
        let until = rule.split(';').find_map(|part| part.strip_prefix("UNTIL="))?;
        let day = NaiveDate::parse_from_str(until.get(..8)?, "%Y%m%d").ok()?;
        Some(day.and_hms_opt(23, 59, 59)?.and_utc())
    }
}
