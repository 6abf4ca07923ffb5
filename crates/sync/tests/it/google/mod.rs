//! The Google Calendar engine against the fake Calendar API and a real store: what the store
//! holds after a run is compared with what the fake serves.

mod basic;
mod calendar_key;
mod generations;
mod legacy_keys;
mod property;
mod scope;

use crate::support::World;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use patchbay_store::*;
use patchbay_sync::engine::{Engine, Scope};
use patchbay_sync::{google, SyncError};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tokio_util::sync::CancellationToken;

/// The fake user every scenario syncs.
pub const USER: &str = "alice";

/// The user's primary calendar id (the email, as Google's).
pub fn primary() -> String {
    format!("{USER}@gmail.test")
}

/// What a run wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub upserted: i64,
    pub deleted: i64,
}

/// One run over everything; the counts are returned even when the run failed part way.
pub async fn sync(world: &World, connection: &Connection) -> (Result<(), SyncError>, Counts) {
    sync_scoped(world, connection, Scope::Everything).await
}

pub async fn sync_scoped(world: &World, connection: &Connection, scope: Scope) -> (Result<(), SyncError>, Counts) {
    let lease = world.lease().await;
    let session = world.session(connection).await;
    let sealer = world.deps.sealer();
    let engine = Engine::new(&session, &sealer, lease, SyncRunId::new(), CancellationToken::new(), scope);
    let result = google::run(&engine).await;
    (result, Counts { upserted: engine.upserted(), deleted: engine.deleted() })
}

/// A run that must succeed.
pub async fn sync_ok(world: &World, connection: &Connection) -> Counts {
    let (result, counts) = sync(world, connection).await;
    result.expect("the sync succeeds");
    counts
}

/// Every record of `kind` under `parent` (tombstones too), by provider id. A provider id held
/// by a live row and a tombstone under one parent (an event re-keyed by calendar, its old row
/// swept) maps to the live row.
pub async fn records(
    world: &World,
    connection: &Connection,
    kind: RecordKind,
    parent: Option<RecordId>,
) -> BTreeMap<String, Record> {
    let mut all: BTreeMap<String, Record> = BTreeMap::new();
    for record in all_records(world, connection, kind, parent).await {
        let kept_live = all.get(&record.provider_id).is_some_and(|r| r.deleted_at.is_none());
        if !(kept_live && record.deleted_at.is_some()) {
            all.insert(record.provider_id.clone(), record);
        }
    }
    all
}

/// Every record of `kind` under `parent` (tombstones too), in id order.
pub async fn all_records(
    world: &World,
    connection: &Connection,
    kind: RecordKind,
    parent: Option<RecordId>,
) -> Vec<Record> {
    let scope = TenantScope::new(connection.tenant_id);
    let filter = RecordFilter { parent_id: parent, include_deleted: true, ..RecordFilter::default() };
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = world
            .store
            .list_records(scope, connection.id, kind, &filter, Page::new(Some(Page::MAX_LIMIT), after))
            .await
            .expect("list records");
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
}

/// The record id of a calendar of the connection.
pub fn calendar_id(connection: &Connection, calendar: &str) -> RecordId {
    RecordId::derive(connection.id, RecordKind::GoogleCalendar, calendar)
}

/// A calendar's live event records (cancelled instances included), by provider id.
pub async fn live_events(world: &World, connection: &Connection, calendar: &str) -> BTreeMap<String, Record> {
    let parent = Some(calendar_id(connection, calendar));
    let mut all = records(world, connection, RecordKind::GoogleEvent, parent).await;
    all.retain(|_, r| r.deleted_at.is_none());
    all
}

/// A record's sealed JSON, opened.
pub fn opened(world: &World, record: &Record) -> Value {
    world.deps.sealer().open(record).expect("the record opens")
}

/// What the store should show for a calendar: the fake's live events that a full sync bounded
/// at `now - days_back` lists (the window rule: a single event or exception whose end is after
/// the bound; a series whose `UNTIL` is after it, or that has none), as id → summary.
pub fn expected(world: &World, calendar: &str) -> BTreeMap<String, String> {
    let bound = Utc::now() - Duration::days(i64::from(world.deps.settings.google_days_back));
    world
        .google
        .events(USER, calendar)
        .into_iter()
        .filter(|event| event_end(event).is_none_or(|end| end > bound))
        .map(|event| (text(&event, "id"), text(&event, "summary")))
        .collect()
}

