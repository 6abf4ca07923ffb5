//! The Calendar part of the control handle: what tests change, switch and read. Users are named
//! by `sub` or email; a user's `primary` calendar (id = the email) exists from first use.

use super::spec::{EventSpec, EventTime};
use super::state::QuotaRecord;
use super::ApiFailure;
use crate::fakes::google::state::{GoogleState, Grant};
use crate::fakes::google::{token, FakeGoogle};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use url::Url;

/// The client id of grants made by [`FakeGoogle::issue_access_token`].
pub const DIRECT_CLIENT: &str = "fake-google-direct-client";

/// `(sub, email)` of a registered user named by `sub` or email; panics for a stranger.
fn account(st: &GoogleState, who: &str) -> (String, String) {
    let user = st.user(who).unwrap_or_else(|| panic!("fake Google has no user {who}"));
    (user.sub.clone(), user.email.clone())
}

impl FakeGoogle {
    /// A change in `calendar`: every live push channel watching it gets an `exists` message.
    fn push_changed(&self, user: &str, calendar: &str) {
        let (sub, email) = self.with(|st| account(st, user));
        super::push::changed(&self.state, &sub, &email, calendar);
    }

    /// Stands in for `https://www.googleapis.com/calendar/v3/` (ends with a slash).
    pub fn calendar_api_url(&self) -> Url {
        self.endpoint("calendar/v3/")
    }

    /// An access token for `user` with `scopes` (full scope URLs), as if the user had consented
    /// to [`DIRECT_CLIENT`]; it expires and dies like any other.
    pub fn issue_access_token(&self, user: &str, scopes: &[&str]) -> String {
        self.with(|st| {
            let (sub, _) = account(st, user);
            let next = st.next_grant_id;
            let scopes: BTreeSet<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
            let grant = st
                .grants
                .entry((sub.clone(), DIRECT_CLIENT.to_owned()))
                .or_insert_with(|| Grant { id: next, scopes: BTreeSet::new() });
            grant.scopes.extend(scopes.iter().cloned());
            let grant_id = grant.id;
            if grant_id == next {
                st.next_grant_id += 1;
            }
            let body = token::issue_access(st, grant_id, &sub, DIRECT_CLIENT, &scopes);
            body["access_token"].as_str().expect("a token response has access_token").to_owned()
        })
    }

    /// Adds a (secondary) calendar for `user`; re-adding a deleted id makes a fresh calendar.
    pub fn add_calendar(&self, user: &str, id: &str, summary: &str) {
        self.with(|st| {
            let (sub, email) = account(st, user);
            st.calendar.add_calendar(&sub, &email, id, summary);
        });
    }

    /// Deletes a secondary calendar: it leaves the list (incrementals show `deleted: true`), its
    /// events answer 404 and its sync tokens die.
    pub fn delete_calendar(&self, user: &str, id: &str) {
        self.with(|st| {
            let (sub, email) = account(st, user);
            st.calendar.delete_calendar(&sub, &email, id);
        });
    }

    /// Inserts an event (`calendar` may be `primary`); returns its id.
    pub fn insert_event(&self, user: &str, calendar: &str, spec: EventSpec) -> String {
        let out = self.with(|st| {
            let (sub, email) = account(st, user);
            let now = st.clock.now();
            st.calendar.insert_event(&sub, &email, calendar, spec, now)
        });
        self.push_changed(user, calendar);
        out
    }

    /// Inserts many events under one lock (benchmarks load 100,000); returns their ids in order.
    pub fn insert_events(&self, user: &str, calendar: &str, specs: impl IntoIterator<Item = EventSpec>) -> Vec<String> {
        let out = self.with(|st| {
            let (sub, email) = account(st, user);
            let now = st.clock.now();
            specs.into_iter().map(|spec| st.calendar.insert_event(&sub, &email, calendar, spec, now)).collect()
        });
        self.push_changed(user, calendar);
        out
    }

    /// Changes an event (a single event, a series' master or an exception): `updated`, `etag`
    /// and `sequence` move on.
    pub fn update_event(&self, user: &str, calendar: &str, event_id: &str, change: impl FnOnce(&mut EventSpec)) {
        self.with(|st| {
            let (sub, email) = account(st, user);
            let now = st.clock.now();
            st.calendar.update_event(&sub, &email, calendar, event_id, change, now);
        });
        self.push_changed(user, calendar);
    }

    /// Deletes an event: it becomes `status: cancelled` (a series' exceptions too).
    pub fn delete_event(&self, user: &str, calendar: &str, event_id: &str) {
        self.with(|st| {
            let (sub, email) = account(st, user);
            let now = st.clock.now();
            st.calendar.delete_event(&sub, &email, calendar, event_id, now);
        });
        self.push_changed(user, calendar);
    }

