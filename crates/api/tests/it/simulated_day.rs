//! Issue 8's simulated day of provider calls, over real HTTP against the fakes, with time driven
//! by the app's clock (the schedulers read a clock this test moves, so a day takes seconds).
//!
//! Shape: 50 Google connections (one account each, [`CALENDARS`] calendars: the primary one and
//! secondary ones, one event each) and 50 monday.com connections (one account each, [`BOARDS`]
//! boards with one group and [`ITEMS`] items each). Google push channels and monday board
//! webhooks are healthy after the initial syncs.
//!
//! The day: every connection gets [`CHANGES_PER_HOUR`] changes per hour for 24 hours, each at a
//! random minute (distinct minutes per connection and hour, so no two changes of a connection are
//! merged by the ~1 s coalescing more than they would be in life). A Google change edits an
//! event at the fake, which delivers the `exists` message to Patchbay itself; a monday change
//! renames an item at the fake and its board webhook delivery is POSTed the way monday would.
//! Time moves in one-minute steps; within a step the worker runs every due job (backstops, the
//! repair sweep, channel renewals, the inbox processor), then one second later (the coalescing
//! window) the change-triggered runs, and every change of the step is then looked up in the
//! read API.
//!
//! Counted: Calendar API requests at fake Google plus GraphQL requests at fake monday, from the
//! end of the initial syncs to the end of the day (token refreshes are not: the app's tokens
//! outlive the fakes' clocks here, and polling would refresh the same tokens as often).
//! Baseline: one polling round (an incremental run of every part of every connection, made by a
//! `manual` run, which ignores change signals), measured here, × 288.
//!
//! Asserted: calls ≤ 5 % of the baseline; the p95 of (visible in the read API − webhook answered,
//! in app time) ≤ 5 s; every change visible.

use crate::connect::{world_clocked, World};
use crate::helpers::{json, token, Db};
use chrono::{DateTime, Utc};
use patchbay_store::Clock;
use patchbay_testkit::fakes::google::EventSpec;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const GOOGLE_CONNECTIONS: usize = 50;
const MONDAY_CONNECTIONS: usize = 50;
/// Calendars per Google account (the primary one included).
const CALENDARS: usize = 8;
/// Boards per monday account.
const BOARDS: usize = 8;
/// Items per board.
const ITEMS: usize = 3;
const CHANGES_PER_HOUR: usize = 5;
/// The simulated span: 24 hours; `PATCHBAY_SIM_HOURS` shortens it for a quick look (the
/// baseline is then that many hours of 5-minute polling).
fn hours() -> i64 {
    std::env::var("PATCHBAY_SIM_HOURS").ok().and_then(|h| h.parse().ok()).unwrap_or(24)
}

/// Push on; the inbound rate limits lifted (one test client reads for a hundred users).
const ARGS: [&str; 9] = [
    "--google-push",
    "--v1-per-second",
    "100000",
    "--v1-burst",
    "100000",
    "--principal-per-second",
    "100000",
    "--principal-burst",
    "100000",
];

/// Wall time plus an offset the test moves: the app's clock.
#[derive(Debug, Default)]
struct SimClock {
    offset_ms: AtomicI64,
}