/// The stored live, not cancelled events of a calendar as id → opened summary.
pub async fn stored(world: &World, connection: &Connection, calendar: &str) -> BTreeMap<String, String> {
    live_events(world, connection, calendar)
        .await
        .into_iter()
        .filter(|(_, r)| r.fields.status.as_deref() != Some("cancelled"))
        .map(|(id, r)| (id, text(&opened(world, &r), "summary")))
        .collect()
}

/// Asserts the store holds exactly the fake's live events of `calendar` under the window rule.
pub async fn assert_matches(world: &World, connection: &Connection, calendar: &str, context: &str) {
    let want = expected(world, calendar);
    let have = stored(world, connection, calendar).await;
    // Only an instance of a series may stay as a cancelled record; a cancelled single event is a
    // deletion.
    for (id, record) in live_events(world, connection, calendar).await {
        if record.fields.status.as_deref() == Some("cancelled") {
            assert!(record.fields.series_id.is_some(), "{context}: cancelled event {id} kept without a series");
        }
    }
    assert_eq!(have, want, "{context}: the stored events of {calendar} differ from the fake's");
}

/// The live set a change-feed reader ends with after reading from 0 in small pages.
pub async fn feed_live_set(world: &World, connection: &Connection) -> BTreeSet<RecordId> {
    let scope = TenantScope::new(connection.tenant_id);
    let kinds = RecordKind::of_provider(ProviderId::Google);
    let mut live = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = world.store.change_feed(scope, connection.id, kinds, after, 37).await.expect("change feed");
        let Some(last) = page.records.last() else { break };
        after = last.change_seq;
        for record in page.records {
            live.insert(record.id, record.deleted_at.is_none());
        }
    }
    live.into_iter().filter(|(_, alive)| *alive).map(|(id, _)| id).collect()
}

/// The ids of every live Google record of the connection (calendars and events).
pub async fn live_set(world: &World, connection: &Connection) -> BTreeSet<RecordId> {
    let mut ids = BTreeSet::new();
    for kind in RecordKind::of_provider(ProviderId::Google) {
        let all = all_records(world, connection, *kind, None).await;
        ids.extend(all.iter().filter(|r| r.deleted_at.is_none()).map(|r| r.id));
    }
    ids
}

/// The change feed's high-water mark (every committed change is at or below it).
pub async fn high_water(world: &World, connection: &Connection) -> i64 {
    let scope = TenantScope::new(connection.tenant_id);
    let kinds = RecordKind::of_provider(ProviderId::Google);
    world.store.change_feed(scope, connection.id, kinds, 0, 1).await.expect("change feed").high_water
}

/// A string field of a JSON object ("" when missing).
pub fn text(value: &Value, field: &str) -> String {
    value.get(field).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// An event's end for the window rule: a series' `UNTIL` (end of that day) or `None` when it
/// has none; otherwise its end (never before its start).
fn event_end(event: &Value) -> Option<DateTime<Utc>> {
    if let Some(lines) = event.get("recurrence").and_then(Value::as_array) {
        let rule = lines.iter().filter_map(Value::as_str).find_map(|l| l.strip_prefix("RRULE:"))?;
        let until = rule.split(';').find_map(|p| p.strip_prefix("UNTIL="))?;
        let day = NaiveDate::parse_from_str(until.get(..8)?, "%Y%m%d").ok()?;
        return Some(day.and_hms_opt(23, 59, 59)?.and_utc());
    }
    let start = instant(&event["start"]);
    let end = instant(&event["end"]);
    Some(end.max(start))
}

fn instant(time: &Value) -> DateTime<Utc> {
    if let Some(at) = time.get("dateTime").and_then(Value::as_str) {
        return DateTime::parse_from_rfc3339(at).expect("an RFC 3339 dateTime").with_timezone(&Utc);
    }
    let day = NaiveDate::parse_from_str(&text(time, "date"), "%Y-%m-%d").expect("a date");
    day.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

/// `days` from today at `hour:00` UTC, as RFC 3339 with the given offset hours.
pub fn day_at(days: i64, hour: u32, offset_hours: i32) -> String {
    let day = Utc::now().date_naive() + Duration::days(days);
    let utc = day.and_hms_opt(hour, 0, 0).expect("a valid hour").and_utc();
    let offset = chrono::FixedOffset::east_opt(offset_hours * 3600).expect("a valid offset");
    utc.with_timezone(&offset).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `days` from today as `yyyy-mm-dd`.
pub fn day(days: i64) -> String {
    (Utc::now().date_naive() + Duration::days(days)).format("%Y-%m-%d").to_string()
}
