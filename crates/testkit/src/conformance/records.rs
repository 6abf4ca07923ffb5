//! Record scenarios: change seqs, restores and sweeps in page writes, the version check, list
//! filters and paging, tenant isolation, the change feed under concurrent writers, purge and
//! key rotation. Hashes and ciphertexts are small fake byte vectors: no vault is involved.

use super::sync::{active_connection, queued_and_claimed};
use super::*;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A connection with a claimed sync job whose lease page writes carry.
struct Fixture {
    scope: TenantScope,
    connection: Connection,
    lease: LeaseRef,
}

async fn fixture(store: &dyn Store, key: &str, now: DateTime<Utc>) -> Fixture {
    let (scope, connection) = active_connection(store, key).await;
    let (_, lease) = queued_and_claimed(store, &connection, now).await;
    Fixture { scope, connection, lease }
}

/// Fields whose hash and ciphertext are derived from `seed`.
fn fields(seed: u8) -> RecordFields {
    RecordFields { hash: vec![seed; 32], sealed: vec![seed, 0xAA, seed], key_id: 1, ..RecordFields::default() }
}

impl Fixture {
    fn id(&self, kind: RecordKind, pid: &str) -> RecordId {
        RecordId::derive(self.connection.id, kind, pid)
    }

    /// An event's id: under its calendar, as the engine derives it.
    fn event_id(&self, pid: &str, calendar: &str) -> RecordId {
        RecordId::derive_event(self.connection.id, calendar, pid)
    }

    fn upsert(&self, kind: RecordKind, pid: &str, parent: Option<&str>, fields: RecordFields) -> RecordWrite {
        let parent_kind =
            if kind == RecordKind::GoogleEvent { RecordKind::GoogleCalendar } else { RecordKind::MondayBoard };
        let id = match (kind, parent) {
            (RecordKind::GoogleEvent, Some(calendar)) => self.event_id(pid, calendar),
            _ => self.id(kind, pid),
        };
        RecordWrite {
            kind,
            id,
            provider_id: pid.into(),
            parent_id: parent.map(|p| self.id(parent_kind, p)),
            change: RecordChange::Upsert(fields),
        }
    }

    fn delete(&self, kind: RecordKind, pid: &str) -> RecordWrite {
        RecordWrite {
            kind,
            id: self.id(kind, pid),
            provider_id: pid.into(),
            parent_id: None,
            change: RecordChange::Delete,
        }
    }

    /// A tombstone of an event: events are found by calendar and event id together.
    fn delete_event(&self, pid: &str, calendar: &str) -> RecordWrite {
        RecordWrite {
            kind: RecordKind::GoogleEvent,
            id: self.event_id(pid, calendar),
            provider_id: pid.into(),
            parent_id: Some(self.id(RecordKind::GoogleCalendar, calendar)),
            change: RecordChange::Delete,
        }
    }

    fn page(
        &self,
        part: &str,
        version: i64,
        generation: i64,
        records: Vec<RecordWrite>,
        sweeps: Vec<Sweep>,
    ) -> PageWrite {
        PageWrite {
            tenant_id: self.scope.tenant_id(),
            connection_id: self.connection.id,
            lease: self.lease,
            generation,
            records,
            sweeps,
            state: StateWrite {
                part: part.into(),
                expected_version: version,
                checkpoint: serde_json::json!({ "after": version }),
                generation,
                success_at: None,
                full_at: None,
            },
            now: t0(),
        }
    }

    async fn get(&self, store: &dyn Store, kind: RecordKind, pid: &str) -> StoreResult<Record> {
        store.get_record(self.scope, self.connection.id, kind, self.id(kind, pid)).await
    }

    /// Every record of `kind` matching `filter`, by provider id, read through every page.
    async fn all(&self, store: &dyn Store, kind: RecordKind, filter: &RecordFilter, limit: u32) -> Vec<String> {
        let (mut ids, mut after) = (Vec::new(), None);
        loop {
            let page =
                store.list_records(self.scope, self.connection.id, kind, filter, Page::new(Some(limit), after)).await;
            let page = page.unwrap();
            assert!(page.items.len() <= limit as usize);
            ids.extend(page.items.into_iter().map(|r| r.provider_id));
            match page.next_cursor {
                Some(cursor) => after = Some(cursor),
                None => return ids,
            }
        }
    }
}

