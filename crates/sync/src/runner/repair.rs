//! `sync.repair`: a singleton sweep that finds active connections with no queued or running run
//! (a lost successor, a crash between finishing a run and queueing the next, a reconnect) and
//! queues a scheduled run for each, then queues itself again.

use super::store_retry;
use crate::SyncDeps;
use async_trait::async_trait;
use patchbay_store::{
    Job, JobContext, JobError, JobHandler, JobPayload, StoreError, SyncRepairPayload, SyncRequest, SyncResource,
    SyncTrigger,
};
use std::time::Duration;

/// How often the sweep runs.
pub const REPAIR_EVERY: Duration = Duration::from_secs(5 * 60);
/// Connections repaired per sweep; the rest wait for the next one.
const BATCH: u32 = 500;

/// Runs `sync.repair`.
#[derive(Clone, Debug)]
pub struct SyncRepairJob {
    pub deps: SyncDeps,
}

#[async_trait]
impl JobHandler for SyncRepairJob {
    async fn run(&self, _job: &Job, _ctx: JobContext) -> Result<(), JobError> {
        let store = &self.deps.store;
        let now = self.deps.clock.now();
        let candidates = store.sync_repair_candidates(BATCH).await.map_err(store_retry)?;
        let mut queued = 0usize;
        for candidate in &candidates {
            let request = SyncRequest {
                tenant_id: candidate.tenant_id,
                connection_id: candidate.connection_id,
                resource: SyncResource::of(candidate.provider),
                trigger: SyncTrigger::Schedule,
                run_at: now,
                priority: SyncRequest::INCREMENTAL_PRIORITY,
            };
            match store.request_sync(request, now).await {
                Ok(_) => queued += 1,
                // Disconnected or deactivated since the candidate query.
                Err(StoreError::NotFound) => {}
                Err(e) => {
                    tracing::warn!(connection = %candidate.connection_id, error = %e, "sync repair could not queue a run")
                }
            }
        }
        if queued > 0 {
            tracing::info!(queued, "sync repair queued runs for connections without one");
        }
        // The next sweep; the dedup key keeps a single queued sweep across instances.
        let mut next = SyncRepairPayload {}.job(now);
        next.run_at = now + chrono::Duration::from_std(REPAIR_EVERY).unwrap_or_default();
        store.enqueue(next, now).await.map_err(store_retry)?;
        Ok(())
    }
}
