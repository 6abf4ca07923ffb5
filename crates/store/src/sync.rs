//! Sync bookkeeping: what is synced per connection ([`SyncResource`]), where each part stands
//! ([`SyncState`]: checkpoint, generation, dirty flag, change signal), and the runs that move it
//! ([`SyncRun`]). The page write that moves a checkpoint together with its records lives in
//! [`crate::records`].

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

crate::text_enum! {
    /// What a sync run covers: one per provider, so one run per connection at a time.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum SyncResource as "sync resource" {
        /// The calendar list and every calendar's events.
        GoogleCalendar = "google.calendar",
        /// Boards (with columns and groups) and their items.
        MondayBoards = "monday.boards",
    }
}

impl SyncResource {
    /// The resource a connection of `provider` syncs.
    pub fn of(provider: ProviderId) -> Self {
        match provider {
            ProviderId::Google => Self::GoogleCalendar,
            ProviderId::Monday => Self::MondayBoards,
        }
    }
}

crate::text_enum! {
    /// Why a run was started.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum SyncTrigger as "sync trigger" {
        /// The first sync after a connect.
        Initial = "initial",
        /// The backstop schedule (a run's successor, or the repair sweep).
        Schedule = "schedule",
        /// A change signal (webhook, push channel) marked a part dirty.
        Webhook = "webhook",
        /// `POST /v1/connections/{id}/sync`.
        Manual = "manual",
    }
}

impl SyncTrigger {
    /// Which trigger a merged request keeps: initial > manual > webhook > schedule (a person's
    /// or a signal's request must never be skipped as a quiet scheduled run).
    pub fn rank(self) -> u8 {
        match self {
            Self::Schedule => 0,
            Self::Webhook => 1,
            Self::Manual => 2,
            Self::Initial => 3,
        }
    }
}

crate::text_enum! {
    /// A run's state.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum SyncRunStatus as "sync run status" {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Due, but nothing was dirty and the change signal was healthy: no provider call made.
        Skipped = "skipped",
    }
}

impl SyncRunStatus {
    /// Whether the run has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Skipped)
    }
}

/// One sync run of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRun {
    pub id: SyncRunId,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub resource: SyncResource,
    pub trigger: SyncTrigger,
    pub status: SyncRunStatus,
    /// The job that runs it.
    pub job_id: Option<JobId>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Provider requests made (what the skip rate saves).
    pub api_calls: i64,
    /// Records created or changed.
    pub upserted: i64,
    /// Records tombstoned.
    pub deleted: i64,
    /// A stable error class (`rate_limited`, `provider_unavailable`, `needs_reauth`, …).
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// Input for [`SyncStore::request_sync`].
#[derive(Clone, Debug)]
pub struct SyncRequest {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub resource: SyncResource,
    pub trigger: SyncTrigger,
    /// When the run is due. A request merging into a queued run moves it earlier, never later.
    pub run_at: DateTime<Utc>,
    /// Job priority: incremental work (0) above backfills ([`SyncRequest::BACKFILL_PRIORITY`]).
    pub priority: i32,
}

impl SyncRequest {
    /// Initial backfills run below change-driven incremental syncs (architecture §4.3).
    pub const BACKFILL_PRIORITY: i32 = -10;
    /// Manual and webhook-driven runs.
    pub const INCREMENTAL_PRIORITY: i32 = 0;
}

/// What [`SyncStore::request_sync`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncRequested {
    /// A new queued run (and its job).
    Created(SyncRun),
    /// A run of the connection was already queued; the request merged into it.
    AlreadyQueued(SyncRun),
}

impl SyncRequested {
    pub fn run(&self) -> &SyncRun {
        match self {
            Self::Created(run) | Self::AlreadyQueued(run) => run,
        }
    }
}

/// Payload of [`JobKind::SyncRun`]: the run row it executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRunPayload {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub run_id: SyncRunId,
}

impl SyncRunPayload {
    /// The job carrying a run, with the queueing rules every backend applies in
    /// [`SyncStore::request_sync`]: one queued run per connection (dedup), one running sync per
    /// connection (concurrency key shared with [`SyncInitialPayload`]).
    pub fn job_for(&self, run_at: DateTime<Utc>, priority: i32) -> NewJob {
        let mut job = NewJob::new(JobKind::SyncRun.as_str(), serde_json::json!(self), run_at);
        job.priority = priority;
        // A run resumes from its checkpoints, so a crash (which spends the attempt of the
        // claim it interrupted) costs little: be generous before declaring the run dead.
        job.max_attempts = 20;
        job.dedup_key = Some(format!("{}:{}", JobKind::SyncRun, self.connection_id));
        job.concurrency_key = Some(format!("sync:{}", self.connection_id));
        job
    }
}

impl JobPayload for SyncRunPayload {
    const KIND: JobKind = JobKind::SyncRun;

    fn job(&self, now: DateTime<Utc>) -> NewJob {
        self.job_for(now, SyncRequest::INCREMENTAL_PRIORITY)
    }
}