fn outcome(upserted: u64, unchanged: u64, deleted: u64, state_version: i64) -> PageOutcome {
    PageOutcome { upserted, unchanged, deleted, state_version }
}

/// Inserts, changes, deletes and restores take new seqs; an equal hash takes none.
pub async fn a_page_gives_change_seqs_to_changes_only(store: Arc<dyn Store>) {
    let now = t0();
    let f = fixture(&*store, "org:records-seq", now).await;
    let item = RecordKind::MondayItem;
    let page =
        f.page("items:1", 0, 1, ["a", "b", "c"].map(|p| f.upsert(item, p, Some("b1"), fields(1))).to_vec(), vec![]);
    assert_eq!(store.apply_page(page).await.unwrap(), outcome(3, 0, 0, 1));
    let a = f.get(&*store, item, "a").await.unwrap();
    let seqs = [
        a.change_seq,
        f.get(&*store, item, "b").await.unwrap().change_seq,
        f.get(&*store, item, "c").await.unwrap().change_seq,
    ];
    assert_eq!(seqs, [1, 2, 3], "inserts take increasing seqs");
    assert_eq!(
        (a.fields.clone(), a.parent_id, a.generation),
        (fields(1), Some(f.id(RecordKind::MondayBoard, "b1")), 1)
    );

    let records = vec![f.upsert(item, "a", Some("b1"), fields(1)), f.upsert(item, "b", Some("b1"), fields(2))];
    assert_eq!(store.apply_page(f.page("items:1", 1, 1, records, vec![])).await.unwrap(), outcome(1, 1, 0, 2));
    assert_eq!(f.get(&*store, item, "a").await.unwrap(), a, "an equal hash writes nothing");
    let b = f.get(&*store, item, "b").await.unwrap();
    assert_eq!((b.change_seq, b.fields.hash.clone()), (4, vec![2; 32]), "a changed hash takes a new seq");

    let deletes = vec![f.delete(item, "c"), f.delete(item, "missing")];
    assert_eq!(store.apply_page(f.page("items:1", 2, 1, deletes.clone(), vec![])).await.unwrap(), outcome(0, 0, 1, 3));
    let c = f.get(&*store, item, "c").await.unwrap();
    assert_eq!((c.change_seq, c.deleted_at.is_some()), (5, true), "a delete tombstones with a new seq");
    assert_eq!(store.apply_page(f.page("items:1", 3, 1, deletes, vec![])).await.unwrap(), outcome(0, 0, 0, 4));
    assert_eq!(f.get(&*store, item, "c").await.unwrap(), c, "deleting a tombstone is a no-op");

    let restore = vec![f.upsert(item, "c", Some("b1"), fields(1))];
    assert_eq!(store.apply_page(f.page("items:1", 4, 1, restore, vec![])).await.unwrap(), outcome(1, 0, 0, 5));
    let c = f.get(&*store, item, "c").await.unwrap();
    assert_eq!((c.change_seq, c.deleted_at), (6, None), "a restore revives the row with a new seq");

    let feed = store.change_feed(f.scope, f.connection.id, &[item], 0, 100).await.unwrap();
    let got: Vec<(String, i64)> = feed.records.into_iter().map(|r| (r.provider_id, r.change_seq)).collect();
    assert_eq!(got, [("a".to_string(), 1), ("b".into(), 4), ("c".into(), 6)]);
    assert_eq!(feed.high_water, 6);
    let tail = store.change_feed(f.scope, f.connection.id, &[item], 4, 100).await.unwrap();
    assert_eq!(tail.records.len(), 1, "only changes after `after`");
    let boards = store.change_feed(f.scope, f.connection.id, &[RecordKind::MondayBoard], 0, 100).await.unwrap();
    assert_eq!((boards.records.len(), boards.high_water), (0, 6), "other kinds are left out");

    let written = store.upsert_records(f.scope, f.connection.id, vec![f.upsert(item, "a", Some("b1"), fields(9))], now);
    assert_eq!(written.await.unwrap(), outcome(1, 0, 0, 0), "a write-back needs no lease");
    let a = f.get(&*store, item, "a").await.unwrap();
    assert_eq!((a.change_seq, a.generation), (7, 1), "a write-back takes a seq and keeps the generation");
}

