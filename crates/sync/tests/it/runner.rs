//! The sync job handlers driven through a real [`Worker`] on a real store: skips, yields,
//! inactive connections, successors, the repair sweep and the purge.

use crate::support::World;
use chrono::{DateTime, SubsecRound, Utc};
use patchbay_store::*;
use patchbay_sync::runner;
use patchbay_testkit::fakes::google::ApiFailure;
use std::sync::{Arc, Mutex};

/// A clock the test moves by hand; shared by the worker and the handlers.
#[derive(Debug)]
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn advance(&self, by: chrono::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Puts the world's handlers on a hand-moved clock starting now (in whole microseconds, as the
/// stores keep times, so computed times compare exactly with stored ones).
fn hand_clock(w: &mut World) -> Arc<TestClock> {
    let clock = Arc::new(TestClock(Mutex::new(Utc::now().trunc_subsecs(6))));
    w.deps.clock = clock.clone();
    clock
}

/// A worker running the sync handlers of `kinds`, on the world's clock.
fn worker(w: &World, kinds: &[JobKind]) -> Worker {
    let jobs: Arc<dyn JobStore> = w.store.clone();
    let mut worker = Worker::new(jobs, "runner-test", WorkerSettings::default()).with_clock(w.deps.clock.clone());
    for (kind, handler) in runner::handlers(&w.deps) {
        if kinds.contains(&kind) {
            worker = worker.handle(kind.as_str(), handler);
        }
    }
    worker
}

const ALL: [JobKind; 4] = [JobKind::SyncInitial, JobKind::SyncRun, JobKind::SyncRepair, JobKind::SyncPurge];

/// Runs due jobs until none is left; returns how many ran.
async fn drain(worker: &Worker) -> usize {
    for ran in 0..50 {
        if worker.try_execute_next().await.expect("the worker reaches the store") == Outcome::Empty {
            return ran;
        }
    }
    panic!("the queue never drained");
}

async fn request(w: &World, connection: &Connection, trigger: SyncTrigger) -> SyncRequested {
    let now = w.deps.clock.now();
    let request = SyncRequest {
        tenant_id: connection.tenant_id,
        connection_id: connection.id,
        resource: SyncResource::of(connection.provider),
        trigger,
        run_at: now,
        priority: SyncRequest::INCREMENTAL_PRIORITY,
    };
    w.store.request_sync(request, now).await.expect("request a sync")
}

async fn runs(w: &World, connection: &Connection) -> Vec<SyncRun> {
    let scope = TenantScope::new(connection.tenant_id);
    w.store.list_sync_runs(scope, connection.id, Page::first()).await.expect("list runs").items
}

async fn run(w: &World, run: &SyncRun) -> SyncRun {
    w.store.get_sync_run(TenantScope::new(run.tenant_id), run.id).await.expect("the run")
}

/// The connection's one queued run (the successor), checked to be a scheduled one.
async fn successor(w: &World, connection: &Connection) -> (SyncRun, Job) {
    let queued: Vec<_> = runs(w, connection).await.into_iter().filter(|r| r.status == SyncRunStatus::Queued).collect();
    assert_eq!(queued.len(), 1, "exactly one successor: {queued:?}");
    let next = queued.into_iter().next().unwrap();
    assert_eq!(next.trigger, SyncTrigger::Schedule);
    let job = w.store.get_job(next.job_id.expect("a queued run has a job")).await.expect("its job");
    (next, job)
}

/// Writes a part's state as a finished sync would: synced at `at`.
async fn synced_part(w: &World, lease: &LeaseRef, connection: &Connection, part: &str, at: DateTime<Utc>) {
    let write = StateWrite {
        part: part.into(),
        expected_version: 0,
        checkpoint: serde_json::json!({}),
        generation: 1,
        success_at: Some(at),
        full_at: Some(at),
    };
    w.store.save_sync_state(lease, connection.id, write, at).await.expect("save the state");
}

async fn a_quiet_scheduled_run_is_skipped_without_provider_calls(mut w: World) {
    let clock = hand_clock(&mut w);
    let connection = w.google_connection("acme", "ann").await;
    let now = clock.now();
    let lease = w.lease().await;
    synced_part(&w, &lease, &connection, "calendars", now).await;
    synced_part(&w, &lease, &connection, "events:ann@gmail.test", now).await;
    let healthy = now + chrono::Duration::hours(1);
    w.store.set_change_signal(connection.id, "events:ann@gmail.test", Some(healthy)).await.unwrap();
    let requested = request(&w, &connection, SyncTrigger::Schedule).await;
    clock.advance(chrono::Duration::seconds(1));

    assert_eq!(drain(&worker(&w, &ALL)).await, 1);
    let skipped = run(&w, requested.run()).await;
    assert_eq!(skipped.status, SyncRunStatus::Skipped);
    assert_eq!((skipped.api_calls, skipped.error_code.as_deref()), (0, None));
    assert_eq!(w.google.api_calls(), 0, "a skipped run calls nothing");
    // Every event part is watched: the successor waits the longer backstop.
    let (_, job) = successor(&w, &connection).await;
    assert_eq!(job.run_at, clock.now() + chrono::Duration::from_std(w.deps.settings.backstop_with_signal).unwrap());
}

async fn a_dirty_part_or_a_manual_request_is_not_skipped(mut w: World) {
    let clock = hand_clock(&mut w);
    let connection = w.google_connection("acme", "ann").await;
    let now = clock.now();
    let lease = w.lease().await;
    synced_part(&w, &lease, &connection, "calendars", now).await;
    synced_part(&w, &lease, &connection, "events:ann@gmail.test", now).await;
    w.store
        .set_change_signal(connection.id, "events:ann@gmail.test", Some(now + chrono::Duration::hours(1)))
        .await
        .unwrap();
    // A scheduled run that a manual request merged into is run, not skipped.
    let scheduled = request(&w, &connection, SyncTrigger::Schedule).await;
    let manual = request(&w, &connection, SyncTrigger::Manual).await;
    assert!(matches!(manual, SyncRequested::AlreadyQueued(_)), "{manual:?}");
    assert_eq!(manual.run().id, scheduled.run().id);
    assert_eq!(manual.run().trigger, SyncTrigger::Manual, "the merge raises the trigger");

    assert_eq!(drain(&worker(&w, &ALL)).await, 1);
    let done = run(&w, scheduled.run()).await;
    assert_eq!(done.status, SyncRunStatus::Succeeded, "{done:?}");
    assert!(done.api_calls > 0 && w.google.api_calls() > 0, "{done:?}");
}

async fn a_rate_limited_run_yields_its_attempt_and_resumes(mut w: World) {
    let clock = hand_clock(&mut w);
    let connection = w.google_connection("acme", "ann").await;
    w.google.fail_calendar_api(ApiFailure::TooManyRequests { retry_after: Some(30) }, 1);
    let requested = request(&w, &connection, SyncTrigger::Manual).await;
    let job_id = requested.run().job_id.expect("the run has a job");
    let worker = worker(&w, &ALL);

    let outcome = worker.try_execute_next().await.unwrap();
    assert_eq!(outcome, Outcome::Done { job_id, status: JobStatus::Queued });
    let job = w.store.get_job(job_id).await.unwrap();
    assert_eq!(job.attempts, 0, "a wait for budget spends no attempt");
    assert!(job.run_at >= clock.now() + chrono::Duration::seconds(30), "back after Retry-After: {job:?}");
    assert_eq!(run(&w, requested.run()).await.status, SyncRunStatus::Running, "the run stays open");
    assert_eq!(drain(&worker).await, 0, "not due before Retry-After");
    // A request meanwhile merges into the waiting run instead of queueing another.
    let merged = request(&w, &connection, SyncTrigger::Schedule).await;
    assert!(matches!(merged, SyncRequested::AlreadyQueued(ref r) if r.id == requested.run().id), "{merged:?}");

    clock.advance(chrono::Duration::seconds(31));
    assert_eq!(drain(&worker).await, 1);
    let done = run(&w, requested.run()).await;
    assert_eq!(done.status, SyncRunStatus::Succeeded, "{done:?}");
    assert_eq!(done.trigger, SyncTrigger::Manual);
    assert_eq!(w.store.get_job(job_id).await.unwrap().attempts, 1, "one attempt in all");
    // No change signal: the successor comes at the short backstop.
    let (_, next) = successor(&w, &connection).await;
    assert_eq!(next.run_at, clock.now() + chrono::Duration::from_std(w.deps.settings.backstop_without_signal).unwrap());
}

async fn a_run_of_an_inactive_connection_fails_without_provider_calls(mut w: World) {
    let _clock = hand_clock(&mut w);
    let connection = w.google_connection("acme", "ann").await;
    let requested = request(&w, &connection, SyncTrigger::Manual).await;
    let change = StatusChange {
        status: ConnectionStatus::NeedsReauth,
        reason: Some("invalid_grant".into()),
        actor: "test".into(),
        now: Utc::now(),
    };
    w.store.set_connection_status(TenantScope::new(connection.tenant_id), connection.id, change).await.unwrap();

    assert_eq!(drain(&worker(&w, &ALL)).await, 1);
    let failed = run(&w, requested.run()).await;
    assert_eq!(failed.status, SyncRunStatus::Failed);
    assert_eq!(failed.error_code.as_deref(), Some("connection_inactive"));
    assert_eq!(w.google.api_calls(), 0);
    assert_eq!(runs(&w, &connection).await.len(), 1, "no successor for an inactive connection");
}

async fn the_initial_job_queues_a_backfill_run(mut w: World) {
    let _clock = hand_clock(&mut w);
    let connection = w.google_connection("acme", "ann").await;
    let now = w.deps.clock.now();
    let payload = SyncInitialPayload { tenant_id: connection.tenant_id, connection_id: connection.id };
    w.store.enqueue(payload.job(now), now).await.unwrap();

    assert_eq!(drain(&worker(&w, &[JobKind::SyncInitial])).await, 1);
    let runs = runs(&w, &connection).await;
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].trigger, runs[0].status), (SyncTrigger::Initial, SyncRunStatus::Queued));
    let job = w.store.get_job(runs[0].job_id.unwrap()).await.unwrap();
    assert_eq!(job.priority, SyncRequest::BACKFILL_PRIORITY);
}

