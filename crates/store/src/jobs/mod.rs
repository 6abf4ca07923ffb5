//! The durable job queue: its rows, the contract every backend implements, typed job kinds,
//! and the worker that runs them ([`worker`]).

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod worker;
pub use worker::{Clock, JobContext, JobError, JobHandler, Outcome, SystemClock, Worker, WorkerSettings};

crate::text_enum! {
    /// The kinds of job Patchbay runs, each with its payload type ([`JobPayload`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum JobKind as "job kind" {
        /// Revoke at the provider, destroy the credential, tombstone ([`DisconnectPayload`]).
        ConnectionDisconnect = "connection.disconnect",
        /// A new connection's first sync ([`SyncInitialPayload`]).
        SyncInitial = "sync.initial",
        /// One sync run of a connection ([`crate::SyncRunPayload`]).
        SyncRun = "sync.run",
        /// Re-queues any connection's missing scheduled sync ([`SyncRepairPayload`]).
        SyncRepair = "sync.repair",
        /// Deletes a disconnected connection's synced records in batches ([`SyncPurgePayload`]).
        SyncPurge = "sync.purge",
        /// Replaces a Google push channel before it expires (`patchbay_sync::google::watch`).
        GoogleWatchRenew = "google.watch.renew",
        /// Stops a disconnected connection's Google push channels (`patchbay_sync::google::watch`).
        GoogleWatchStop = "google.watch.stop",
        /// Dispatches the outbox to event endpoints and sends due deliveries; a singleton that
        /// re-enqueues itself ([`EventsDeliverPayload`]).
        EventsDeliver = "events.deliver",
        /// Applies one inbox event ([`crate::WebhookProcessPayload`]).
        WebhookProcess = "webhook.process",
        /// Deletes what retention no longer keeps, in batches; a singleton that re-enqueues
        /// itself ([`crate::RetentionPrunePayload`]).
        RetentionPrune = "retention.prune",
    }
}

/// A job's payload, typed: the kind it belongs to and how it is queued.
pub trait JobPayload: Serialize + serde::de::DeserializeOwned {
    /// The kind whose payload this is.
    const KIND: JobKind;

    /// The job carrying this payload, due at `now`, with the kind's queueing rules.
    fn job(&self, now: DateTime<Utc>) -> NewJob;

    /// Reads a stored job's payload; a payload of another shape is an error naming the kind.
    fn from_job(job: &Job) -> Result<Self, String> {
        serde_json::from_value(job.payload.clone()).map_err(|e| format!("bad {} payload: {e}", Self::KIND))
    }
}

/// Payload of [`JobKind::ConnectionDisconnect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectPayload {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
}

impl JobPayload for DisconnectPayload {
    const KIND: JobKind = JobKind::ConnectionDisconnect;

    fn job(&self, now: DateTime<Utc>) -> NewJob {
        let mut job = NewJob::new(Self::KIND.as_str(), serde_json::json!(self), now);
        job.priority = 10;
        // Revocation retries (a provider 503) run out after about an hour; cleanup then happens
        // anyway (architecture §4.6), so the job never ends dead for a provider's sake.
        job.max_attempts = 12;
        job.dedup_key = Some(format!("{}:{}", Self::KIND, self.connection_id));
        job.concurrency_key = Some(format!("connection:{}", self.connection_id));
        job
    }
}

/// Payload of [`JobKind::SyncInitial`]: the Sync capability reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncInitialPayload {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
}

impl JobPayload for SyncInitialPayload {
    const KIND: JobKind = JobKind::SyncInitial;

    fn job(&self, now: DateTime<Utc>) -> NewJob {
        let mut job = NewJob::new(Self::KIND.as_str(), serde_json::json!(self), now);
        // Backfills run below change-driven work (architecture §4.3).
        job.priority = -10;
        job.dedup_key = Some(format!("{}:{}", Self::KIND, self.connection_id));
        job.concurrency_key = Some(format!("sync:{}", self.connection_id));
        job
    }
}

/// Payload of [`JobKind::SyncRepair`]: a singleton sweep that re-enqueues itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRepairPayload {}

impl JobPayload for SyncRepairPayload {
    const KIND: JobKind = JobKind::SyncRepair;

    fn job(&self, now: DateTime<Utc>) -> NewJob {
        let mut job = NewJob::new(Self::KIND.as_str(), serde_json::json!(self), now);
        job.priority = -20;
        job.dedup_key = Some(Self::KIND.to_string());
        job.concurrency_key = Some(Self::KIND.to_string());
        job
    }
}

/// Payload of [`JobKind::EventsDeliver`]: a singleton loop (one queued at a time fleet-wide).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsDeliverPayload {}

impl JobPayload for EventsDeliverPayload {
    const KIND: JobKind = JobKind::EventsDeliver;

    fn job(&self, now: DateTime<Utc>) -> NewJob {
        let mut job = NewJob::new(Self::KIND.as_str(), serde_json::json!(self), now);
        job.priority = 5;
        job.dedup_key = Some(Self::KIND.to_string());
        job.concurrency_key = Some(Self::KIND.to_string());
        job
    }
}