/// A page naming a stale version or a lost lease writes nothing at all.
pub async fn a_stale_page_is_refused_and_a_checkpoint_never_goes_back(store: Arc<dyn Store>) {
    let now = t0();
    let f = fixture(&*store, "org:records-stale", now).await;
    let item = RecordKind::MondayItem;
    store.apply_page(f.page("items:1", 0, 1, vec![f.upsert(item, "a", None, fields(1))], vec![])).await.unwrap();
    let state = store.sync_state(f.connection.id, "items:1").await.unwrap().unwrap();

    let stale = f.page(
        "items:1",
        0,
        1,
        vec![f.upsert(item, "x", None, fields(1)), f.upsert(item, "a", None, fields(2))],
        vec![],
    );
    let result = store.apply_page(stale).await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "a stale version is refused: {result:?}");
    assert!(matches!(f.get(&*store, item, "x").await, Err(StoreError::NotFound)), "no record written");
    assert_eq!(f.get(&*store, item, "a").await.unwrap().fields, fields(1));
    assert_eq!(store.sync_state(f.connection.id, "items:1").await.unwrap(), Some(state), "the checkpoint stays");
    let feed = store.change_feed(f.scope, f.connection.id, &[item], 0, 10).await.unwrap();
    assert_eq!(feed.high_water, 1, "no seq was taken");

    let claim = Claim { owner: "other", kinds: &[], lease: chrono::Duration::seconds(30), now: secs(now, 31) };
    store.claim(claim).await.unwrap().expect("the lapsed lease is reclaimed");
    let result = store.apply_page(f.page("items:1", 1, 1, vec![f.upsert(item, "y", None, fields(1))], vec![])).await;
    assert!(matches!(result, Err(StoreError::LeaseLost)), "a lost lease is refused: {result:?}");
    assert!(matches!(f.get(&*store, item, "y").await, Err(StoreError::NotFound)));
    assert_eq!(store.sync_state(f.connection.id, "items:1").await.unwrap().unwrap().version, 1);
}

/// A sweep tombstones the live rows of older generations under its parent, and only those.
pub async fn a_sweep_tombstones_only_older_generations_under_its_parent(store: Arc<dyn Store>) {
    let now = t0();
    let f = fixture(&*store, "org:records-sweep", now).await;
    let item = RecordKind::MondayItem;
    let mut first: Vec<RecordWrite> = ["i1", "i2", "i3"].map(|p| f.upsert(item, p, Some("p1"), fields(1))).to_vec();
    first.push(f.upsert(item, "j1", Some("p2"), fields(1)));
    store.apply_page(f.page("items", 0, 1, first, vec![])).await.unwrap();
    let i1 = f.get(&*store, item, "i1").await.unwrap();

    let seen = vec![f.upsert(item, "i1", Some("p1"), fields(1)), f.upsert(item, "i2", Some("p1"), fields(2))];
    let sweep = Sweep { kind: item, parent_id: Some(f.id(RecordKind::MondayBoard, "p1")), generation: 2 };
    assert_eq!(store.apply_page(f.page("items", 1, 2, seen, vec![sweep])).await.unwrap(), outcome(1, 1, 1, 2));
    let i1_after = f.get(&*store, item, "i1").await.unwrap();
    assert_eq!((i1_after.generation, i1_after.change_seq, i1_after.updated_at), (2, i1.change_seq, i1.updated_at));
    let i3 = f.get(&*store, item, "i3").await.unwrap();
    assert!(i3.deleted_at.is_some(), "unseen under the parent: tombstoned");
    assert_eq!(i3.change_seq, 6, "after the page's own change (i2 = 5)");
    assert!(f.get(&*store, item, "j1").await.unwrap().deleted_at.is_none(), "another parent is untouched");

    let everything = Sweep { kind: item, parent_id: None, generation: 3 };
    assert_eq!(store.apply_page(f.page("items", 2, 3, vec![], vec![everything])).await.unwrap(), outcome(0, 0, 3, 3));
    let live = f.all(&*store, item, &RecordFilter::default(), 100).await;
    assert!(live.is_empty(), "a connection-wide sweep leaves nothing live: {live:?}");
    let feed = store.change_feed(f.scope, f.connection.id, &[item], 0, 100).await.unwrap();
    let seqs: Vec<i64> = feed.records.iter().map(|r| r.change_seq).collect();
    assert_eq!((seqs.len(), feed.high_water), (4, 9), "each tombstone its own seq: {seqs:?}");
}

