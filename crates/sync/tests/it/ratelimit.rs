//! The rate-limit acceptance of issue 7 ("Sync"): with a fake monday complexity budget and a fake
//! Google per-user quota, a backlog runs through real job workers with zero refusals after the
//! first window and uses ≥ 90 % of the budget (measured at the fake) while backlog remains; two
//! workers on one Postgres together stay within the same budget; a daily limit makes jobs yield
//! until the reset, not spin.
//!
//! **Time scaling.** The providers count per minute. Here a "minute" lasts [`WINDOW`] (4 s): the
//! fakes' windows are shortened to it (`ApiLimits::window`, `set_calendar_quota_window`) and the
//! sync's budgets use the same period (`SyncSettings::rate_window`), so "no refusal after the
//! first 60 s" is checked as "no refusal after the first 4 s" and each test runs ~15–25 s instead
//! of minutes. Nothing else is scaled: waits, leases and the daily limit keep their real lengths.
//!
//! The "two workers" scenario runs two worker processes: it re-runs its own test binary twice
//! (see [`process`]), each child with its own store pool over the same Postgres schema, its own
//! `Tokens` and its own sync handlers, sharing nothing with the other but the database and the
//! fakes. The fakes stay in the scenario's process and measure the two together.

mod process;

use crate::monday::records;
use crate::support::{vault_ring, Endpoints, World, MONDAY_ACCOUNT};
use async_trait::async_trait;
use chrono::{Duration as ChronoDuration, Utc};
use patchbay_store::*;
use patchbay_sync::{runner, MondayPlan, SyncDeps, SyncSettings};
use patchbay_testkit::fakes::google::EventSpec;
use patchbay_testkit::fakes::monday::ApiLimits;
use process::{ChildSpec, WorkerProcess, REPORT};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The length of a provider "minute" in these tests (see the module doc).
const WINDOW: Duration = Duration::from_secs(4);

/// monday: complexity per window. Items pages of [`MONDAY_PAGE`] cost 10 + 49 × 5 = 255 (the first
/// of a board 265), so a window holds ~44 pages at the 95 % the sync plans — fine enough that one
/// page more or less moves a window's use by ~2 %.
const MONDAY_BUDGET: i64 = 12_000;
const MONDAY_PAGE: u32 = 5;

/// Google: requests per user per window, and events per page.
const GOOGLE_QUOTA: usize = 40;
const GOOGLE_PAGE: u32 = 5;

/// How long any scenario may take before it is declared stuck.
const DEADLINE: Duration = Duration::from_secs(120);

/// Counts the jobs a worker ran, to show both workers took part; a worker process also reports
/// each job on its stdout, where the test that started it counts them.
struct Counting {
    inner: Arc<dyn JobHandler>,
    ran: Arc<AtomicUsize>,
    report: Option<String>,
}

#[async_trait]
impl JobHandler for Counting {
    async fn run(&self, job: &Job, ctx: JobContext) -> Result<(), JobError> {
        self.ran.fetch_add(1, Ordering::Relaxed);
        let outcome = self.inner.run(job, ctx).await;
        if let Some(owner) = &self.report {
            let ended = if outcome.is_ok() { "ok" } else { "err" };
            println!("{REPORT} {owner} ran {} {} {ended}", job.kind, job.id);
        }
        outcome
    }
}

/// A running worker loop over `deps` (its own store) with every sync handler.
struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    ran: Arc<AtomicUsize>,
}

impl Running {
    fn start(deps: &SyncDeps, owner: &str) -> Running {
        Self::with(deps, owner, WorkerSettings::default().concurrency, None)
    }

    fn with(deps: &SyncDeps, owner: &str, concurrency: usize, report: Option<String>) -> Running {
        let ran = Arc::new(AtomicUsize::new(0));
        let jobs: Arc<dyn JobStore> = deps.store.clone();
        let settings =
            WorkerSettings { poll_interval: Duration::from_millis(50), concurrency, ..WorkerSettings::default() };
        let mut worker = Worker::new(jobs, owner, settings);
        for (kind, handler) in runner::handlers(deps) {
            let counting = Counting { inner: handler, ran: ran.clone(), report: report.clone() };
            worker = worker.handle(kind.as_str(), Arc::new(counting));
        }
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(worker.run(shutdown.clone()));
        Running { shutdown, task, ran }
    }

