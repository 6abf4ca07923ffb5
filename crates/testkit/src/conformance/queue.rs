//! Job-queue scenarios: dedup merges, claim races, concurrency keys, leases and fencing,
//! attempts, priority, release.

use super::*;
use std::sync::Arc;

fn deduped(kind: &str, key: &str, run_at: DateTime<Utc>) -> NewJob {
    NewJob { dedup_key: Some(key.into()), ..job(kind, run_at) }
}

/// Two concurrent enqueues of one dedup key make one job, due at the earlier time.
pub async fn concurrent_enqueues_of_one_dedup_key_make_one_job_due_at_the_earlier_time(store: Arc<dyn Store>) {
    let now = t0();
    let (later, earlier) = (deduped("sync", "sync:c1", secs(now, 60)), deduped("sync", "sync:c1", secs(now, 10)));
    let (s1, s2) = (store.clone(), store.clone());
    let (first, second) = tokio::join!(s1.enqueue(later, now), s2.enqueue(earlier, now));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.job_id(), second.job_id(), "both enqueues name one job");
    let mut outcomes = [first, second].map(|o| matches!(o, EnqueueOutcome::Created(_)));
    outcomes.sort();
    assert_eq!(outcomes, [false, true], "one Created and one Merged: {first:?} {second:?}");
    let stored = store.get_job(first.job_id()).await.unwrap();
    assert_eq!(stored.run_at, secs(now, 10), "the merged job is due at the earlier run_at");
    let counts = store.job_counts().await.unwrap();
    assert_eq!(counts, vec![JobCount { kind: "sync".into(), status: JobStatus::Queued, count: 1 }]);
}

/// A merge moves run_at earlier and priority up, never the other way, and keeps the payload.
pub async fn a_dedup_merge_never_moves_run_at_later_or_priority_down(store: Arc<dyn Store>) {
    let now = t0();
    let original =
        NewJob { priority: 5, payload: serde_json::json!({ "v": 1 }), ..deduped("sync", "k", secs(now, 10)) };
    let id = store.enqueue(original, now).await.unwrap().job_id();
    let later = NewJob { priority: 1, payload: serde_json::json!({ "v": 2 }), ..deduped("sync", "k", secs(now, 99)) };
    assert_eq!(store.enqueue(later, now).await.unwrap(), EnqueueOutcome::Merged(id));
    let stored = store.get_job(id).await.unwrap();
    assert_eq!((stored.run_at, stored.priority), (secs(now, 10), 5), "a later, lower enqueue changes nothing");
    assert_eq!(stored.payload, serde_json::json!({ "v": 1 }), "the queued job keeps its payload");
    let urgent = NewJob { priority: 9, ..deduped("sync", "k", secs(now, 1)) };
    store.enqueue(urgent, now).await.unwrap();
    let stored = store.get_job(id).await.unwrap();
    assert_eq!((stored.run_at, stored.priority), (secs(now, 1), 9), "an earlier, higher enqueue pulls the job forward");
}

/// Sixteen concurrent claims of one due job: exactly one wins.
pub async fn only_one_of_many_concurrent_claims_gets_a_due_job(store: Arc<dyn Store>) {
    let now = t0();
    let id = store.enqueue(job("sync", now), now).await.unwrap().job_id();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..16 {
        let store = store.clone();
        tasks.spawn(async move { store.claim(claim_any(&format!("worker-{n}"), now)).await.unwrap() });
    }
    let won: Vec<LeasedJob> = tasks.join_all().await.into_iter().flatten().collect();
    assert_eq!(won.len(), 1, "exactly one claim succeeds");
    assert_eq!(won[0].job.id, id);
    assert_eq!((won[0].job.status, won[0].job.attempts), (JobStatus::Running, 1));
}

/// A job whose concurrency key is running waits; once that job completes it is claimed.
pub async fn a_job_waits_while_its_concurrency_key_is_running(store: Arc<dyn Store>) {
    let now = t0();
    let keyed = |n: i32| NewJob { concurrency_key: Some("conn:1".into()), priority: n, ..job("sync", now) };
    let first = store.enqueue(keyed(2), now).await.unwrap().job_id();
    let second = store.enqueue(keyed(1), now).await.unwrap().job_id();
    let free = store.enqueue(job("other", now), now).await.unwrap().job_id();
    let leased = store.claim(claim_any("w1", now)).await.unwrap().expect("first job");
    assert_eq!(leased.job.id, first);
    let next = store.claim(claim_any("w2", now)).await.unwrap().expect("an unkeyed job");
    assert_eq!(next.job.id, free, "the keyed job is skipped while its key runs");
    assert!(store.claim(claim_any("w2", now)).await.unwrap().is_none(), "nothing else is claimable");
    store.complete(&leased.lease, now).await.unwrap();
    let after = store.claim(claim_any("w2", now)).await.unwrap().expect("the second keyed job");
    assert_eq!(after.job.id, second);
}