async fn repair_requeues_connections_without_a_pending_run(mut w: World) {
    let clock = hand_clock(&mut w);
    let lost = w.google_connection("acme", "ann").await;
    let pending = w.google_connection("globex", "bob").await;
    let kept = request(&w, &pending, SyncTrigger::Manual).await;
    let now = clock.now();
    w.store.enqueue(SyncRepairPayload {}.job(now), now).await.unwrap();

    assert_eq!(drain(&worker(&w, &[JobKind::SyncRepair])).await, 1);
    let repaired = runs(&w, &lost).await;
    assert_eq!(repaired.len(), 1);
    assert_eq!((repaired[0].trigger, repaired[0].status), (SyncTrigger::Schedule, SyncRunStatus::Queued));
    assert_eq!(runs(&w, &pending).await, vec![kept.run().clone()], "a pending run is left alone");
    // The sweep queued its next turn.
    let counts = w.store.job_counts().await.unwrap();
    let queued = |kind: JobKind| {
        counts.iter().find(|c| c.kind == kind.as_str() && c.status == JobStatus::Queued).map_or(0, |c| c.count)
    };
    assert_eq!(queued(JobKind::SyncRepair), 1);
    clock.advance(chrono::Duration::from_std(runner::REPAIR_EVERY).unwrap());
    assert_eq!(drain(&worker(&w, &[JobKind::SyncRepair])).await, 1, "the next sweep is due after the interval");
    assert_eq!(runs(&w, &lost).await.len(), 1, "the repaired run absorbs the next sweep's request");
}