    async fn stop(self) -> usize {
        self.shutdown.cancel();
        self.task.await.expect("the worker loop ends cleanly");
        self.ran.load(Ordering::Relaxed)
    }
}

/// Scales the sync's budgets to [`WINDOW`].
fn scaled(settings: &mut SyncSettings) {
    settings.rate_window = WINDOW;
    settings.monday_plan = MondayPlan::Enterprise;
    settings.monday_complexity_per_minute = MONDAY_BUDGET;
    settings.monday_page_size = MONDAY_PAGE;
    settings.google_user_per_minute = GOOGLE_QUOTA as u32;
    settings.google_page_size = GOOGLE_PAGE;
}

/// The fake monday's limits for the scaled scenarios: the complexity budget binds, the minute,
/// concurrency and daily limits are Enterprise's.
fn monday_limits() -> ApiLimits {
    ApiLimits {
        read_budget: MONDAY_BUDGET as u64,
        write_budget: MONDAY_BUDGET as u64,
        per_minute: 5_000,
        concurrency: 250,
        daily_calls: 25_000,
        window: WINDOW,
        ..ApiLimits::default()
    }
}

/// `boards` boards of `items` items each on the fake's account.
fn monday_backlog(w: &World, boards: u64, items: u64) {
    for b in 0..boards {
        let board = 8_000 + b;
        crate::monday::board(w, board, &format!("Board {b}"));
        for i in 0..items {
            w.monday.create_item(board, "topics", &format!("Item {b}.{i}"));
        }
    }
}

/// Queues a manual run of `connection`; returns its id.
async fn request(store: &Arc<dyn Store>, connection: &Connection) -> SyncRunId {
    let now = Utc::now();
    let request = SyncRequest {
        tenant_id: connection.tenant_id,
        connection_id: connection.id,
        resource: SyncResource::of(connection.provider),
        trigger: SyncTrigger::Manual,
        run_at: now,
        priority: SyncRequest::INCREMENTAL_PRIORITY,
    };
    store.request_sync(request, now).await.expect("request a sync").run().id
}

