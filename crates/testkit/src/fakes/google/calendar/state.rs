//! The Calendar part of the fake's state: users' calendars, the change counter, issued page and
//! sync tokens, failure switches and counters; and the changes tests make through the handle.

use super::model::{Calendar, Event, Shape, UserCalendars};
use super::paging::{Cursor, SyncPoint};
use super::spec::{EventSpec, EventTime};
use super::ApiFailure;
use crate::fakes::common::random_token;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime};

#[derive(Default)]
pub(crate) struct ApiSwitches {
    pub failures: VecDeque<ApiFailure>,
    /// Requests still answered normally before the queued `failures` apply.
    pub pass_before_failures: usize,
    pub latency: Duration,
    /// Requests per minute per user; `None` = no limit.
    pub user_quota: Option<usize>,
    /// The quota's window; `None` = a minute (providers.md B8).
    pub quota_window: Option<Duration>,
    /// Page `n` of any listing holds at most `page_plan[n]` items; `0` makes an empty page that
    /// still carries a `nextPageToken`.
    pub page_plan: Vec<usize>,
}

#[derive(Default)]
pub(crate) struct ApiCounters {
    pub calls: usize,
    pub by_path: BTreeMap<String, usize>,
    pub rate_limited: usize,
    /// Admitted requests per user inside the quota window, by the fake's clock.
    pub windows: HashMap<String, VecDeque<SystemTime>>,
    /// Every request the per-user quota judged, oldest first.
    pub quota_log: Vec<QuotaRecord>,
}

/// One request the per-user quota judged: whose, when (the fake's clock), and whether it was
/// admitted (else answered 403 `userRateLimitExceeded`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaRecord {
    pub sub: String,
    pub at: SystemTime,
    pub admitted: bool,
}

#[derive(Default)]
pub(crate) struct CalendarState {
    pub users: HashMap<String, UserCalendars>,
    /// The change log's head: every change takes the next number.
    pub seq: u64,
    next_order: u64,
    pub cursors: HashMap<String, Cursor>,
    pub sync_tokens: HashMap<String, SyncPoint>,
    pub switches: ApiSwitches,
    pub counters: ApiCounters,
}

impl CalendarState {
    fn bump(&mut self) -> (u64, u64) {
        self.seq += 1;
        self.next_order += 1;
        (self.seq, self.next_order)
    }

    /// The user's calendars, creating the primary one (id = the email, as Google's) on first use.
    pub fn user(&mut self, sub: &str, email: &str) -> &mut UserCalendars {
        if !self.users.contains_key(sub) {
            let (seq, order) = self.bump();
            let primary = Calendar::new(email, email, true, order, seq);
            let calendars = BTreeMap::from([(email.to_owned(), primary)]);
            self.users.insert(sub.to_owned(), UserCalendars { primary: email.to_owned(), calendars, list_epoch: 0 });
        }
        self.users.get_mut(sub).expect("just ensured")
    }

    /// A calendar by id or `primary`, deleted or not.
    pub fn calendar(&mut self, sub: &str, email: &str, id: &str) -> Option<&mut Calendar> {
        let user = self.user(sub, email);
        let id = if id == "primary" { user.primary.clone() } else { id.to_owned() };
        user.calendars.get_mut(&id)
    }

    fn live_calendar(&mut self, sub: &str, email: &str, id: &str) -> &mut Calendar {
        match self.calendar(sub, email, id) {
            Some(calendar) if !calendar.deleted => calendar,
            _ => panic!("user {sub} has no calendar {id}"),
        }
    }

    pub fn add_calendar(&mut self, sub: &str, email: &str, id: &str, summary: &str) {
        // The primary calendar (made on first use) comes first in the list.
        self.user(sub, email);
        let (seq, order) = self.bump();
        let user = self.user(sub, email);
        let epoch = match user.calendars.get(id) {
            Some(old) if !old.deleted => panic!("user {sub} already has calendar {id}"),
            Some(old) => old.epoch + 1,
            None => 0,
        };
        let mut calendar = Calendar::new(id, summary, false, order, seq);
        calendar.epoch = epoch;
        user.calendars.insert(id.to_owned(), calendar);
    }

    pub fn delete_calendar(&mut self, sub: &str, email: &str, id: &str) {
        let (seq, _) = self.bump();
        let calendar = self.live_calendar(sub, email, id);
        assert!(!calendar.primary, "Google cannot delete a primary calendar");
        calendar.deleted = true;
        calendar.seq = seq;
        calendar.epoch += 1;
    }

