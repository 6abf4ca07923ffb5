//! Record views: the clear columns every record answers with, and per kind the fields opened
//! from its sealed provider JSON (read straight into these structs: the provider's names on the
//! way in, snake_case on the way out).

use chrono::{DateTime, Utc};
use patchbay_store::{Record, RecordKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The clear part of every record view.
#[derive(Debug, Serialize, ToSchema)]
pub struct Meta {
    /// Patchbay's id of the record (what paths take).
    #[schema(format = Uuid)]
    pub id: String,
    /// The provider's id (what filters take).
    pub provider_id: String,
    /// The board (columns, groups, items) or calendar (events) it belongs to.
    #[schema(format = Uuid)]
    pub parent_id: Option<String>,
    /// Per-connection change sequence of its last change.
    pub change_seq: i64,
    /// When Patchbay last stored a change of it.
    pub updated_at: DateTime<Utc>,
    /// A tombstone: the provider deleted (or archived) it.
    pub deleted: bool,
    /// Its sealed content cannot be opened (missing vault key or corrupt row; logged): only
    /// the clear fields are answered.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unreadable: bool,
}

impl Meta {
    pub fn of(record: &Record, unreadable: bool) -> Self {
        Self {
            id: record.id.to_string(),
            provider_id: record.provider_id.clone(),
            parent_id: record.parent_id.map(|p| p.to_string()),
            change_seq: record.change_seq,
            updated_at: record.updated_at,
            deleted: record.deleted_at.is_some(),
            unreadable,
        }
    }
}

/// A monday board's own fields.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct BoardFields {
    pub name: Option<String>,
    /// `active`, `archived`, `deleted`.
    pub state: Option<String>,
    /// `public`, `private`, `share`.
    pub board_kind: Option<String>,
    #[schema(value_type = Option<String>)]
    pub workspace_id: Option<Value>,
}

/// A monday column (its own record, parent = board).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct ColumnFields {
    pub id: Option<String>,
    pub title: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// A monday group (its own record, parent = board).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct GroupFields {
    pub id: Option<String>,
    pub title: Option<String>,
}

/// One column value of an item, as monday answers it.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct ColumnValue {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub text: Option<String>,
    /// monday's JSON value (a JSON string in monday's API), passed through.
    #[schema(value_type = Option<Object>)]
    pub value: Option<Value>,
}

/// A monday item's own fields.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct ItemFields {
    pub name: Option<String>,
    pub state: Option<String>,
    pub group: Option<GroupFields>,
    pub column_values: Vec<ColumnValue>,
    /// monday's `updated_at`.
    #[serde(rename(serialize = "provider_updated_at"))]
    pub updated_at: Option<String>,
}

/// A Google calendar (calendar list entry).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct CalendarFields {
    pub summary: Option<String>,
    pub description: Option<String>,
    #[serde(rename(deserialize = "timeZone"))]
    pub time_zone: Option<String>,
    pub primary: Option<bool>,
    #[serde(rename(deserialize = "accessRole"))]
    pub access_role: Option<String>,
}

/// A Google `EventDateTime`.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct EventTime {
    /// All-day events: the date.
    pub date: Option<String>,
    /// Timed events: RFC 3339 with offset.
    #[serde(rename(deserialize = "dateTime"))]
    pub date_time: Option<String>,
    #[serde(rename(deserialize = "timeZone"))]
    pub time_zone: Option<String>,
}

/// A Google event's fields.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct EventFields {
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub status: Option<String>,
    pub start: Option<EventTime>,
    pub end: Option<EventTime>,
    /// RRULE / RDATE / EXDATE lines of a recurring master.
    pub recurrence: Option<Vec<String>>,
    #[serde(rename(deserialize = "recurringEventId"))]
    pub recurring_event_id: Option<String>,
    #[serde(rename(deserialize = "originalStartTime"))]
    pub original_start: Option<EventTime>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub attendees: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub organizer: Option<Value>,
    #[serde(rename(deserialize = "htmlLink"))]
    pub html_link: Option<String>,
    pub updated: Option<String>,
}

/// Any record's fields, for change feeds (boards without their nested columns and groups:
/// those come through the feed as records of their own).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AnyFields {
    Board(BoardFields),
    Column(ColumnFields),
    Group(GroupFields),
    Item(ItemFields),
    Calendar(CalendarFields),
    Event(Box<EventFields>),
}

impl AnyFields {
    /// Opens a record of any kind.
    pub fn open(sealer: &patchbay_sync::seal::Sealer, record: &Record) -> Option<Self> {
        use super::open;
        Some(match record.kind {
            RecordKind::MondayBoard => Self::Board(open(sealer, record)?),
            RecordKind::MondayColumn => Self::Column(open(sealer, record)?),
            RecordKind::MondayGroup => Self::Group(open(sealer, record)?),
            RecordKind::MondayItem => Self::Item(open(sealer, record)?),
            RecordKind::GoogleCalendar => Self::Calendar(open(sealer, record)?),
            RecordKind::GoogleEvent => Self::Event(Box::new(open(sealer, record)?)),
        })
    }
}

/// A record with its opened fields flattened beside its clear ones.
#[derive(Debug, Serialize, ToSchema)]
pub struct View<F: ToSchema> {
    #[serde(flatten)]
    pub meta: Meta,
    #[serde(flatten)]
    pub fields: Option<F>,
}

impl<F: ToSchema + serde::de::DeserializeOwned> View<F> {
    /// Opens `record` into its view (clear fields and `unreadable` when it cannot be opened).
    pub fn open(sealer: &patchbay_sync::seal::Sealer, record: &Record) -> Self {
        let fields: Option<F> = super::open(sealer, record);
        Self { meta: Meta::of(record, fields.is_none()), fields }
    }
}