/// List filters (parent, provider id, series, time window with open ends, tombstones) and paging.
pub async fn list_records_filters_and_pages_by_id(store: Arc<dyn Store>) {
    let now = t0();
    let f = fixture(&*store, "org:records-list", now).await;
    let (event, h) = (RecordKind::GoogleEvent, |n: i64| secs(now, n * 3600));
    let timed = |pid: &str, parent: &str, starts: Option<i64>, ends: Option<i64>, series: Option<&str>| {
        let fields = RecordFields {
            starts_at: starts.map(h),
            ends_at: ends.map(h),
            series_id: series.map(Into::into),
            ..fields(1)
        };
        f.upsert(event, pid, Some(parent), fields)
    };
    let records = vec![
        timed("e1", "c1", Some(0), Some(1), None),
        timed("e2", "c1", Some(2), Some(3), Some("m1")),
        timed("e3", "c1", Some(1), None, None),
        timed("e4", "c1", None, None, None),
        timed("e5", "c2", Some(0), Some(1), None),
        timed("e6", "c1", Some(0), Some(9), None),
        f.delete_event("e6", "c1"),
    ];
    store.apply_page(f.page("events", 0, 1, records, vec![])).await.unwrap();
    let c1 = Some(f.id(RecordKind::GoogleCalendar, "c1"));
    let set = |ids: Vec<String>| ids.into_iter().collect::<BTreeSet<_>>();
    let expect = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let under_c1 = RecordFilter { parent_id: c1, ..RecordFilter::default() };
    assert_eq!(set(f.all(&*store, event, &under_c1, 100).await), expect(&["e1", "e2", "e3", "e4"]));
    let with_deleted = RecordFilter { include_deleted: true, ..under_c1.clone() };
    assert_eq!(set(f.all(&*store, event, &with_deleted, 100).await), expect(&["e1", "e2", "e3", "e4", "e6"]));
    let window = RecordFilter { time_min: Some(secs(now, 5400)), time_max: Some(secs(now, 9000)), ..under_c1.clone() };
    assert_eq!(set(f.all(&*store, event, &window, 100).await), expect(&["e2", "e3"]), "overlap, open end unbounded");
    let from = RecordFilter { time_min: Some(h(4)), ..under_c1.clone() };
    assert_eq!(set(f.all(&*store, event, &from, 100).await), expect(&["e3"]));
    let until = RecordFilter { time_max: Some(h(1)), ..RecordFilter::default() };
    assert_eq!(set(f.all(&*store, event, &until, 100).await), expect(&["e1", "e5"]), "no start never matches");
    let series = RecordFilter { series_id: Some("m1".into()), ..RecordFilter::default() };
    assert_eq!(f.all(&*store, event, &series, 100).await, ["e2"]);
    let by_pid = RecordFilter { provider_id: Some("e5".into()), ..RecordFilter::default() };
    assert_eq!(f.all(&*store, event, &by_pid, 100).await, ["e5"]);

    let paged = f.all(&*store, event, &RecordFilter::default(), 2).await;
    let calendar_of = |pid: &str| if pid == "e5" { "c2" } else { "c1" };
    let mut by_id: Vec<(RecordId, String)> = paged.iter().map(|p| (f.event_id(p, calendar_of(p)), p.clone())).collect();
    let listed = by_id.clone();
    by_id.sort();
    assert_eq!(listed, by_id, "pages follow id order");
    assert_eq!(set(paged), expect(&["e1", "e2", "e3", "e4", "e5"]), "every live record once, across pages of 2");
}

