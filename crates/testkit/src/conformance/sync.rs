//! Sync-run and sync-state scenarios: queueing and merging runs, fencing, the finish events,
//! version-checked state writes, dirty flags and change signals, the repair sweep.

use super::*;
use std::sync::Arc;

/// An active Monday connection of a fresh tenant.
pub(crate) async fn active_connection(store: &dyn Store, key: &str) -> (TenantScope, Connection) {
    let (scope, user) = tenant_with_user(store, key).await;
    let connection = store.create_connection(new_connection(&user, &format!("{key}-account"))).await.unwrap();
    (scope, connection)
}

/// A sync request of `connection` due at `run_at`.
pub(crate) fn sync_request(connection: &Connection, run_at: DateTime<Utc>, priority: i32) -> SyncRequest {
    SyncRequest {
        tenant_id: connection.tenant_id,
        connection_id: connection.id,
        resource: SyncResource::of(connection.provider),
        trigger: SyncTrigger::Manual,
        run_at,
        priority,
    }
}

/// Queues a run due at `now` and claims its job: the run and the lease its writes carry.
pub(crate) async fn queued_and_claimed(
    store: &dyn Store,
    connection: &Connection,
    now: DateTime<Utc>,
) -> (SyncRun, LeaseRef) {
    let run = store.request_sync(sync_request(connection, now, 0), now).await.unwrap().run().clone();
    let claim = Claim { owner: "sync-worker", kinds: &["sync.run"], lease: chrono::Duration::seconds(30), now };
    let leased = store.claim(claim).await.unwrap().expect("the run's job is due");
    assert_eq!(Some(leased.job.id), run.job_id, "the claimed job is the run's");
    (run, leased.lease)
}

fn finish(status: SyncRunStatus, error_code: Option<&str>) -> RunFinish {
    RunFinish {
        status,
        api_calls: 3,
        upserted: 5,
        deleted: 1,
        error_code: error_code.map(str::to_owned),
        error_message: error_code.map(|_| "provider said no".to_owned()),
    }
}

/// A request queues a run and its job; later requests merge into it, moving it earlier and up,
/// never later or down.
pub async fn request_sync_queues_one_run_and_later_requests_merge_into_it(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, connection) = active_connection(&*store, "org:sync-merge").await;
    let SyncRequested::Created(run) =
        store.request_sync(sync_request(&connection, secs(now, 60), 0), now).await.unwrap()
    else {
        panic!("the first request creates a run")
    };
    assert_eq!((run.status, run.queued_at, run.connection_id), (SyncRunStatus::Queued, now, connection.id));
    let job = store.get_job(run.job_id.expect("the run names its job")).await.unwrap();
    let payload = SyncRunPayload { tenant_id: scope.tenant_id(), connection_id: connection.id, run_id: run.id };
    assert_eq!(
        (job.kind.as_str(), job.payload.clone(), job.run_at),
        ("sync.run", serde_json::json!(payload), secs(now, 60))
    );

    let merged = store.request_sync(sync_request(&connection, secs(now, 10), 5), secs(now, 1)).await.unwrap();
    assert_eq!(merged, SyncRequested::AlreadyQueued(run.clone()), "a second request merges");
    let job = store.get_job(job.id).await.unwrap();
    assert_eq!((job.run_at, job.priority), (secs(now, 10), 5), "moved earlier and up");
    let late = store.request_sync(sync_request(&connection, secs(now, 600), -10), secs(now, 2)).await.unwrap();
    assert!(matches!(late, SyncRequested::AlreadyQueued(r) if r.id == run.id));
    let job = store.get_job(job.id).await.unwrap();
    assert_eq!((job.run_at, job.priority), (secs(now, 10), 5), "never later or down");

    let counts = store.job_counts().await.unwrap();
    assert_eq!(counts, vec![JobCount { kind: "sync.run".into(), status: JobStatus::Queued, count: 1 }]);
    let runs = store.list_sync_runs(scope, connection.id, Page::first()).await.unwrap();
    assert_eq!(runs.items, vec![run.clone()]);
    assert_eq!(store.get_sync_run(scope, run.id).await.unwrap(), run);
}

