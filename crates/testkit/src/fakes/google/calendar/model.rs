//! The fake's calendars and events per Google user, and the change log that sync tokens point
//! into: every change takes the next global sequence number, which also makes the new etag.

use super::spec::{EventSpec, EventTime};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

/// One user's calendars (keyed by id) and which of them is `primary`.
pub(crate) struct UserCalendars {
    pub primary: String,
    pub calendars: BTreeMap<String, Calendar>,
    /// Bumped to invalidate this user's calendarList sync tokens.
    pub list_epoch: u64,
}

pub(crate) struct Calendar {
    pub id: String,
    pub summary: String,
    pub time_zone: String,
    pub primary: bool,
    pub deleted: bool,
    /// Creation order: the order lists are paged in.
    pub order: u64,
    /// The change that last touched the calendar-list entry.
    pub seq: u64,
    /// Bumped to invalidate this calendar's events sync tokens.
    pub epoch: u64,
    pub events: HashMap<String, Event>,
}

/// What kind of event a stored event is, as `singleEvents=false` shows it.
#[derive(Clone, Debug)]
pub(crate) enum Shape {
    /// A single event, or the master of a series when its spec has recurrence lines.
    Own,
    /// An exception of a series: a modified or cancelled instance.
    Instance { recurring_event_id: String, original_start: EventTime },
}

pub(crate) struct Event {
    pub id: String,
    pub spec: EventSpec,
    pub shape: Shape,
    pub cancelled: bool,
    pub order: u64,
    pub seq: u64,
    pub sequence: u64,
    pub created: SystemTime,
    pub updated: SystemTime,
}

impl Calendar {
    pub fn new(id: &str, summary: &str, primary: bool, order: u64, seq: u64) -> Self {
        Calendar {
            id: id.to_owned(),
            summary: summary.to_owned(),
            time_zone: "UTC".to_owned(),
            primary,
            deleted: false,
            order,
            seq,
            epoch: 0,
            events: HashMap::new(),
        }
    }

    /// The calendar-list entry; a deleted calendar shows only `id` and `deleted: true`.
    pub fn entry_json(&self) -> Value {
        let etag = etag(self.seq);
        if self.deleted {
            return json!({ "kind": "calendar#calendarListEntry", "etag": etag, "id": self.id, "deleted": true });
        }
        let mut entry = json!({
            "kind": "calendar#calendarListEntry",
            "etag": etag,
            "id": self.id,
            "summary": self.summary,
            "timeZone": self.time_zone,
            "colorId": "14",
            "backgroundColor": "#9fe1e7",
            "foregroundColor": "#000000",
            "selected": true,
            "accessRole": "owner",
            "defaultReminders": [],
        });
        if self.primary {
            entry["primary"] = true.into();
        }
        entry
    }

    /// The `Events` envelope without `items` and the page/sync token.
    pub fn events_envelope(&self) -> Value {
        let updated = self.events.values().map(|e| e.updated).max().map(rfc3339);
        json!({
            "kind": "calendar#events",
            "etag": etag(self.events.values().map(|e| e.seq).max().unwrap_or(self.seq)),
            "summary": self.summary,
            "description": "",
            "updated": updated.unwrap_or_else(|| rfc3339(SystemTime::UNIX_EPOCH)),
            "timeZone": self.time_zone,
            "accessRole": "owner",
            "defaultReminders": [{ "method": "popup", "minutes": 30 }],
        })
    }

    pub fn event_mut(&mut self, id: &str) -> &mut Event {
        let calendar = self.id.clone();
        self.events.get_mut(id).unwrap_or_else(|| panic!("no event {id} in calendar {calendar}"))
    }

    /// Live events in list order, as a full sync without `showDeleted` returns them.
    pub fn live_json(&self) -> Vec<Value> {
        let mut events: Vec<&Event> = self.events.values().filter(|e| !e.cancelled).collect();
        events.sort_by_key(|e| e.order);
        events.into_iter().map(|e| e.to_json(&self.id)).collect()
    }
}

impl Event {
    /// Google's event resource. A cancelled event carries only `id` and `status` (plus, for an
    /// instance, `recurringEventId` and `originalStartTime`): the least Google guarantees.
    pub fn to_json(&self, calendar_id: &str) -> Value {
        let mut event = json!({ "kind": "calendar#event", "etag": etag(self.seq), "id": self.id });
        if self.cancelled {
            event["status"] = "cancelled".into();
        } else {
            let spec = &self.spec;
            let status = if spec.tentative { "tentative" } else { "confirmed" };
            let master = match &self.shape {
                Shape::Own => &self.id,
                Shape::Instance { recurring_event_id, .. } => recurring_event_id,
            };
            let fields = json!({
                "status": status,
                "htmlLink": format!("https://www.google.com/calendar/event?eid={}", self.id),
                "created": rfc3339(self.created),
                "updated": rfc3339(self.updated),
                "summary": spec.summary,
                "creator": { "email": calendar_id, "self": true },
                "organizer": { "email": calendar_id, "self": true },
                "start": spec.start.to_json(),
                "end": spec.end.to_json(),
                "iCalUID": format!("{master}@google.com"),
                "sequence": self.sequence,
                "reminders": { "useDefault": true },
                "eventType": "default",
            });
            event.as_object_mut().expect("an object").extend(fields.as_object().expect("an object").clone());
            if let Some(description) = &spec.description {
                event["description"] = description.as_str().into();
            }
            if let Some(location) = &spec.location {
                event["location"] = location.as_str().into();
            }
            if !spec.recurrence.is_empty() && matches!(self.shape, Shape::Own) {
                event["recurrence"] = spec.recurrence.clone().into();
            }
        }
        if let Shape::Instance { recurring_event_id, original_start } = &self.shape {
            event["recurringEventId"] = recurring_event_id.as_str().into();
            event["originalStartTime"] = original_start.to_json();
        }
        event
    }

    /// Whether the event overlaps `(time_min, time_max)` as `events.list` bounds it: `timeMin`
    /// bounds the END, `timeMax` the START, both exclusive. A series counts until its `UNTIL`.
    pub fn overlaps(&self, time_min: Option<DateTime<Utc>>, time_max: Option<DateTime<Utc>>) -> bool {
        let start = match &self.shape {
            Shape::Instance { original_start, .. } if self.cancelled => original_start.instant(),
            _ => self.spec.start.instant(),
        };
        let end = if self.spec.recurrence.is_empty() || !matches!(self.shape, Shape::Own) {
            Some(self.spec.end.instant().max(start))
        } else {
            self.spec.series_until()
        };
        time_min.is_none_or(|min| end.is_none_or(|end| end > min)) && time_max.is_none_or(|max| start < max)
    }
}

/// A quoted etag from the change that made a version; unique per version.
pub(crate) fn etag(seq: u64) -> String {
    format!("\"{}\"", 3_400_000_000_000_000 + seq)
}

/// RFC 3339 in UTC with milliseconds, as Google writes `updated`.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Millis, true)
}