/// Google event ids are unique only within a calendar: the same id under two calendars is two
/// records, each written, read, changed and tombstoned on its own; an event write that names no
/// calendar is refused and writes nothing.
pub async fn the_same_event_id_under_two_calendars_is_two_records(store: Arc<dyn Store>) {
    let now = t0();
    let f = fixture(&*store, "org:records-two-calendars", now).await;
    let event = RecordKind::GoogleEvent;
    let records = vec![f.upsert(event, "meet", Some("c1"), fields(1)), f.upsert(event, "meet", Some("c2"), fields(2))];
    assert_eq!(store.apply_page(f.page("events", 0, 1, records, vec![])).await.unwrap(), outcome(2, 0, 0, 1));
    let (in_c1, in_c2) = (f.event_id("meet", "c1"), f.event_id("meet", "c2"));
    assert_ne!(in_c1, in_c2, "the calendar is part of the derived id");
    let get = |id: RecordId| store.get_record(f.scope, f.connection.id, event, id);
    let (one, two) = (get(in_c1).await.unwrap(), get(in_c2).await.unwrap());
    assert_eq!(
        (one.fields.sealed.clone(), one.parent_id),
        (fields(1).sealed, Some(f.id(RecordKind::GoogleCalendar, "c1")))
    );
    assert_eq!(
        (two.fields.sealed.clone(), two.parent_id),
        (fields(2).sealed, Some(f.id(RecordKind::GoogleCalendar, "c2")))
    );
    let under = |calendar: &str| RecordFilter {
        parent_id: Some(f.id(RecordKind::GoogleCalendar, calendar)),
        provider_id: Some("meet".into()),
        ..RecordFilter::default()
    };
    for (calendar, want) in [("c1", &one), ("c2", &two)] {
        let page = store.list_records(f.scope, f.connection.id, event, &under(calendar), Page::first()).await.unwrap();
        assert_eq!(page.items, std::slice::from_ref(want), "the provider id filter under {calendar} finds its own row");
    }

    // A change in one calendar leaves the other; so does a cancellation.
    let records = vec![f.upsert(event, "meet", Some("c1"), fields(3)), f.upsert(event, "meet", Some("c2"), fields(2))];
    assert_eq!(store.apply_page(f.page("events", 1, 2, records, vec![])).await.unwrap(), outcome(1, 1, 0, 2));
    assert_eq!(get(in_c1).await.unwrap().fields.sealed, fields(3).sealed);
    assert_eq!(get(in_c2).await.unwrap().change_seq, two.change_seq, "the other calendar's row is untouched");
    let page = f.page("events", 2, 2, vec![f.delete_event("meet", "c2")], vec![]);
    assert_eq!(store.apply_page(page).await.unwrap(), outcome(0, 0, 1, 3));
    let (one, two) = (get(in_c1).await.unwrap(), get(in_c2).await.unwrap());
    assert!(one.deleted_at.is_none() && two.deleted_at.is_some(), "only c2's copy is tombstoned");
    let feed = store.change_feed(f.scope, f.connection.id, &[event], 0, 100).await.unwrap();
    let last: std::collections::BTreeMap<RecordId, bool> =
        feed.records.iter().map(|r| (r.id, r.deleted_at.is_none())).collect();
    assert_eq!(last, [(in_c1, true), (in_c2, false)].into_iter().collect(), "the feed ends with c1 live, c2 gone");

    // A sweep under one calendar leaves the other calendar's copy.
    let records = vec![f.upsert(event, "meet", Some("c2"), fields(4))];
    let sweep = Sweep { kind: event, parent_id: Some(f.id(RecordKind::GoogleCalendar, "c2")), generation: 10 };
    store.apply_page(f.page("events", 3, 9, records, vec![])).await.unwrap();
    store.apply_page(f.page("events", 4, 10, vec![], vec![sweep])).await.unwrap();
    assert!(get(in_c1).await.unwrap().deleted_at.is_none(), "c1's copy is not swept with c2");
    assert!(get(in_c2).await.unwrap().deleted_at.is_some());

    let mut orphan = f.upsert(event, "loose", Some("c1"), fields(5));
    orphan.parent_id = None;
    let refused = store.apply_page(f.page("events", 5, 10, vec![orphan], vec![])).await;
    assert!(refused.is_err(), "an event without a calendar is refused: {refused:?}");
    assert!(matches!(get(f.event_id("loose", "c1")).await, Err(StoreError::NotFound)), "nothing written");
    assert_eq!(store.sync_state(f.connection.id, "events").await.unwrap().unwrap().version, 5, "no checkpoint either");
}