/// Only an active connection of the tenant can be synced.
pub async fn request_sync_refuses_a_connection_that_is_not_active(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(&*store, "org:sync-inactive").await;
    let new = NewConnection { status: ConnectionStatus::NeedsReauth, ..new_connection(&user, "acct-reauth") };
    let reauth = store.create_connection(new).await.unwrap();
    let result = store.request_sync(sync_request(&reauth, now, 0), now).await;
    assert!(matches!(result, Err(StoreError::NotFound)), "needs_reauth: {result:?}");

    let (_, active) = active_connection(&*store, "org:sync-other").await;
    let foreign = SyncRequest { tenant_id: scope.tenant_id(), ..sync_request(&active, now, 0) };
    let result = store.request_sync(foreign, now).await;
    assert!(matches!(result, Err(StoreError::NotFound)), "another tenant's connection: {result:?}");
    let missing = SyncRequest { connection_id: ConnectionId::new(), ..sync_request(&active, now, 0) };
    assert!(matches!(store.request_sync(missing, now).await, Err(StoreError::NotFound)));
    assert!(store.job_counts().await.unwrap().is_empty(), "no job was queued");
}

/// Start and finish carry the job's lease: after a reclaim the old lease writes nothing.
pub async fn sync_run_writes_are_fenced_by_the_job_lease(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, connection) = active_connection(&*store, "org:sync-fence").await;
    let (run, old) = queued_and_claimed(&*store, &connection, now).await;
    let started = store.start_sync_run(&old, run.id, now).await.unwrap();
    assert_eq!((started.status, started.started_at), (SyncRunStatus::Running, Some(now)));

    let claim =
        Claim { owner: "other", kinds: &["sync.run"], lease: chrono::Duration::seconds(30), now: secs(now, 31) };
    let new = store.claim(claim).await.unwrap().expect("the lapsed lease is reclaimed").lease;
    let later = secs(now, 32);
    let state = StateWrite {
        part: "boards".into(),
        expected_version: 0,
        checkpoint: serde_json::json!({ "page": 2 }),
        generation: 1,
        success_at: None,
        full_at: None,
    };
    let refused = [
        ("start", store.start_sync_run(&old, run.id, later).await.map(drop)),
        ("finish", store.finish_sync_run(&old, run.id, finish(SyncRunStatus::Succeeded, None), later).await.map(drop)),
        ("save state", store.save_sync_state(&old, connection.id, state.clone(), later).await.map(drop)),
    ];
    for (case, result) in refused {
        assert!(matches!(result, Err(StoreError::LeaseLost)), "old lease {case}: {result:?}");
    }
    assert_eq!(store.get_sync_run(scope, run.id).await.unwrap(), started, "nothing written");
    assert_eq!(store.sync_state(connection.id, "boards").await.unwrap(), None);
    assert_eq!(event_types(&*store, scope).await, vec!["connection.created"]);

    let restarted = store.start_sync_run(&new, run.id, later).await.unwrap();
    assert_eq!(restarted.status, SyncRunStatus::Running, "the next attempt starts the run again");
    store.save_sync_state(&new, connection.id, state, later).await.unwrap();
    let done = store.finish_sync_run(&new, run.id, finish(SyncRunStatus::Succeeded, None), later).await.unwrap();
    assert_eq!(done.status, SyncRunStatus::Succeeded);
    let again = store.start_sync_run(&new, run.id, later).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "a finished run does not start again: {again:?}");
}

/// Success writes `sync.completed` and moves `last_sync_at`, failure writes `sync.failed`, each
/// once; a skipped run writes nothing. Runs list newest first.
pub async fn finishing_a_run_announces_it_once_and_a_skip_announces_nothing(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, connection) = active_connection(&*store, "org:sync-finish").await;
    let mut runs = Vec::new();
    let cases = [
        (SyncRunStatus::Succeeded, None),
        (SyncRunStatus::Failed, Some("rate_limited")),
        (SyncRunStatus::Skipped, None),
    ];
    for (n, (status, code)) in cases.into_iter().enumerate() {
        let at = secs(now, 10 * n as i64);
        let (run, lease) = queued_and_claimed(&*store, &connection, at).await;
        store.start_sync_run(&lease, run.id, at).await.unwrap();
        let done = store.finish_sync_run(&lease, run.id, finish(status, code), secs(at, 1)).await.unwrap();
        assert_eq!((done.status, done.api_calls, done.upserted, done.deleted), (status, 3, 5, 1));
        assert_eq!((done.finished_at, done.error_code.as_deref()), (Some(secs(at, 1)), code));
        let twice = store.finish_sync_run(&lease, run.id, finish(status, code), secs(at, 2)).await.unwrap();
        assert_eq!(twice, done, "a repeated finish changes nothing");
        store.complete(&lease, secs(at, 2)).await.unwrap();
        if status == SyncRunStatus::Succeeded {
            let c = store.get_connection(scope, connection.id).await.unwrap();
            assert_eq!(c.last_sync_at, Some(secs(at, 1)), "success moves last_sync_at");
        }
        runs.push(done);
    }
    assert_eq!(store.get_connection(scope, connection.id).await.unwrap().last_sync_at, Some(secs(now, 1)));
    let events = store.list_events(scope, 0, 100).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["connection.created", "sync.completed", "sync.failed"]);
    let failed = &events[2];
    assert_eq!(failed.connection_id, Some(connection.id));
    assert_eq!(
        failed.payload,
        serde_json::json!({
            "run_id": runs[1].id, "connection_id": connection.id, "resource": "monday.boards",
            "trigger": "manual", "status": "failed", "api_calls": 3, "upserted": 5, "deleted": 1,
            "error_code": "rate_limited",
        }),
        "counts and the error class, never the message"
    );
    assert_eq!(events[1].payload["status"], "succeeded");

    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_sync_runs(scope, connection.id, Page::new(Some(1), after)).await.unwrap();
        listed.extend(page.items);
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    runs.reverse();
    assert_eq!(listed, runs, "newest first, one per page");
}

