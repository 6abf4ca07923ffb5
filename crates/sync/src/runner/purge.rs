//! `sync.purge`: deletes a disconnected connection's synced records and sync state in batches,
//! so no single transaction holds a large delete.

use super::store_retry;
use crate::SyncDeps;
use async_trait::async_trait;
use patchbay_store::{Job, JobContext, JobError, JobHandler, JobPayload, SyncPurgePayload};

/// Runs `sync.purge`.
#[derive(Clone, Debug)]
pub struct SyncPurgeJob {
    pub deps: SyncDeps,
}

#[async_trait]
impl JobHandler for SyncPurgeJob {
    async fn run(&self, job: &Job, ctx: JobContext) -> Result<(), JobError> {
        let payload = SyncPurgePayload::from_job(job).map_err(JobError::Permanent)?;
        let connection = payload.connection_id;
        let batch = self.deps.settings.purge_batch.max(1);
        let mut total = 0u64;
        loop {
            if ctx.cancel.is_cancelled() {
                // Shutdown or a lost lease: what is deleted stays deleted; resume later.
                return Err(JobError::Yield(self.deps.clock.now()));
            }
            let deleted = self.deps.store.purge_connection_records(connection, batch).await.map_err(store_retry)?;
            if deleted == 0 {
                break;
            }
            total += deleted;
            tracing::debug!(connection = %connection, deleted = total, "purging synced records");
        }
        tracing::info!(connection = %connection, deleted = total, "synced records purged");
        Ok(())
    }
}