/// How a run ended, for [`SyncStore::finish_sync_run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFinish {
    /// `Succeeded`, `Failed` or `Skipped`.
    pub status: SyncRunStatus,
    pub api_calls: i64,
    pub upserted: i64,
    pub deleted: i64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// Where one part of a connection's sync stands. `part` names it: `calendars`,
/// `events:{calendar provider id}`, `boards`, `items:{board provider id}`.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncState {
    pub connection_id: ConnectionId,
    pub part: String,
    /// The provider position (sync token, page token, watermark, cursor); engine-defined JSON.
    pub checkpoint: serde_json::Value,
    /// Bumped by every write; a write naming an older version is refused, so a checkpoint
    /// never goes backwards.
    pub version: i64,
    /// The mark-and-sweep generation of the part's current full sync.
    pub generation: i64,
    /// A change signal said the part changed after its last sync.
    pub dirty: bool,
    pub dirty_at: Option<DateTime<Utc>>,
    /// Until when the part's change signal (push channel, board webhook) is known healthy.
    pub signal_healthy_until: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// When a full reconciliation last finished (Monday items, daily).
    pub last_full_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A write of a part's state that is not tied to a page of records (see
/// [`crate::PageWrite`] for the page case).
#[derive(Clone, Debug, PartialEq)]
pub struct StateWrite {
    pub part: String,
    /// The version the writer read (0 when the part has no row yet).
    pub expected_version: i64,
    pub checkpoint: serde_json::Value,
    pub generation: i64,
    /// Set `last_success_at` (and clear `dirty` if it was set before this time).
    pub success_at: Option<DateTime<Utc>>,
    /// Set `last_full_at`.
    pub full_at: Option<DateTime<Utc>>,
}

/// A connection that should have a queued or running sync and has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepairCandidate {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub provider: ProviderId,
}

/// Sync runs and sync state. Writes made by a job carry its [`LeaseRef`] and are refused with
/// [`StoreError::LeaseLost`] once the lease has moved on (fencing).
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// Queues a run and its job in one transaction, or merges into the connection's pending run
    /// (moving it earlier and its priority up, and raising its trigger: initial > manual >
    /// webhook > schedule). A run is pending while `queued`, or `running` with its job back in the
    /// queue (yielded for budget, waiting for a retry). Refused with `NotFound` for a connection
    /// that is not `active`.
    async fn request_sync(&self, request: SyncRequest, now: DateTime<Utc>) -> StoreResult<SyncRequested>;
    /// Marks a queued run `running` (fenced by the job's lease). A run already `running` is
    /// accepted and returned: the job that yielded for budget or waits for a retry resumes the
    /// run it started. A finished run answers `Conflict`, a missing one `NotFound`.
    async fn start_sync_run(&self, lease: &LeaseRef, run: SyncRunId, now: DateTime<Utc>) -> StoreResult<SyncRun>;
    /// Ends a run, and in the same transaction writes `sync.completed` (succeeded) or
    /// `sync.failed` (failed) to the outbox with the counts and error class, and moves the
    /// connection's `last_sync_at` on success. A skipped run writes no event.
    async fn finish_sync_run(
        &self,
        lease: &LeaseRef,
        run: SyncRunId,
        finish: RunFinish,
        now: DateTime<Utc>,
    ) -> StoreResult<SyncRun>;
    /// One run of the tenant.
    async fn get_sync_run(&self, scope: TenantScope, id: SyncRunId) -> StoreResult<SyncRun>;
    /// A connection's runs, newest first.
    async fn list_sync_runs(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        page: Page,
    ) -> StoreResult<Paged<SyncRun>>;

    /// One part's state, if it has been written.
    async fn sync_state(&self, connection: ConnectionId, part: &str) -> StoreResult<Option<SyncState>>;
    /// Every part of a connection, by part name.
    async fn sync_states(&self, connection: ConnectionId) -> StoreResult<Vec<SyncState>>;
    /// Writes a part's state without records (fenced; version-checked).
    async fn save_sync_state(
        &self,
        lease: &LeaseRef,
        connection: ConnectionId,
        write: StateWrite,
        now: DateTime<Utc>,
    ) -> StoreResult<SyncState>;
    /// A change signal says `part` changed (creates the row when missing).
    async fn mark_dirty(&self, connection: ConnectionId, part: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// Records until when `part`'s change signal is healthy (`None`: no signal).
    async fn set_change_signal(
        &self,
        connection: ConnectionId,
        part: &str,
        healthy_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// Active connections with no queued or running sync run, for the repair sweep. First
    /// finishes `failed` (error code `abandoned`, with its `sync.failed` event) every open run
    /// whose job is gone or ended without finishing it (a job buried `dead` when its lease lapsed
    /// on the final attempt, or superseded): such a run can never be picked up again, and would
    /// otherwise keep its connection out of the sweep for good.
    async fn sync_repair_candidates(&self, limit: u32) -> StoreResult<Vec<RepairCandidate>>;
}