/// Another tenant's scope reads nothing of the connection and writes nothing to it.
pub async fn records_are_invisible_to_other_tenants(store: Arc<dyn Store>) {
    let now = t0();
    let f = fixture(&*store, "org:records-mine", now).await;
    let (other, _) = tenant_with_user(&*store, "org:records-theirs").await;
    let item = RecordKind::MondayItem;
    store.apply_page(f.page("items", 0, 1, vec![f.upsert(item, "a", None, fields(1))], vec![])).await.unwrap();
    let id = f.id(item, "a");
    assert!(matches!(store.get_record(other, f.connection.id, item, id).await, Err(StoreError::NotFound)));
    let listed = store.list_records(other, f.connection.id, item, &RecordFilter::default(), Page::first()).await;
    assert!(
        matches!(&listed, Err(StoreError::NotFound)) || listed.as_ref().is_ok_and(|p| p.items.is_empty()),
        "{listed:?}"
    );
    let feed = store.change_feed(other, f.connection.id, &[item], 0, 10).await;
    assert!(matches!(feed, Err(StoreError::NotFound)), "{feed:?}");
    let written = store.upsert_records(other, f.connection.id, vec![f.upsert(item, "b", None, fields(1))], now).await;
    assert!(matches!(written, Err(StoreError::NotFound)), "{written:?}");
    assert!(matches!(f.get(&*store, item, "b").await, Err(StoreError::NotFound)), "nothing written");
    let runs = store.list_sync_runs(f.scope, f.connection.id, Page::first()).await.unwrap().items;
    assert!(matches!(store.get_sync_run(other, runs[0].id).await, Err(StoreError::NotFound)));
    assert!(store.list_sync_runs(other, f.connection.id, Page::first()).await.unwrap().items.is_empty());
}

/// Purge deletes at most a batch per call, then the sync bookkeeping, until it answers 0.
pub async fn purge_deletes_records_in_batches_until_nothing_is_left(store: Arc<dyn Store>) {
    let now = t0();
    let f = fixture(&*store, "org:records-purge", now).await;
    let mut records: Vec<RecordWrite> =
        (0..25).map(|n| f.upsert(RecordKind::MondayItem, &format!("i{n}"), None, fields(1))).collect();
    records.extend((0..3).map(|n| f.upsert(RecordKind::MondayBoard, &format!("b{n}"), None, fields(1))));
    records.push(f.delete(RecordKind::MondayItem, "i0"));
    store.apply_page(f.page("items", 0, 1, records, vec![])).await.unwrap();
    store.mark_dirty(f.connection.id, "boards", now).await.unwrap();

    assert_eq!(store.purge_connection_records(f.connection.id, 10).await.unwrap(), 10, "a full batch");
    let mut calls = 1;
    while store.purge_connection_records(f.connection.id, 10).await.unwrap() > 0 {
        calls += 1;
        assert!(calls < 10, "purge ends");
    }
    for kind in [RecordKind::MondayItem, RecordKind::MondayBoard] {
        let all = RecordFilter { include_deleted: true, ..RecordFilter::default() };
        assert!(f.all(&*store, kind, &all, 100).await.is_empty(), "no {kind} left");
    }
    assert!(store.sync_states(f.connection.id).await.unwrap().is_empty(), "states go too");
    let feed = store.change_feed(f.scope, f.connection.id, RecordKind::of_provider(ProviderId::Monday), 0, 10).await;
    assert_eq!(feed.unwrap().high_water, 0, "and the sequence");
    assert_eq!(store.purge_connection_records(f.connection.id, 10).await.unwrap(), 0);
}