    pub fn insert_event(&mut self, sub: &str, email: &str, calendar: &str, spec: EventSpec, now: SystemTime) -> String {
        spec.check_id();
        spec.check();
        let id = spec.id.clone().unwrap_or_else(new_event_id);
        self.insert(sub, email, calendar, id, spec, Shape::Own, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        sub: &str,
        email: &str,
        calendar: &str,
        id: String,
        spec: EventSpec,
        shape: Shape,
        now: SystemTime,
    ) -> String {
        let (seq, order) = self.bump();
        let calendar = self.live_calendar(sub, email, calendar);
        assert!(!calendar.events.contains_key(&id), "Google answers 409 duplicate: event {id} exists");
        let event = Event {
            id: id.clone(),
            spec,
            shape,
            cancelled: false,
            order,
            seq,
            sequence: 0,
            created: now,
            updated: now,
        };
        calendar.events.insert(id.clone(), event);
        id
    }

    /// Applies `change` to an event's spec; `updated`, etag and `sequence` move on.
    pub fn update_event(
        &mut self,
        sub: &str,
        email: &str,
        calendar: &str,
        id: &str,
        change: impl FnOnce(&mut EventSpec),
        now: SystemTime,
    ) {
        let (seq, _) = self.bump();
        let event = self.live_calendar(sub, email, calendar).event_mut(id);
        assert!(!event.cancelled, "Google answers 410 deleted: event {id} was deleted");
        change(&mut event.spec);
        event.spec.id = Some(event.id.clone());
        event.spec.check();
        touch(event, seq, now);
    }

    /// Cancels an event; cancelling a series also cancels its exceptions.
    pub fn delete_event(&mut self, sub: &str, email: &str, calendar: &str, id: &str, now: SystemTime) {
        let (seq, _) = self.bump();
        let calendar = self.live_calendar(sub, email, calendar);
        let event = calendar.event_mut(id);
        assert!(!event.cancelled, "Google answers 410 deleted: event {id} was already deleted");
        event.cancelled = true;
        touch(event, seq, now);
        for event in calendar.events.values_mut() {
            let of_series =
                matches!(&event.shape, Shape::Instance { recurring_event_id, .. } if recurring_event_id == id);
            if of_series && !event.cancelled {
                event.cancelled = true;
                touch(event, seq, now);
            }
        }
    }

    /// Modifies (or, with `spec = None`, cancels) the instance of series `master` that starts at
    /// `original_start`, making or changing its exception; returns the instance id.
    #[allow(clippy::too_many_arguments)]
    pub fn change_instance(
        &mut self,
        sub: &str,
        email: &str,
        calendar: &str,
        master: &str,
        original_start: EventTime,
        spec: Option<EventSpec>,
        now: SystemTime,
    ) -> String {
        let series = self.live_calendar(sub, email, calendar).event_mut(master);
        assert!(!series.spec.recurrence.is_empty() && matches!(series.shape, Shape::Own), "{master} is no series");
        assert!(!series.cancelled, "series {master} was deleted");
        let id = format!("{master}_{}", original_start.id_suffix());
        let base = series.spec.clone();
        let (cancelled, mut spec) = match spec {
            Some(spec) => (false, spec),
            None => (true, EventSpec { start: original_start.clone(), end: original_start.clone(), ..base }),
        };
        spec.id = Some(id.clone());
        spec.recurrence.clear();
        spec.check();
        let exists = self.live_calendar(sub, email, calendar).events.contains_key(&id);
        if !exists {
            let shape = Shape::Instance { recurring_event_id: master.to_owned(), original_start };
            self.insert(sub, email, calendar, id.clone(), spec.clone(), shape, now);
        }
        let (seq, _) = self.bump();
        let event = self.live_calendar(sub, email, calendar).event_mut(&id);
        event.spec = spec;
        event.cancelled = cancelled;
        touch(event, seq, now);
        id
    }

    /// Sync tokens of one calendar (or, with `None`, of every calendar and calendar list) answer 410.
    pub fn invalidate(&mut self, only: Option<(&str, &str)>) {
        for (sub, user) in &mut self.users {
            let primary = user.primary.clone();
            if only.is_none() {
                user.list_epoch += 1;
            }
            for calendar in user.calendars.values_mut() {
                let hit = only
                    .is_none_or(|(s, c)| s == sub && (c == calendar.id || (c == "primary" && calendar.id == primary)));
                if hit {
                    calendar.epoch += 1;
                }
            }
        }
    }

    /// Stores `value` under a fresh random page token.
    pub fn issue_cursor(&mut self, cursor: Cursor) -> String {
        let token = random_token("CkA");
        self.cursors.insert(token.clone(), cursor);
        token
    }

    /// Stores `point` under a fresh random sync token.
    pub fn issue_sync_token(&mut self, point: SyncPoint) -> String {
        let token = random_token("CPj");
        self.sync_tokens.insert(token.clone(), point);
        token
    }
}

fn touch(event: &mut Event, seq: u64, now: SystemTime) {
    event.seq = seq;
    event.sequence += 1;
    // `updated` never goes backwards, even when tests move the clock little.
    event.updated = now.max(event.updated + Duration::from_millis(1));
}

/// A random base32hex id of 26 characters, like Google's.
fn new_event_id() -> String {
    let alphabet: Vec<char> = "0123456789abcdefghijklmnopqrstuv".chars().collect();
    random_token("").bytes().take(26).map(|b| alphabet[usize::from(b) % 32]).collect()
}