/// Waits until every run succeeded (panics on a failed run or past [`DEADLINE`]).
async fn until_done(store: &Arc<dyn Store>, runs: &[(TenantId, SyncRunId)]) {
    let started = Instant::now();
    while !runs_done(store, runs).await {
        assert!(started.elapsed() < DEADLINE, "the backlog did not finish in {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether every run succeeded (panics on a failed run).
async fn runs_done(store: &Arc<dyn Store>, runs: &[(TenantId, SyncRunId)]) -> bool {
    let mut done = 0;
    for (tenant, run) in runs {
        let run = store.get_sync_run(TenantScope::new(*tenant), *run).await.expect("the run");
        assert_ne!(run.status, SyncRunStatus::Failed, "{run:?}");
        done += usize::from(run.status == SyncRunStatus::Succeeded);
    }
    done == runs.len()
}

/// What the fake monday measured: refusals after the first window (must be none) and each
/// window's share of the budget, the last one (in which the backlog ran out) left out.
struct MondayUse {
    late_refusals: Vec<String>,
    shares: Vec<f64>,
    spent: u64,
}

fn monday_use(w: &World) -> MondayUse {
    let windows: Vec<_> = w.monday.read_windows().into_iter().filter(|x| x.account_id == MONDAY_ACCOUNT).collect();
    let first = windows.first().expect("the sync spent complexity").opened;
    let late_refusals = w
        .monday
        .refusals()
        .into_iter()
        .filter(|r| r.at >= first + WINDOW)
        .map(|r| format!("{} at +{:?}", r.code, r.at.duration_since(first).unwrap_or_default()))
        .collect();
    let shares = windows[..windows.len() - 1].iter().map(|x| x.used as f64 / x.limit as f64).collect();
    MondayUse { late_refusals, shares, spent: w.monday.complexity_spent() }
}

fn assert_monday_use(measured: &MondayUse, label: &str) {
    let shares: Vec<String> = measured.shares.iter().map(|s| format!("{:.1}%", s * 100.0)).collect();
    println!("{label}: complexity spent {} in windows of {WINDOW:?} used {shares:?}", measured.spent);
    assert!(measured.late_refusals.is_empty(), "refusals after the first window: {:?}", measured.late_refusals);
    assert!(measured.shares.len() >= 3, "the backlog should need several windows: {shares:?}");
    for (n, share) in measured.shares.iter().enumerate() {
        assert!(*share >= 0.9, "window {n} used {:.1}% of the budget while backlog remained", share * 100.0);
        assert!(*share <= 1.0, "window {n} used more than the budget");
    }
}

/// Runs the monday backlog to the end through the given deps (one worker each); returns the
/// jobs each worker ran.
async fn run_monday_backlog(w: &World, fleet: &[SyncDeps], connections: &[Connection]) -> Vec<usize> {
    let mut runs = Vec::new();
    for connection in connections {
        runs.push((connection.tenant_id, request(&w.store, connection).await));
    }
    let workers: Vec<_> = fleet.iter().enumerate().map(|(n, deps)| Running::start(deps, &format!("w{n}"))).collect();
    until_done(&w.store, &runs).await;
    let mut ran = Vec::new();
    for worker in workers {
        ran.push(worker.stop().await);
    }
    ran
}

async fn a_monday_backlog_uses_the_complexity_budget_without_refusals(mut w: World) {
    w.tune(scaled);
    w.monday.set_api_limits(monday_limits());
    let (boards, items) = (4, 125);
    monday_backlog(&w, boards, items);
    // Two connections (two tenants) of the same monday account draw on the account's one budget.
    let connections = vec![w.monday_connection("acme").await, w.monday_connection("globex").await];

    let started = Instant::now();
    run_monday_backlog(&w, std::slice::from_ref(&w.deps), &connections).await;
    let took = started.elapsed();

    for connection in &connections {
        let stored = records(&w, connection, RecordKind::MondayItem).await;
        assert_eq!(stored.len() as u64, boards * items, "every item is copied");
    }
    let measured = monday_use(&w);
    println!("monday backlog: {} items × 2 connections in {took:?}", boards * items);
    assert_monday_use(&measured, "monday backlog");
}

async fn a_google_backlog_uses_the_user_quota_without_refusals(mut w: World) {
    w.tune(scaled);
    w.google.set_calendar_user_quota(Some(GOOGLE_QUOTA));
    w.google.set_calendar_quota_window(WINDOW);
    let connection = w.google_connection("acme", "ann").await;
    let calendars = ["ann@gmail.test", "team", "trips", "gym", "books"];
    for calendar in &calendars[1..] {
        w.google.add_calendar("ann", calendar, calendar);
    }
    let per_calendar = 160;
    let base = Utc::now() - ChronoDuration::days(30);
    for calendar in calendars {
        let specs = (0..per_calendar).map(|n| {
            let start = base + ChronoDuration::hours(n);
            let end = start + ChronoDuration::minutes(30);
            EventSpec::timed(&format!("{calendar} {n}"), &start.to_rfc3339(), &end.to_rfc3339())
        });
        w.google.insert_events("ann", calendar, specs);
    }

    let started = Instant::now();
    let runs = [(connection.tenant_id, request(&w.store, &connection).await)];
    let worker = Running::start(&w.deps, "w0");
    until_done(&w.store, &runs).await;
    worker.stop().await;
    let took = started.elapsed();

    let stored = records(&w, &connection, RecordKind::GoogleEvent).await;
    assert_eq!(stored.len() as i64, per_calendar * calendars.len() as i64, "every event is copied");
    let log: Vec<_> = w.google.quota_log().into_iter().filter(|r| r.sub == "ann").collect();
    let first = log.first().expect("the sync called the Calendar API").at;
    let last = log.iter().rev().find(|r| r.admitted).expect("admitted calls").at;
    let late: Vec<_> = log
        .iter()
        .filter(|r| !r.admitted && r.at >= first + WINDOW)
        .map(|r| r.at.duration_since(first).unwrap_or_default())
        .collect();
    // Consecutive windows from the first call, each wholly before the last call (backlog remained).
    let mut counts = Vec::new();
    let mut start = first;
    while start + WINDOW <= last {
        let admitted = log.iter().filter(|r| r.admitted && r.at >= start && r.at < start + WINDOW).count();
        counts.push(admitted);
        start += WINDOW;
    }
    let shares: Vec<String> =
        counts.iter().map(|c| format!("{:.1}%", *c as f64 * 100.0 / GOOGLE_QUOTA as f64)).collect();
    println!(
        "google backlog: {} calls ({} refused) in {took:?}; windows used {shares:?}",
        log.len(),
        w.google.rate_limited()
    );
    assert!(late.is_empty(), "refusals after the first window, at {late:?}");
    assert!(counts.len() >= 3, "the backlog should need several windows: {counts:?}");
    for (n, count) in counts.iter().enumerate() {
        assert!(*count * 10 >= GOOGLE_QUOTA * 9, "window {n} used {count} of {GOOGLE_QUOTA} while backlog remained");
        assert!(*count <= GOOGLE_QUOTA, "window {n} over the quota");
    }
}

async fn two_workers_on_one_postgres_share_the_budget() {
    let Some(url) = patchbay_testkit::db::postgres_url().await else { return };
    let store = patchbay_store_postgres::PgStore::connect(&url, patchbay_store_postgres::PgOptions::default())
        .await
        .expect("connect to the test Postgres");
    store.migrate().await.expect("migrate");
    let mut w = World::over(Arc::new(store), None).await;
    w.tune(scaled);
    w.monday.set_api_limits(monday_limits());
    let (boards, items) = (4, 70);
    monday_backlog(&w, boards, items);
    let mut connections = Vec::new();
    for org in ["acme", "globex", "initech", "umbrella"] {
        connections.push(w.monday_connection(org).await);
    }

    // Two worker processes over the same schema and the fakes; both are ready before any run is
    // requested, so neither starts with the whole queue to itself.
    let endpoints = Endpoints::of(&w.google, &w.monday);
    let spec = |owner: &str| ChildSpec {
        owner: owner.into(),
        store: url.clone(),
        endpoints: endpoints.clone(),
        vault: vault_ring(),
    };
    let mut fleet = vec![WorkerProcess::spawn(&spec("p0")), WorkerProcess::spawn(&spec("p1"))];
    let mut pids = Vec::new();
    for process in &mut fleet {
        pids.push(process.until_ready().await);
    }
    assert!(pids[0] != pids[1] && !pids.contains(&std::process::id()), "two processes of their own: {pids:?}");

    let started = Instant::now();
    let mut runs = Vec::new();
    for connection in &connections {
        runs.push((connection.tenant_id, request(&w.store, connection).await));
    }
    while !runs_done(&w.store, &runs).await {
        for process in &mut fleet {
            process.assert_running();
        }
        assert!(started.elapsed() < DEADLINE, "the backlog did not finish in {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    let mut ran = Vec::new();
    for process in &mut fleet {
        ran.push(process.finish().await);
    }

    for connection in &connections {
        assert_eq!(records(&w, connection, RecordKind::MondayItem).await.len() as u64, boards * items);
    }
    println!("two worker processes {pids:?}: jobs run {ran:?} in {took:?}");
    assert!(ran.iter().all(|n| *n > 0), "both worker processes ran sync jobs: {ran:?}");
    assert_monday_use(&monday_use(&w), "two worker processes");
}

async fn a_daily_limit_makes_jobs_yield_until_the_reset(mut w: World) {
    w.tune(scaled);
    // The day's calls run out after a few pages, while the sync (Enterprise) thinks it has plenty.
    w.monday.set_api_limits(ApiLimits { daily_calls: 12, ..monday_limits() });
    monday_backlog(&w, 2, 60);
    let connections = vec![w.monday_connection("acme").await, w.monday_connection("globex").await];
    let mut runs = Vec::new();
    for connection in &connections {
        runs.push((connection.tenant_id, request(&w.store, connection).await));
    }
    let worker = Running::start(&w.deps, "w0");

    // Both runs end up waiting: their jobs queued again, not before the fake's reset.
    let reset = (Utc::now() + ChronoDuration::days(1)).date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let started = Instant::now();
    let jobs = loop {
        let mut jobs = Vec::new();
        for (tenant, run) in &runs {
            let run = w.store.get_sync_run(TenantScope::new(*tenant), *run).await.unwrap();
            let job = w.store.get_job(run.job_id.expect("a pending run has a job")).await.unwrap();
            if run.status == SyncRunStatus::Running && job.status == JobStatus::Queued && job.run_at > Utc::now() {
                jobs.push(job);
            }
        }
        if jobs.len() == runs.len() {
            break jobs;
        }
        assert!(started.elapsed() < DEADLINE, "the runs never yielded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let refused = w.monday.rate_limited("DAILY_LIMIT_EXCEEDED");
    let calls = w.monday.graphql_calls();
    assert!(refused >= 1, "the fake's daily limit was reached");
    for job in &jobs {
        assert_eq!(job.attempts, 0, "a wait for the daily reset spends no attempt: {job:?}");
        assert!(job.run_at >= reset - ChronoDuration::seconds(2), "the job waits for the reset at {reset}: {job:?}");
    }
    // No spinning: over a few seconds nothing calls the provider, nothing runs again.
    let ran = worker.ran.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(w.monday.graphql_calls(), calls, "no provider call while the day's calls are spent");
    assert_eq!(w.monday.rate_limited("DAILY_LIMIT_EXCEEDED"), refused);
    assert_eq!(worker.ran.load(Ordering::Relaxed), ran, "no job ran again before the reset");
    worker.stop().await;
    println!("daily limit: {calls} calls, {refused} refused, jobs wait until {}", jobs[0].run_at);
}

/// The sync's own daily bucket (monday Free: 1,000 calls a day, planned at 95 % with a 5 %
/// burst) lets ~47 calls through at once; the next would wait ~91 s, past the in-process wait, so
/// the job yields until then instead of waiting or calling.
async fn the_planned_daily_budget_makes_jobs_yield_too(mut w: World) {
    w.tune(|s| {
        scaled(s);
        s.monday_plan = MondayPlan::Free;
    });
    w.monday.set_api_limits(monday_limits());
    monday_backlog(&w, 2, 200);
    let connection = w.monday_connection("acme").await;
    let run = request(&w.store, &connection).await;
    let began = Utc::now();
    let worker = Running::start(&w.deps, "w0");

    let started = Instant::now();
    let job = loop {
        let run = w.store.get_sync_run(TenantScope::new(connection.tenant_id), run).await.unwrap();
        assert_ne!(run.status, SyncRunStatus::Succeeded, "the backlog needs more than the day's burst");
        let job = w.store.get_job(run.job_id.expect("a pending run has a job")).await.unwrap();
        if job.status == JobStatus::Queued && job.run_at > Utc::now() {
            break job;
        }
        assert!(started.elapsed() < DEADLINE, "the run never yielded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let yielded = Utc::now();
    let calls = w.monday.graphql_calls();
    let ran = worker.ran.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (after, ran_after) = (w.monday.graphql_calls(), worker.ran.load(Ordering::Relaxed));
    worker.stop().await;

    println!("planned daily budget: {calls} calls, then the job waits until {}", job.run_at);
    // 5 % of a day at 950 calls a day: 47 calls.
    assert_eq!(calls, 47, "the day's burst, then nothing");
    assert_eq!(w.monday.refusals(), vec![], "the fake refused nothing");
    assert_eq!(job.attempts, 0, "a wait for budget spends no attempt: {job:?}");
    // The 48th call fits one call's share of a day (91 s) after the first, less what the burst
    // left over; that is further off than the in-process wait (10 s).
    let max_wait = ChronoDuration::from_std(w.deps.settings.max_budget_wait).unwrap();
    assert!(job.run_at - yielded > max_wait, "yielded rather than waited: {job:?}");
    assert!(job.run_at <= began + ChronoDuration::seconds(91), "back within one call's share of a day: {job:?}");
    assert_eq!((after, ran_after), (calls, ran), "no provider call and no job run while the budget is spent");
}

on_both_stores!(
    a_monday_backlog_uses_the_complexity_budget_without_refusals,
    a_google_backlog_uses_the_user_quota_without_refusals,
    a_daily_limit_makes_jobs_yield_until_the_reset,
    the_planned_daily_budget_makes_jobs_yield_too,
);

mod postgres_fleet {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_workers_on_one_postgres_share_the_budget() {
        super::two_workers_on_one_postgres_share_the_budget().await;
    }

    /// Not a scenario: the entry point of the worker processes the scenario above starts by
    /// re-running this binary (see `process`). Returns at once in any other run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn worker_process() {
        super::process::worker_process().await;
    }
}