/// A lapsed lease is reclaimed by another owner; the old worker's writes are fenced out.
pub async fn a_lapsed_lease_is_reclaimed_and_the_old_worker_is_fenced_out(store: Arc<dyn Store>) {
    let now = t0();
    let id = store.enqueue(job("sync", now), now).await.unwrap().job_id();
    let old = store.claim(claim_any("old", now)).await.unwrap().expect("claimed");
    assert!(store.claim(claim_any("new", secs(now, 29))).await.unwrap().is_none(), "a live lease is not reclaimed");
    let new = store.claim(claim_any("new", secs(now, 31))).await.unwrap().expect("reclaimed after the lease lapsed");
    assert_eq!((new.job.id, new.job.attempts), (id, 2));
    assert_ne!(new.lease.token, old.lease.token, "a reclaim hands out a new token");
    let before = store.get_job(id).await.unwrap();

    let later = secs(now, 32);
    let fenced: Vec<(&str, StoreResult<()>)> = vec![
        ("complete", store.complete(&old.lease, later).await),
        ("fail", store.fail(&old.lease, "boom", Some(later), later).await.map(drop)),
        ("heartbeat", store.heartbeat(&old.lease, secs(now, 600), later).await),
        ("release", store.release(&old.lease, later, later).await),
    ];
    for (case, result) in fenced {
        assert!(
            matches!(result, Err(StoreError::LeaseLost)),
            "old worker's {case}: expected LeaseLost, got {result:?}"
        );
    }
    assert_eq!(store.get_job(id).await.unwrap(), before, "fenced writes leave the row untouched");
    assert_eq!(before.lease_owner.as_deref(), Some("new"));
    store.complete(&new.lease, later).await.unwrap();
    assert_eq!(store.get_job(id).await.unwrap().status, JobStatus::Succeeded);
}

/// Attempts are counted at claim; a failure on the last attempt is dead even with a retry.
pub async fn attempts_are_counted_at_claim_and_a_job_past_max_attempts_is_dead(store: Arc<dyn Store>) {
    let now = t0();
    let id = store.enqueue(NewJob { max_attempts: 2, ..job("sync", now) }, now).await.unwrap().job_id();
    let first = store.claim(claim_any("w", now)).await.unwrap().expect("attempt 1");
    assert_eq!(first.job.attempts, 1);
    let status = store.fail(&first.lease, "flaky", Some(secs(now, 5)), now).await.unwrap();
    assert_eq!(status, JobStatus::Queued);
    let retried = store.get_job(id).await.unwrap();
    assert_eq!(
        (retried.run_at, retried.last_error.as_deref(), retried.lease_token),
        (secs(now, 5), Some("flaky"), None)
    );
    assert!(store.claim(claim_any("w", secs(now, 4))).await.unwrap().is_none(), "not before retry_at");
    let second = store.claim(claim_any("w", secs(now, 5))).await.unwrap().expect("attempt 2");
    assert_eq!(second.job.attempts, 2);
    let status = store.fail(&second.lease, "flaky again", Some(secs(now, 10)), now).await.unwrap();
    assert_eq!(status, JobStatus::Dead, "attempts are spent");
    assert!(store.claim(claim_any("w", secs(now, 60))).await.unwrap().is_none(), "a dead job is never claimed");

    let permanent = store.enqueue(job("sync", now), now).await.unwrap().job_id();
    let leased = store.claim(claim_any("w", now)).await.unwrap().expect("claimed");
    assert_eq!(store.fail(&leased.lease, "bad request", None, now).await.unwrap(), JobStatus::Dead);
    assert_eq!(store.get_job(permanent).await.unwrap().last_error.as_deref(), Some("bad request"));
}

/// A lease that lapses on the final attempt buries the job instead of running it again.
pub async fn a_lapsed_lease_on_the_final_attempt_makes_the_job_dead(store: Arc<dyn Store>) {
    let now = t0();
    let id = store.enqueue(NewJob { max_attempts: 1, ..job("sync", now) }, now).await.unwrap().job_id();
    store.claim(claim_any("crashed", now)).await.unwrap().expect("claimed");
    assert!(store.claim(claim_any("w", secs(now, 31))).await.unwrap().is_none(), "not run a second time");
    let dead = store.get_job(id).await.unwrap();
    assert_eq!((dead.status, dead.attempts), (JobStatus::Dead, 1));
    assert_eq!(dead.last_error.as_deref(), Some("lease expired on the final attempt"));
}