/// Key usage counts record ciphertexts; a rewrap lands only over the ciphertext it read.
pub async fn record_rewraps_are_guarded_by_the_old_ciphertext(store: Arc<dyn Store>) {
    let now = t0();
    let f = fixture(&*store, "org:records-rewrap", now).await;
    let under = |key_id: u32, seed: u8| RecordFields { key_id, ..fields(seed) };
    let records = vec![
        f.upsert(RecordKind::MondayItem, "a", None, under(1, 1)),
        f.upsert(RecordKind::MondayItem, "b", None, under(1, 2)),
        f.upsert(RecordKind::MondayBoard, "c", None, under(1, 3)),
        f.upsert(RecordKind::MondayBoard, "d", None, under(2, 4)),
    ];
    store.apply_page(f.page("all", 0, 1, records, vec![])).await.unwrap();
    let usage = |k1, k2| vec![RecordKeyUsage { key_id: 1, records: k1 }, RecordKeyUsage { key_id: 2, records: k2 }];
    assert_eq!(store.record_key_usage().await.unwrap(), usage(3, 1));
    let stale = store.records_to_rewrap(2, 100).await.unwrap();
    let mut names: Vec<&str> = stale.iter().map(|r| r.provider_id.as_str()).collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);

    let a = f.get(&*store, RecordKind::MondayItem, "a").await.unwrap();
    let rewrap = Rewrap { key_id: 2, sealed: vec![7, 7], hash: vec![8; 32] };
    assert!(store.rewrap_record(RecordKind::MondayItem, a.id, &a.fields.sealed, rewrap.clone()).await.unwrap());
    let after = f.get(&*store, RecordKind::MondayItem, "a").await.unwrap();
    assert_eq!(
        (after.fields.key_id, after.fields.sealed.clone(), after.fields.hash.clone()),
        (2, vec![7, 7], vec![8; 32])
    );
    assert_eq!(after.change_seq, a.change_seq, "a rewrap is not a change");
    assert!(
        !store.rewrap_record(RecordKind::MondayItem, a.id, &a.fields.sealed, rewrap.clone()).await.unwrap(),
        "old ciphertext gone"
    );

    let b = f.get(&*store, RecordKind::MondayItem, "b").await.unwrap();
    store
        .apply_page(f.page("all", 1, 1, vec![f.upsert(RecordKind::MondayItem, "b", None, under(1, 9))], vec![]))
        .await
        .unwrap();
    assert!(
        !store.rewrap_record(RecordKind::MondayItem, b.id, &b.fields.sealed, rewrap).await.unwrap(),
        "a sync rewrote it meanwhile"
    );
    assert_eq!(store.record_key_usage().await.unwrap(), usage(2, 2));
}