/// Payload of [`JobKind::SyncPurge`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncPurgePayload {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
}

impl JobPayload for SyncPurgePayload {
    const KIND: JobKind = JobKind::SyncPurge;

    fn job(&self, now: DateTime<Utc>) -> NewJob {
        let mut job = NewJob::new(Self::KIND.as_str(), serde_json::json!(self), now);
        job.priority = -30;
        job.max_attempts = 20;
        job.dedup_key = Some(format!("{}:{}", Self::KIND, self.connection_id));
        job.concurrency_key = Some(format!("sync:{}", self.connection_id));
        job
    }
}

crate::text_enum! {
    /// A job's state.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum JobStatus as "job status" {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Dead = "dead",
    }
}

/// Input for [`crate::JobStore::enqueue`].
#[derive(Clone, Debug)]
pub struct NewJob {
    pub kind: String,
    pub payload: serde_json::Value,
    /// Higher runs first.
    pub priority: i32,
    pub run_at: DateTime<Utc>,
    /// A queued job with the same key absorbs this one.
    pub dedup_key: Option<String>,
    /// No two running jobs share one.
    pub concurrency_key: Option<String>,
    pub max_attempts: i32,
}

impl NewJob {
    /// A job of `kind` due now with default priority (0) and 5 attempts.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value, now: DateTime<Utc>) -> Self {
        Self {
            kind: kind.into(),
            payload,
            priority: 0,
            run_at: now,
            dedup_key: None,
            concurrency_key: None,
            max_attempts: 5,
        }
    }
}

/// What [`crate::JobStore::enqueue`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// A new job row.
    Created(JobId),
    /// Merged into this already-queued job.
    Merged(JobId),
}

impl EnqueueOutcome {
    pub fn job_id(self) -> JobId {
        match self {
            Self::Created(id) | Self::Merged(id) => id,
        }
    }
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub payload: serde_json::Value,
    pub priority: i32,
    pub run_at: DateTime<Utc>,
    pub dedup_key: Option<String>,
    pub concurrency_key: Option<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub status: JobStatus,
    pub lease_owner: Option<String>,
    pub lease_token: Option<uuid::Uuid>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Input for [`crate::JobStore::claim`].
#[derive(Clone, Copy, Debug)]
pub struct Claim<'a> {
    /// Who takes the lease (the instance id and worker slot).
    pub owner: &'a str,
    /// Kinds this worker can run; empty means any.
    pub kinds: &'a [&'a str],
    pub lease: chrono::Duration,
    pub now: DateTime<Utc>,
}

/// The fencing pair every worker write carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRef {
    pub job_id: JobId,
    pub token: uuid::Uuid,
}

/// A claimed job and its lease.
#[derive(Clone, Debug)]
pub struct LeasedJob {
    pub job: Job,
    pub lease: LeaseRef,
}

/// A count of jobs of one kind in one status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobCount {
    pub kind: String,
    pub status: JobStatus,
    pub count: i64,
}

/// The durable job queue. Every rule of the queue lives in the backends' statements so that it
/// holds across instances: dedup merges, priority, concurrency keys, leases with fencing tokens,
/// attempts counted at claim, `dead` past `max_attempts`, reclaim after a lapsed lease.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Enqueues a job. A queued job with the same `dedup_key` absorbs it: its `run_at` moves
    /// earlier (never later) and its priority up (never down).
    async fn enqueue(&self, job: NewJob, now: DateTime<Utc>) -> StoreResult<EnqueueOutcome>;
    /// Leases the highest-priority due job (of `kinds`, or any when empty) whose concurrency key
    /// has no running job; a running job whose lease lapsed is due again. Counts the attempt.
    async fn claim(&self, claim: Claim<'_>) -> StoreResult<Option<LeasedJob>>;
    /// Extends a lease. Fails with `LeaseLost` if the job was re-leased or finished.
    async fn heartbeat(&self, lease: &LeaseRef, lease_until: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<()>;
    /// Marks a leased job succeeded (fenced by its lease token).
    async fn complete(&self, lease: &LeaseRef, now: DateTime<Utc>) -> StoreResult<()>;
    /// Records a failure: back to `queued` at `retry_at`, or `dead` when attempts are spent or
    /// `retry_at` is `None` (a permanent failure). Returns the new status.
    async fn fail(
        &self,
        lease: &LeaseRef,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<JobStatus>;
    /// Gives a lease back without spending an attempt (budget wait, shutdown).
    async fn release(&self, lease: &LeaseRef, run_at: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<()>;
    /// Gives back every lease an owner (an instance) still holds; used at shutdown.
    async fn release_owner(&self, owner: &str, now: DateTime<Utc>) -> StoreResult<u64>;
    /// One job (operator-level: jobs are not tenant-readable through the API).
    async fn get_job(&self, id: JobId) -> StoreResult<Job>;
    /// Job counts by kind and status, for metrics.
    async fn job_counts(&self) -> StoreResult<Vec<JobCount>>;
}