impl SimClock {
    fn advance(&self, by: chrono::Duration) {
        self.offset_ms.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
    fn offset(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }
}

/// A connection of the simulated fleet and what the test needs to change and read it.
struct Conn {
    /// The end user's name (a bearer token is minted per request: the day outlives one).
    who: String,
    id: String,
    kind: Kind,
}

enum Kind {
    /// `sub`, and per calendar: (calendar id, its record id, the event id changed).
    Google { sub: String, calendars: Vec<(String, String, String)> },
    /// Per board: (board id, item ids).
    Monday { boards: Vec<(u64, Vec<u64>)> },
}

/// One change: connection index, calendar/board index, item index.
#[derive(Clone, Copy)]
struct Change {
    conn: usize,
    part: usize,
    item: usize,
}

/// Runs every due job until none is left.
async fn drain(w: &World) -> usize {
    let mut ran = 0;
    while let patchbay_store::Outcome::Done { .. } = w.app.worker.try_execute_next().await.expect("the store answers") {
        ran += 1;
    }
    ran
}

fn provider_calls(w: &World) -> usize {
    w.google.api_calls() + w.monday.graphql_calls()
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn get_json(w: &World, bearer: &str, path: &str) -> serde_json::Value {
    let response = w.app.get_as(path, bearer).await;
    assert_eq!(response.status(), 200, "GET {path}");
    json(response).await
}

async fn setup(w: &World) -> Vec<Conn> {
    w.google.allow_http_push_addresses();
    let start = (Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let end = (Utc::now() + chrono::Duration::days(2) + chrono::Duration::hours(1)).to_rfc3339();
    let mut conns = Vec::new();
    for g in 0..GOOGLE_CONNECTIONS {
        let sub = format!("sim-g-{g}");
        let email = format!("sim{g}@gmail.test");
        w.google.add_user(&sub, &email);
        let mut ids = vec![email.clone()];
        for c in 1..CALENDARS {
            let id = format!("cal-{g}-{c}@group.calendar.test");
            w.google.add_calendar(&sub, &id, &format!("Calendar {c}"));
            ids.push(id);
        }
        let mut calendars = Vec::new();
        for id in ids {
            let event = w.google.insert_event(&sub, &id, EventSpec::timed("v0", &start, &end));
            calendars.push((id, String::new(), event));
        }
        let who = format!("sim-google-{g}");
        let bearer = token(&who, json!({}));
        let started = w.start(&bearer, "google", json!({})).await;
        let back = w.callback(&w.google.authorize_headless(&started.authorize, &sub), Some(&started.cookie)).await;
        let id = crate::connect::back_to_app(&back)["connection_id"].clone();
        conns.push((who, id, Kind::Google { sub, calendars }));
        drain(w).await;
    }
    for m in 0..MONDAY_CONNECTIONS {
        let account = 100_000 + m as u64;
        let user = 200_000 + m as u64;
        w.monday.add_account(account, &format!("sim{m}"), &format!("Sim {m}"));
        w.monday.add_user(user, account, &format!("User {m}"), &format!("user{m}@sim.test"));
        let mut boards = Vec::new();
        for b in 0..BOARDS {
            let board = 300_000 + (m * 100 + b) as u64;
            w.monday.add_board(account, board, &format!("Board {b}"));
            w.monday.add_group(board, "topics", "Topics");
            let items = (0..ITEMS).map(|i| w.monday.create_item(board, "topics", &format!("Task {i}"))).collect();
            boards.push((board, items));
        }
        let who = format!("sim-monday-{m}");
        let bearer = token(&who, json!({}));
        let started = w.start(&bearer, "monday", json!({})).await;
        let consent = w.monday.authorize_headless(&started.authorize, &user.to_string());
        let back = w.callback(&consent, Some(&started.cookie)).await;
        let id = crate::connect::back_to_app(&back)["connection_id"].clone();
        conns.push((who, id, Kind::Monday { boards }));
        drain(w).await;
    }
    drain(w).await;
    let mut out = Vec::new();
    for (who, id, mut kind) in conns {
        let bearer = token(&who, json!({}));
        if let Kind::Google { calendars, .. } = &mut kind {
            for (calendar, record, _) in calendars.iter_mut() {
                let path = format!("/v1/connections/{id}/google/calendars?provider_id={}", encode(calendar));
                let listed = get_json(w, &bearer, &path).await;
                *record = listed["data"][0]["id"].as_str().unwrap_or_else(|| panic!("{calendar} synced")).to_owned();
            }
        }
        out.push(Conn { who, id, kind });
    }
    out
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Makes `change` at the fake and announces it to Patchbay the way the provider would; returns
/// the app time the announcement was answered (for Google: when the change was made, since the
/// fake delivers on its own; that only makes the measured latency longer).
async fn make_change(w: &World, clock: &SimClock, conns: &[Conn], change: Change, n: usize) -> DateTime<Utc> {
    let name = format!("v{n}");
    match &conns[change.conn].kind {
        Kind::Google { sub, calendars } => {
            let at = clock.now();
            let (calendar, _, event) = &calendars[change.part];
            w.google.update_event(sub, calendar, event, |spec| spec.summary = name);
            at
        }
        Kind::Monday { boards } => {
            let (board, items) = &boards[change.part];
            let item = items[change.item];
            w.monday.rename_item(item, &name);
            let hook = w
                .monday
                .board_webhooks(*board)
                .into_iter()
                .find(|h| h.event == "change_name")
                .expect("the board's change_name webhook is registered");
            // Signed at the fake's clock, which this test does not move: valid for the app's.
            let exp_in = clock.offset().num_seconds() + 300;
            let delivery = w.monday.board_delivery(hook.id, item, exp_in);
            assert_eq!(w.monday.send(&delivery).await, 200, "the board webhook is answered");
            clock.now()
        }
    }
}

/// Whether the read API serves `change` (named `v{n}`) now.
async fn visible(w: &World, conns: &[Conn], change: Change, n: usize) -> bool {
    let conn = &conns[change.conn];
    let name = format!("v{n}");
    match &conn.kind {
        Kind::Google { calendars, .. } => {
            let (_, record, event) = &calendars[change.part];
            let path = format!("/v1/connections/{}/google/calendars/{record}/events?provider_id={event}", conn.id);
            let page = get_json(w, &token(&conn.who, json!({})), &path).await;
            page["data"][0]["summary"] == name.as_str()
        }
        Kind::Monday { boards } => {
            let (board, items) = &boards[change.part];
            let item = items[change.item];
            let listed = get_json(
                w,
                &token(&conn.who, json!({})),
                &format!("/v1/connections/{}/monday/boards?provider_id={board}", conn.id),
            )
            .await;
            let record = listed["data"][0]["id"].as_str().expect("the board is served").to_owned();
            let path = format!("/v1/connections/{}/monday/boards/{record}/items?provider_id={item}", conn.id);
            let page = get_json(w, &token(&conn.who, json!({})), &path).await;
            page["data"][0]["name"] == name.as_str()
        }
    }
}

/// One polling round: a `manual` run of every connection (every part, incremental, signals
/// ignored), and the provider calls it made.
async fn polling_round(w: &World, conns: &[Conn]) -> usize {
    let before = provider_calls(w);
    for conn in conns {
        let path = w.app.url(&format!("/v1/connections/{}/sync", conn.id));
        let queued = w.app.client.post(path).bearer_auth(token(&conn.who, json!({}))).send().await.unwrap();
        assert!(queued.status() == 202 || queued.status() == 200, "a polling run is queued");
    }
    drain(w).await;
    provider_calls(w) - before
}

async fn simulated_day(db: Db) {
    let clock = Arc::new(SimClock::default());
    let Some(w) = world_clocked(db, "v2", &ARGS, clock.clone()).await else { return };
    let started = Instant::now();
    let conns = setup(&w).await;
    let setup_time = started.elapsed();

    // The baseline: what one 5-minute polling round costs, measured.
    clock.advance(chrono::Duration::minutes(1));
    drain(&w).await;
    let round = polling_round(&w, &conns).await;
    let hours = hours();
    let baseline = round * 12 * hours as usize;
    drain(&w).await;

    // The day's changes: per connection and hour, CHANGES_PER_HOUR distinct random minutes.
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let minutes = (hours * 60) as usize;
    let mut by_minute: Vec<Vec<Change>> = vec![Vec::new(); minutes];
    for (c, conn) in conns.iter().enumerate() {
        let parts = match &conn.kind {
            Kind::Google { calendars, .. } => calendars.len(),
            Kind::Monday { boards } => boards.len(),
        };
        for hour in 0..hours as usize {
            let mut picked: Vec<usize> = Vec::new();
            while picked.len() < CHANGES_PER_HOUR {
                let minute = rng.gen_range(0..60);
                if !picked.contains(&minute) {
                    picked.push(minute);
                }
            }
            for minute in picked {
                let change = Change { conn: c, part: rng.gen_range(0..parts), item: rng.gen_range(0..ITEMS) };
                by_minute[hour * 60 + minute].push(change);
            }
        }
    }

    let calls_before = provider_calls(&w);
    let tokens_before = w.google.token_calls("refresh_token") + w.monday.refresh_calls();
    let day_started = Instant::now();
    let mut latencies_ms = Vec::new();
    let mut lost = Vec::new();
    let mut n = 0usize;
    let mut deliveries = w.google.push_deliveries().len();
    for (minute, changes) in by_minute.iter().enumerate() {
        // A minute of app time passes (one second of it went to the last step's coalescing).
        clock.advance(chrono::Duration::seconds(if minute == 0 { 60 } else { 59 }));
        drain(&w).await;
        let mut answered = Vec::new();
        let mut google = 0;
        for change in changes {
            n += 1;
            let at = make_change(&w, &clock, &conns, *change, n).await;
            google += matches!(conns[change.conn].kind, Kind::Google { .. }) as usize;
            answered.push((*change, n, at));
        }
        deliveries += google;
        let done = w.google.wait_for_deliveries(deliveries).await;
        assert!(done[deliveries - google..].iter().all(|d| d.status == Some(200)), "every push answered 200");
        drain(&w).await;
        // The coalescing window passes; the change-triggered runs start.
        clock.advance(chrono::Duration::seconds(1));
        drain(&w).await;
        for (change, n, at) in answered {
            let mut seen = visible(&w, &conns, change, n).await;
            if !seen {
                // Give a straggler (a run that yielded, a retry) one more pass.
                clock.advance(chrono::Duration::seconds(1));
                drain(&w).await;
                seen = visible(&w, &conns, change, n).await;
            }
            match seen {
                true => latencies_ms.push((clock.now() - at).num_milliseconds()),
                false => lost.push((conns[change.conn].id.clone(), change.part, n)),
            }
        }
    }
    let calls = provider_calls(&w) - calls_before;
    let refreshes = w.google.token_calls("refresh_token") + w.monday.refresh_calls() - tokens_before;
    let day_time = day_started.elapsed();
    latencies_ms.sort_unstable();
    let (p50, p95) = (percentile(&latencies_ms, 0.50), percentile(&latencies_ms, 0.95));
    let ratio = calls as f64 / baseline as f64;
    println!(
        "simulated day ({db:?}): {} connections, {n} changes; provider calls {calls} (google {} / monday {} \
         at the end), polling round {round}, baseline {baseline} (×12 per hour), ratio {:.2} %; latency p50 {p50} ms, \
         p95 {p95} ms, max {} ms; token refreshes {refreshes}; setup {:.1} s, day {:.1} s",
        conns.len(),
        w.google.api_calls(),
        w.monday.graphql_calls(),
        ratio * 100.0,
        latencies_ms.last().copied().unwrap_or_default(),
        setup_time.as_secs_f64(),
        day_time.as_secs_f64(),
    );
    assert_eq!(n, (GOOGLE_CONNECTIONS + MONDAY_CONNECTIONS) * CHANGES_PER_HOUR * hours as usize);
    assert!(lost.is_empty(), "{} changes never became visible: {:?}", lost.len(), &lost[..lost.len().min(10)]);
    assert!(ratio <= 0.05, "provider calls {calls} are {:.2} % of polling's {baseline}", ratio * 100.0);
    assert!(p95 <= 5_000, "p95 webhook → visible {p95} ms");
    w.app.stop().await;
}

// Over ten minutes in a debug build on a loaded 2-core machine: run on demand with
// `--run-ignored only` (see docs/benchmarks.md).
mod a_simulated_day_costs_at_most_5_percent_of_polling {
    use super::*;
    #[tokio::test]
    #[ignore = "a simulated day: minutes in a debug build"]
    async fn sqlite() {
        simulated_day(Db::Sqlite).await
    }
    #[tokio::test]
    #[ignore = "a simulated day: minutes in a debug build"]
    async fn postgres() {
        simulated_day(Db::Postgres).await
    }
}