    /// Makes the instance of series `master` originally at `original_start` an exception with
    /// `spec`'s content; returns the instance id (`<master>_<yyyymmdd[Thhmmss]Z>`). The fake does
    /// not check that the RRULE has an instance there.
    pub fn modify_instance(
        &self,
        user: &str,
        calendar: &str,
        master: &str,
        original_start: EventTime,
        spec: EventSpec,
    ) -> String {
        let out = self.with(|st| {
            let (sub, email) = account(st, user);
            let now = st.clock.now();
            st.calendar.change_instance(&sub, &email, calendar, master, original_start, Some(spec), now)
        });
        self.push_changed(user, calendar);
        out
    }

    /// Cancels the instance of series `master` originally at `original_start`; returns its id.
    pub fn cancel_instance(&self, user: &str, calendar: &str, master: &str, original_start: EventTime) -> String {
        let out = self.with(|st| {
            let (sub, email) = account(st, user);
            let now = st.clock.now();
            st.calendar.change_instance(&sub, &email, calendar, master, original_start, None, now)
        });
        self.push_changed(user, calendar);
        out
    }

    /// The calendar's live events exactly as an unbounded full sync without `showDeleted`
    /// returns them (same order), for comparing with what a client stored.
    pub fn events(&self, user: &str, calendar: &str) -> Vec<Value> {
        self.with(|st| {
            let (sub, email) = account(st, user);
            let found = st.calendar.calendar(&sub, &email, calendar).filter(|c| !c.deleted);
            found.unwrap_or_else(|| panic!("{user} has no calendar {calendar}")).live_json()
        })
    }

    /// The user's live calendar-list entries, as a full `calendarList` listing returns them.
    pub fn calendars(&self, user: &str) -> Vec<Value> {
        self.with(|st| {
            let (sub, email) = account(st, user);
            let mut calendars: Vec<_> =
                st.calendar.user(&sub, &email).calendars.values().filter(|c| !c.deleted).collect();
            calendars.sort_by_key(|c| c.order);
            calendars.into_iter().map(|c| c.entry_json()).collect()
        })
    }

    /// Every sync token issued so far for this calendar answers 410 `fullSyncRequired`.
    pub fn invalidate_sync_tokens(&self, user: &str, calendar: &str) {
        self.with(|st| {
            let (sub, _) = account(st, user);
            st.calendar.invalidate(Some((&sub, calendar)));
        });
    }

    /// Every sync token issued so far (events and calendar lists, all users) answers 410.
    pub fn invalidate_all_sync_tokens(&self) {
        self.with(|st| st.calendar.invalidate(None));
    }

    /// The next `times` Calendar requests answer `failure` (queued after failures already set).
    pub fn fail_calendar_api(&self, failure: ApiFailure, times: usize) {
        self.with(|st| st.calendar.switches.failures.extend(std::iter::repeat_n(failure, times)));
    }

    /// After the next `passing` Calendar requests are answered normally, the `times` after them
    /// answer `failure` (e.g. to break a listing after its first pages).
    pub fn fail_calendar_api_after(&self, passing: usize, failure: ApiFailure, times: usize) {
        self.with(|st| {
            let switches = &mut st.calendar.switches;
            switches.pass_before_failures = passing;
            switches.failures.extend(std::iter::repeat_n(failure, times));
        });
    }

    /// Every Calendar request waits this long before it is answered (default none).
    pub fn set_calendar_latency(&self, latency: Duration) {
        self.with(|st| st.calendar.switches.latency = latency);
    }

    /// At most `per_minute` Calendar requests per user in any 60 s of the fake's clock; the next
    /// answers 403 `userRateLimitExceeded`. `None` (the default) lifts the quota.
    pub fn set_calendar_user_quota(&self, per_minute: Option<usize>) {
        self.with(|st| st.calendar.switches.user_quota = per_minute);
    }

    /// The per-user quota counts requests in any `window` instead of any minute (a test that
    /// runs minutes of rate-limited traffic shortens it, with the client's budget alike).
    pub fn set_calendar_quota_window(&self, window: Duration) {
        self.with(|st| st.calendar.switches.quota_window = Some(window));
    }

    /// Every request the per-user quota judged (admitted or refused), oldest first; empty while
    /// no quota is set.
    pub fn quota_log(&self) -> Vec<QuotaRecord> {
        self.with(|st| st.calendar.counters.quota_log.clone())
    }

    /// Page `n` of every listing holds at most `plan[n]` items (still capped by `maxResults`);
    /// `0` serves an EMPTY page that carries a `nextPageToken`. Later pages are full.
    pub fn set_page_plan(&self, plan: &[usize]) {
        self.with(|st| st.calendar.switches.page_plan = plan.to_vec());
    }

    /// Calendar API requests received (all answers, failures included).
    pub fn api_calls(&self) -> usize {
        self.with(|st| st.calendar.counters.calls)
    }

    /// Calendar API requests received for this path (as sent, e.g.
    /// `/calendar/v3/calendars/primary/events`).
    pub fn api_calls_to(&self, path: &str) -> usize {
        self.with(|st| st.calendar.counters.by_path.get(path).copied().unwrap_or(0))
    }

    /// Calendar answers that were rate or quota limits (injected or from the per-user quota).
    pub fn rate_limited(&self) -> usize {
        self.with(|st| st.calendar.counters.rate_limited)
    }
}