/// State writes name the version they read; a dirty flag is cleared only by a success after it.
pub async fn sync_state_is_version_checked_and_dirty_is_cleared_only_by_a_later_success(store: Arc<dyn Store>) {
    let now = t0();
    let (_, connection) = active_connection(&*store, "org:sync-state").await;
    let (_, lease) = queued_and_claimed(&*store, &connection, now).await;
    let write = |expected_version: i64, token: &str, success_at: Option<DateTime<Utc>>| StateWrite {
        part: "items:1".into(),
        expected_version,
        checkpoint: serde_json::json!({ "token": token }),
        generation: 7,
        success_at,
        full_at: None,
    };
    let first = store.save_sync_state(&lease, connection.id, write(0, "a", None), now).await.unwrap();
    assert_eq!((first.version, first.generation, first.dirty), (1, 7, false));
    assert_eq!(first.checkpoint, serde_json::json!({ "token": "a" }));
    let stale = store.save_sync_state(&lease, connection.id, write(0, "old", None), now).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "a stale version is refused: {stale:?}");
    assert_eq!(store.sync_state(connection.id, "items:1").await.unwrap(), Some(first.clone()));

    store.mark_dirty(connection.id, "items:1", secs(now, 5)).await.unwrap();
    let dirty = store.sync_state(connection.id, "items:1").await.unwrap().unwrap();
    assert_eq!((dirty.dirty, dirty.dirty_at, dirty.version), (true, Some(secs(now, 5)), 1), "no version bump");
    let early = store.save_sync_state(&lease, connection.id, write(1, "b", Some(secs(now, 4))), now).await.unwrap();
    assert_eq!((early.dirty, early.version, early.last_success_at), (true, 2, Some(secs(now, 4))));
    let full = StateWrite { full_at: Some(secs(now, 6)), ..write(2, "c", Some(secs(now, 6))) };
    let clean = store.save_sync_state(&lease, connection.id, full, now).await.unwrap();
    assert_eq!((clean.dirty, clean.version, clean.last_full_at), (false, 3, Some(secs(now, 6))));

    store.set_change_signal(connection.id, "items:1", Some(secs(now, 3600))).await.unwrap();
    let signalled = store.sync_state(connection.id, "items:1").await.unwrap().unwrap();
    assert_eq!((signalled.signal_healthy_until, signalled.version), (Some(secs(now, 3600)), 3));
    store.set_change_signal(connection.id, "items:1", None).await.unwrap();
    assert_eq!(store.sync_state(connection.id, "items:1").await.unwrap().unwrap().signal_healthy_until, None);

    store.mark_dirty(connection.id, "boards", now).await.unwrap();
    let fresh = store.sync_state(connection.id, "boards").await.unwrap().unwrap();
    assert_eq!((fresh.version, fresh.checkpoint.clone(), fresh.dirty), (0, serde_json::Value::Null, true));
    let parts: Vec<String> = store.sync_states(connection.id).await.unwrap().into_iter().map(|s| s.part).collect();
    assert_eq!(parts, ["boards", "items:1"]);
    let from_zero = StateWrite { part: "boards".into(), ..write(0, "z", Some(secs(now, 1))) };
    let written = store.save_sync_state(&lease, connection.id, from_zero, now).await.unwrap();
    assert_eq!((written.version, written.dirty), (1, false), "a row made by mark_dirty is version 0");
}