/// Claims follow priority, then run_at; future jobs and other kinds are left alone.
pub async fn claims_follow_priority_and_skip_future_jobs_and_other_kinds(store: Arc<dyn Store>) {
    let now = t0();
    let low_early = store.enqueue(NewJob { priority: 0, ..job("sync", secs(now, -20)) }, now).await.unwrap().job_id();
    let high = store.enqueue(NewJob { priority: 10, ..job("sync", now) }, now).await.unwrap().job_id();
    let low_late = store.enqueue(NewJob { priority: 0, ..job("sync", secs(now, -10)) }, now).await.unwrap().job_id();
    store.enqueue(NewJob { priority: 99, ..job("sync", secs(now, 1)) }, now).await.unwrap();
    store.enqueue(NewJob { priority: 99, ..job("webhook", now) }, now).await.unwrap();
    let only_sync = Claim { kinds: &["sync"], ..claim_any("w", now) };
    let mut order = Vec::new();
    while let Some(leased) = store.claim(only_sync).await.unwrap() {
        order.push(leased.job.id);
    }
    assert_eq!(order, vec![high, low_early, low_late], "priority desc, then run_at; the future job waits");
}

/// Releasing a lease refunds the attempt; release_owner gives back all of an owner's leases.
pub async fn release_refunds_the_attempt_and_release_owner_frees_every_lease(store: Arc<dyn Store>) {
    let now = t0();
    let a = store.enqueue(job("sync", now), now).await.unwrap().job_id();
    let leased = store.claim(claim_any("w", now)).await.unwrap().expect("claimed");
    store.release(&leased.lease, secs(now, 30), now).await.unwrap();
    let released = store.get_job(a).await.unwrap();
    assert_eq!((released.status, released.attempts, released.run_at), (JobStatus::Queued, 0, secs(now, 30)));
    assert_eq!((released.lease_owner, released.lease_token), (None, None));

    for kind in ["x", "y"] {
        store.enqueue(job(kind, now), now).await.unwrap();
    }
    let mine = [store.claim(claim_any("me", now)).await.unwrap(), store.claim(claim_any("me", now)).await.unwrap()];
    store.enqueue(job("z", now), now).await.unwrap();
    let theirs = store.claim(claim_any("them", now)).await.unwrap().expect("claimed");
    assert_eq!(store.release_owner("me", now).await.unwrap(), 2);
    for leased in mine.iter().flatten() {
        let job = store.get_job(leased.job.id).await.unwrap();
        assert_eq!((job.status, job.attempts), (JobStatus::Queued, 0), "{} is back in the queue", job.kind);
    }
    assert_eq!(store.get_job(theirs.job.id).await.unwrap().status, JobStatus::Running, "other owners keep theirs");
}

/// A retried job whose dedup key was re-enqueued while it ran merges into the queued one.
pub async fn a_retry_merges_into_a_job_enqueued_with_its_dedup_key_meanwhile(store: Arc<dyn Store>) {
    let now = t0();
    let running = store.enqueue(deduped("sync", "sync:c9", now), now).await.unwrap().job_id();
    let leased = store.claim(claim_any("w", now)).await.unwrap().expect("claimed");
    let queued = store.enqueue(deduped("sync", "sync:c9", secs(now, 300)), now).await.unwrap();
    assert_eq!(queued, EnqueueOutcome::Created(queued.job_id()), "a running job does not absorb enqueues");
    let status = store.fail(&leased.lease, "timeout", Some(secs(now, 60)), now).await.unwrap();
    assert_eq!(status, JobStatus::Failed, "the failed run is superseded");
    assert_eq!(store.get_job(queued.job_id()).await.unwrap().run_at, secs(now, 60), "the retry time carries over");
    assert_eq!(store.get_job(running).await.unwrap().status, JobStatus::Failed);
}

/// Many concurrent claims over many jobs sharing one concurrency key lease exactly one of
/// them (on Postgres the losers of the race hit the unique index and move on silently).
pub async fn concurrent_claims_never_run_two_jobs_of_one_concurrency_key(store: Arc<dyn Store>) {
    let now = t0();
    for _ in 0..8 {
        store.enqueue(NewJob { concurrency_key: Some("conn:hot".into()), ..job("sync", now) }, now).await.unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..16 {
        let store = store.clone();
        tasks.spawn(async move { store.claim(claim_any(&format!("worker-{n}"), now)).await });
    }
    let results = tasks.join_all().await;
    assert!(results.iter().all(Result::is_ok), "no claim surfaces an error: {results:?}");
    let won = results.into_iter().flatten().flatten().count();
    assert_eq!(won, 1, "exactly one job of the key runs");
}