async fn purge_deletes_every_record_in_batches(mut w: World) {
    let _clock = hand_clock(&mut w);
    w.tune(|s| s.purge_batch = 3);
    let connection = w.google_connection("acme", "ann").await;
    let scope = TenantScope::new(connection.tenant_id);
    let records: Vec<_> = (0..7)
        .map(|n| {
            let provider_id = format!("event-{n}");
            RecordWrite {
                kind: RecordKind::GoogleEvent,
                id: RecordId::derive_event(connection.id, "primary", &provider_id),
                provider_id,
                parent_id: Some(RecordId::derive(connection.id, RecordKind::GoogleCalendar, "primary")),
                change: RecordChange::Upsert(RecordFields {
                    hash: vec![n as u8; 32],
                    sealed: vec![n as u8; 48],
                    key_id: 1,
                    ..RecordFields::default()
                }),
            }
        })
        .collect();
    w.store.upsert_records(scope, connection.id, records, Utc::now()).await.unwrap();
    w.store.mark_dirty(connection.id, "events:ann@gmail.test", Utc::now()).await.unwrap();
    let now = w.deps.clock.now();
    let payload = SyncPurgePayload { tenant_id: connection.tenant_id, connection_id: connection.id };
    w.store.enqueue(payload.job(now), now).await.unwrap();

    assert_eq!(drain(&worker(&w, &[JobKind::SyncPurge])).await, 1);
    let filter = RecordFilter { include_deleted: true, ..RecordFilter::default() };
    let left = w.store.list_records(scope, connection.id, RecordKind::GoogleEvent, &filter, Page::first()).await;
    assert!(left.unwrap().items.is_empty());
    assert!(w.store.sync_states(connection.id).await.unwrap().is_empty());
}

on_both_stores!(
    a_quiet_scheduled_run_is_skipped_without_provider_calls,
    a_dirty_part_or_a_manual_request_is_not_skipped,
    a_rate_limited_run_yields_its_attempt_and_resumes,
    a_run_of_an_inactive_connection_fails_without_provider_calls,
    the_initial_job_queues_a_backfill_run,
    repair_requeues_connections_without_a_pending_run,
    purge_deletes_every_record_in_batches,
);