/// The repair sweep finds active connections with no queued or running run.
pub async fn repair_candidates_are_active_connections_without_an_open_run(store: Arc<dyn Store>) {
    let now = t0();
    let (_, busy) = active_connection(&*store, "org:repair-busy").await;
    let (_, idle) = active_connection(&*store, "org:repair-idle").await;
    let (_, user) = tenant_with_user(&*store, "org:repair-reauth").await;
    let new = NewConnection { status: ConnectionStatus::NeedsReauth, ..new_connection(&user, "acct-reauth") };
    store.create_connection(new).await.unwrap();
    let (run, lease) = queued_and_claimed(&*store, &busy, now).await;
    let ids = |c: Vec<RepairCandidate>| c.into_iter().map(|c| c.connection_id).collect::<Vec<_>>();
    assert_eq!(ids(store.sync_repair_candidates(100).await.unwrap()), vec![idle.id], "queued counts as open");
    store.start_sync_run(&lease, run.id, now).await.unwrap();
    let found = store.sync_repair_candidates(100).await.unwrap();
    assert_eq!(
        found,
        vec![RepairCandidate { tenant_id: idle.tenant_id, connection_id: idle.id, provider: ProviderId::Monday }]
    );
    store.finish_sync_run(&lease, run.id, finish(SyncRunStatus::Succeeded, None), now).await.unwrap();
    let mut expected = vec![busy.id, idle.id];
    expected.sort();
    assert_eq!(ids(store.sync_repair_candidates(100).await.unwrap()), expected, "in id order");
    assert_eq!(store.sync_repair_candidates(1).await.unwrap().len(), 1, "limited");
}

/// A run whose job ended without finishing it (buried `dead` when its lease lapsed on the final
/// attempt, as a worker killed once too often leaves it) is finished `failed` (`abandoned`) with
/// its `sync.failed` event by the repair sweep, once, and its connection is a candidate again.
pub async fn a_run_whose_job_died_is_abandoned_and_its_connection_repaired(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, connection) = active_connection(&*store, "org:repair-orphan").await;
    let (run, lease) = queued_and_claimed(&*store, &connection, now).await;
    store.start_sync_run(&lease, run.id, now).await.unwrap();
    assert!(store.sync_repair_candidates(100).await.unwrap().is_empty(), "a running run with a live job is open");
    assert_eq!(store.fail(&lease, "worker killed", None, now).await.unwrap(), JobStatus::Dead);

    let found = store.sync_repair_candidates(100).await.unwrap();
    assert_eq!(found.iter().map(|c| c.connection_id).collect::<Vec<_>>(), vec![connection.id]);
    let abandoned = store.get_sync_run(scope, run.id).await.unwrap();
    assert_eq!(abandoned.status, SyncRunStatus::Failed);
    assert_eq!(abandoned.error_code.as_deref(), Some("abandoned"));
    assert!(abandoned.finished_at.is_some());
    assert_eq!(store.sync_repair_candidates(100).await.unwrap().len(), 1, "still a candidate");
    assert_eq!(event_types(&*store, scope).await, vec!["connection.created", "sync.failed"], "announced once");
    let events = store.list_events(scope, 0, 100).await.unwrap();
    assert_eq!(
        (&events[1].payload["run_id"], &events[1].payload["error_code"]),
        (&serde_json::json!(run.id), &serde_json::json!("abandoned"))
    );

    // Due later, so the claim below takes the other connection's job.
    let later = secs(now, 3600);
    let next = store.request_sync(sync_request(&connection, later, 0), now).await.unwrap().run().clone();
    assert_ne!(next.id, run.id, "a new run is queued");
    assert!(store.sync_repair_candidates(100).await.unwrap().is_empty(), "the new run is open");
    assert_eq!(store.get_sync_run(scope, next.id).await.unwrap().status, SyncRunStatus::Queued);

    // A queued run whose job died before it started gets a new job from the next request, names
    // it, and is not abandoned.
    let (other_scope, other) = active_connection(&*store, "org:repair-requeued").await;
    let (queued, lease) = queued_and_claimed(&*store, &other, now).await;
    assert_eq!(store.fail(&lease, "worker killed", None, now).await.unwrap(), JobStatus::Dead);
    let again = store.request_sync(sync_request(&other, now, 0), now).await.unwrap().run().clone();
    assert_eq!(again.id, queued.id, "the request joins the queued run");
    assert_ne!(again.job_id, queued.job_id, "with a new job");
    assert!(store.sync_repair_candidates(100).await.unwrap().is_empty());
    assert_eq!(store.get_sync_run(other_scope, queued.id).await.unwrap().status, SyncRunStatus::Queued);
}
