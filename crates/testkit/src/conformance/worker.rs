//! The queue's `Worker` end to end on a real store, driven step by step with a fake clock.

use super::*;
use async_trait::async_trait;
use patchbay_store::{Clock, JobContext, JobError, JobHandler, Outcome, Worker, WorkerSettings};
use std::sync::{Arc, Mutex};

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct FakeClock(Mutex<DateTime<Utc>>);

impl FakeClock {
    pub fn at(t: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(t)))
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A handler that ends every run the same way.
struct Fixed(fn(DateTime<Utc>) -> Result<(), JobError>, DateTime<Utc>);

#[async_trait]
impl JobHandler for Fixed {
    async fn run(&self, _job: &Job, _ctx: JobContext) -> Result<(), JobError> {
        (self.0)(self.1)
    }
}

async fn run_one(
    store: Arc<dyn Store>,
    outcome: fn(DateTime<Utc>) -> Result<(), JobError>,
) -> (Outcome, Job, DateTime<Utc>) {
    let now = t0();
    let id = store.enqueue(job("work", now), now).await.unwrap().job_id();
    let worker = Worker::new(store.clone(), "worker-1", WorkerSettings::default())
        .with_clock(FakeClock::at(now))
        .handle("work", Arc::new(Fixed(outcome, now)));
    let ran = worker.try_execute_next().await.unwrap();
    assert_eq!(worker.try_execute_next().await.unwrap(), Outcome::Empty, "nothing else is due at the same instant");
    (ran, store.get_job(id).await.unwrap(), now)
}

/// A handler that succeeds leaves its job `succeeded`.
pub async fn the_worker_completes_a_job_whose_handler_succeeds(store: Arc<dyn Store>) {
    let (ran, job, _) = run_one(store, |_| Ok(())).await;
    assert_eq!(ran, Outcome::Done { job_id: job.id, status: JobStatus::Succeeded });
    assert_eq!((job.status, job.attempts, job.lease_token), (JobStatus::Succeeded, 1, None));
}

/// A transient failure goes back to the queue, due after a backoff.
pub async fn the_worker_requeues_a_retry_after_a_backoff(store: Arc<dyn Store>) {
    let (ran, job, now) = run_one(store, |_| Err(JobError::Retry("provider 503".into()))).await;
    assert_eq!(ran, Outcome::Done { job_id: job.id, status: JobStatus::Queued });
    assert_eq!((job.status, job.attempts, job.last_error.as_deref()), (JobStatus::Queued, 1, Some("provider 503")));
    assert!(job.run_at > now, "retry is due later than now: {} vs {now}", job.run_at);
}

/// A permanent failure makes the job `dead` at once.
pub async fn the_worker_buries_a_permanent_failure(store: Arc<dyn Store>) {
    let (ran, job, _) = run_one(store, |_| Err(JobError::Permanent("account deleted".into()))).await;
    assert_eq!(ran, Outcome::Done { job_id: job.id, status: JobStatus::Dead });
    assert_eq!((job.status, job.last_error.as_deref()), (JobStatus::Dead, Some("account deleted")));
}

/// A yield (waiting for budget) requeues at the given time without spending the attempt.
pub async fn the_worker_requeues_a_yield_without_spending_the_attempt(store: Arc<dyn Store>) {
    let (ran, job, now) = run_one(store, |now| Err(JobError::Yield(secs(now, 42)))).await;
    assert_eq!(ran, Outcome::Done { job_id: job.id, status: JobStatus::Queued });
    assert_eq!((job.status, job.attempts, job.run_at), (JobStatus::Queued, 0, secs(now, 42)));
}