/// The read API's page validator: `readable_connection` answers the visible connection with
/// its record high-water mark, which every write that changes what a page answers moves (a sync
/// upsert, a tombstone, a sweep, a write-back) and which nothing else moves (an unchanged page,
/// a rewrap: same opened content). Another tenant gets `NotFound`.
pub async fn the_record_seq_moves_with_every_record_write(store: Arc<dyn Store>) {
    let now = t0();
    let f = fixture(&*store, "org:records-validator", now).await;
    let item = RecordKind::MondayItem;
    let seq = || async { store.readable_connection(f.scope, f.connection.id).await.unwrap().record_seq };
    let first = store.readable_connection(f.scope, f.connection.id).await.unwrap();
    assert_eq!(first.connection, store.get_connection(f.scope, f.connection.id).await.unwrap());
    assert_eq!(first.record_seq, 0, "no record written yet");

    let two = vec![f.upsert(item, "a", None, fields(1)), f.upsert(item, "b", None, fields(2))];
    store.apply_page(f.page("items", 0, 1, two.clone(), vec![])).await.unwrap();
    let upserted = seq().await;
    assert!(upserted > 0, "a sync upsert moves it");
    store.apply_page(f.page("items", 1, 1, two, vec![])).await.unwrap();
    assert_eq!(seq().await, upserted, "an unchanged page does not");
    store.apply_page(f.page("items", 2, 1, vec![f.upsert(item, "a", None, fields(3))], vec![])).await.unwrap();
    let changed = seq().await;
    assert!(changed > upserted, "a changed record moves it");

    store.apply_page(f.page("items", 3, 1, vec![f.delete(item, "a")], vec![])).await.unwrap();
    let tombstoned = seq().await;
    assert!(tombstoned > changed, "a tombstone moves it");
    let sweep = Sweep { kind: item, parent_id: None, generation: 2 };
    let page = f.page("items", 4, 2, vec![f.upsert(item, "c", None, fields(4))], vec![sweep]);
    store.apply_page(page).await.unwrap();
    assert!(f.get(&*store, item, "b").await.unwrap().deleted_at.is_some(), "the sweep tombstoned b");
    let swept = seq().await;
    assert!(swept > tombstoned + 1, "the sweep's tombstone moves it beyond the upsert of its page");

    store.upsert_records(f.scope, f.connection.id, vec![f.upsert(item, "c", None, fields(5))], now).await.unwrap();
    let written_back = seq().await;
    assert!(written_back > swept, "a write-back moves it");

    let c = f.get(&*store, item, "c").await.unwrap();
    let rewrap = Rewrap { key_id: 2, sealed: vec![7, 7], hash: vec![8; 32] };
    assert!(store.rewrap_record(item, c.id, &c.fields.sealed, rewrap).await.unwrap());
    assert_eq!(seq().await, written_back, "a rewrap (same opened content) does not");

    let (other, _) = tenant_with_user(&*store, "org:records-validator-other").await;
    let foreign = store.readable_connection(other, f.connection.id).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "{foreign:?}");
}

/// `parent_must_exist`: a page under a parent answers its rows only while the parent record
/// exists (tombstoned or not), in the page's own statement, and never another tenant's.
pub async fn a_page_can_require_its_parent_in_the_same_query(store: Arc<dyn Store>) {
    let now = t0();
    let f = fixture(&*store, "org:records-parent-check", now).await;
    let (item, board) = (RecordKind::MondayItem, RecordKind::MondayBoard);
    let items = (0..3).map(|n| f.upsert(item, &format!("i{n}"), Some("b1"), fields(n))).collect();
    store.apply_page(f.page("items", 0, 1, items, vec![])).await.unwrap();
    let under = RecordFilter { parent_id: Some(f.id(board, "b1")), ..RecordFilter::default() };
    let checked = RecordFilter { parent_must_exist: Some(board), ..under.clone() };
    let all = f.all(&*store, item, &under, 10).await;
    assert_eq!(all.len(), 3, "without the check: the items");
    assert!(f.all(&*store, item, &checked, 10).await.is_empty(), "no board b1 yet: nothing");
    store.apply_page(f.page("items", 1, 1, vec![f.upsert(board, "b1", None, fields(9))], vec![])).await.unwrap();
    assert_eq!(f.all(&*store, item, &checked, 2).await, all, "with the board: the same items, in pages");
    store.apply_page(f.page("items", 2, 1, vec![f.delete(board, "b1")], vec![])).await.unwrap();
    assert_eq!(f.all(&*store, item, &checked, 10).await.len(), 3, "a tombstoned parent still exists");
    let (other, _) = tenant_with_user(&*store, "org:records-parent-check-other").await;
    let page = store.list_records(other, f.connection.id, item, &checked, Page::first()).await;
    assert!(page.is_err() || page.is_ok_and(|p| p.items.is_empty()), "another tenant reads nothing");
}
