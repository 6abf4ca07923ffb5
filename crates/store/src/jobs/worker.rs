//! The job runner: a single step that tests drive ([`Worker::try_execute_next`]) and a loop
//! around it ([`Worker::run`]) that production drives. Handlers are registered per job kind;
//! the worker only claims kinds it can run.

use crate::{JobStatus, JobStore, LeaseRef, LeasedJob, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::Rng;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where a worker gets the time; tests substitute a clock they move by hand.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// How a handler's run ended, when it did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt after a backoff (provider 5xx, timeout, database blip).
    #[error("transient: {0}")]
    Retry(String),
    /// Will never succeed; the job goes straight to `dead`.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Not a failure: come back at `run_at` without spending the attempt (waiting for budget).
    #[error("yielded until {0}")]
    Yield(DateTime<Utc>),
}

/// What a handler receives besides the job.
#[derive(Clone, Debug)]
pub struct JobContext {
    /// Fires when the worker shuts down or the lease is lost; long handlers should stop.
    pub cancel: CancellationToken,
    pub lease: LeaseRef,
    pub attempt: i32,
}

/// Runs jobs of one or more kinds.
#[async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, job: &crate::Job, ctx: JobContext) -> Result<(), JobError>;
}

/// What one step of the worker did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ran a job; its status afterwards (`succeeded`, `queued` for a retry or yield, `dead`),
    /// or `running` when the lease was lost and the outcome belongs to someone else.
    Done { job_id: crate::JobId, status: JobStatus },
    /// Nothing was due.
    Empty,
}

/// Tunables of a worker.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Lease length; heartbeats renew it every third of this.
    pub lease: Duration,
    /// Sleep between polls when the queue is empty.
    pub poll_interval: Duration,
    /// First retry delay; doubles per attempt, with jitter, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Jobs run at once by one worker loop.
    pub concurrency: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            base_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
            concurrency: 4,
        }
    }
}

/// A job worker bound to one store and a set of handlers.
#[derive(Clone)]
pub struct Worker {
    store: Arc<dyn JobStore>,
    handlers: Arc<HashMap<String, Arc<dyn JobHandler>>>,
    owner: String,
    settings: WorkerSettings,
    clock: Arc<dyn Clock>,
}

impl Worker {
    /// A worker with no handlers yet; `owner` identifies the lease holder (the instance id).
    pub fn new(store: Arc<dyn JobStore>, owner: impl Into<String>, settings: WorkerSettings) -> Self {
        Self { store, handlers: Arc::new(HashMap::new()), owner: owner.into(), settings, clock: Arc::new(SystemClock) }
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Registers the handler for `kind`.
    pub fn handle(mut self, kind: impl Into<String>, handler: Arc<dyn JobHandler>) -> Self {
        Arc::make_mut(&mut self.handlers).insert(kind.into(), handler);
        self
    }

    /// The lease owner name this worker claims under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Claims one due job, runs it, and records the result. Never sleeps waiting for work.
    pub async fn try_execute_next(&self) -> StoreResult<Outcome> {
        self.execute_next(&CancellationToken::new()).await
    }

    async fn execute_next(&self, shutdown: &CancellationToken) -> StoreResult<Outcome> {
        let kinds: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        if kinds.is_empty() {
            return Ok(Outcome::Empty);
        }
        let claim = crate::Claim {
            owner: &self.owner,
            kinds: &kinds,
            lease: chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::seconds(30)),
            now: self.clock.now(),
        };
        let Some(leased) = self.store.claim(claim).await? else {
            return Ok(Outcome::Empty);
        };
        self.execute(leased, shutdown).await
    }

    async fn execute(&self, leased: LeasedJob, shutdown: &CancellationToken) -> StoreResult<Outcome> {
        let LeasedJob { job, lease } = leased;
        let handler = self.handlers.get(&job.kind).cloned();
        let cancel = shutdown.child_token();
        let ctx = JobContext { cancel: cancel.clone(), lease, attempt: job.attempts };
        let heartbeat = self.spawn_heartbeat(lease, cancel.clone());
        let result = match handler {
            Some(handler) => handler.run(&job, ctx).await,
            None => Err(JobError::Permanent(format!("no handler for job kind `{}`", job.kind))),
        };
        heartbeat.abort();
        let lease_lost = cancel.is_cancelled() && !shutdown.is_cancelled();
        let now = self.clock.now();
        let recorded = match result {
            Ok(()) => self.store.complete(&lease, now).await.map(|_| JobStatus::Succeeded),
            Err(JobError::Yield(run_at)) => self.store.release(&lease, run_at, now).await.map(|_| JobStatus::Queued),
            Err(_) if shutdown.is_cancelled() => {
                // Interrupted by shutdown: give the job back untouched for another instance.
                self.store.release(&lease, now, now).await.map(|_| JobStatus::Queued)
            }
            Err(JobError::Retry(message)) => {
                let retry_at = now + self.backoff(job.attempts);
                tracing::warn!(job_id = %job.id, kind = %job.kind, attempt = job.attempts, error = %message, "job failed; will retry");
                self.store.fail(&lease, &message, Some(retry_at), now).await
            }
            Err(JobError::Permanent(message)) => {
                tracing::error!(job_id = %job.id, kind = %job.kind, error = %message, "job failed permanently");
                self.store.fail(&lease, &message, None, now).await
            }
        };
        match recorded {
            Ok(status) => Ok(Outcome::Done { job_id: job.id, status }),
            Err(StoreError::LeaseLost) => {
                // Someone else holds the job now; their write wins (fencing).
                tracing::warn!(job_id = %job.id, lease_lost, "job lease lost; result discarded");
                Ok(Outcome::Done { job_id: job.id, status: JobStatus::Running })
            }
            Err(other) => Err(other),
        }
    }

    fn spawn_heartbeat(&self, lease: LeaseRef, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let clock = self.clock.clone();
        let period = self.settings.lease / 3;
        let length = chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::seconds(30));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(period) => {}
                }
                let now = clock.now();
                match store.heartbeat(&lease, now + length, now).await {
                    Ok(()) => {}
                    Err(StoreError::LeaseLost) => {
                        cancel.cancel();
                        return;
                    }
                    // A blip: keep the handler running and try again next period.
                    Err(e) => tracing::warn!(job_id = %lease.job_id, error = %e, "job heartbeat failed"),
                }
            }
        })
    }

    /// Exponential backoff with full jitter over the upper half: `[d/2, d]`, `d = base·2^(n-1)`.
    fn backoff(&self, attempt: i32) -> chrono::Duration {
        let exp = attempt.clamp(1, 30) as u32 - 1;
        let max = self.settings.max_backoff.as_millis() as u64;
        let base = (self.settings.base_backoff.as_millis() as u64).saturating_mul(1u64 << exp.min(40)).min(max);
        let millis = rand::thread_rng().gen_range(base / 2..=base.max(1));
        chrono::Duration::milliseconds(millis as i64)
    }

    /// Runs jobs until `shutdown` fires, up to `concurrency` at once, then returns after the
    /// running ones have finished or given their leases back.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        for slot in 0..self.settings.concurrency.max(1) {
            let worker = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { worker.run_slot(slot, shutdown).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn run_slot(&self, slot: usize, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let idle = match self.execute_next(&shutdown).await {
                Ok(Outcome::Done { .. }) => false,
                Ok(Outcome::Empty) => true,
                Err(e) => {
                    tracing::warn!(slot, error = %e, "job worker could not reach the store");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(self.settings.poll_interval) => {}
                }
            }
        }
    }
}
