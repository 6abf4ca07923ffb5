//! `sync.initial`: a new connection's first run, queued as a backfill.

use super::store_retry;
use crate::SyncDeps;
use async_trait::async_trait;
use patchbay_store::{
    Job, JobContext, JobError, JobHandler, JobPayload, StoreError, SyncInitialPayload, SyncRequest, SyncResource,
    SyncTrigger, TenantScope,
};

/// Runs `sync.initial`: requests an `initial` run at backfill priority, due now.
#[derive(Clone, Debug)]
pub struct SyncInitialJob {
    pub deps: SyncDeps,
}

#[async_trait]
impl JobHandler for SyncInitialJob {
    async fn run(&self, job: &Job, _ctx: JobContext) -> Result<(), JobError> {
        let payload = SyncInitialPayload::from_job(job).map_err(JobError::Permanent)?;
        let store = &self.deps.store;
        let connection =
            match store.connection_for_job(TenantScope::new(payload.tenant_id), payload.connection_id).await {
                Ok(connection) => connection,
                Err(StoreError::NotFound) => return Ok(()), // disconnected before its first sync
                Err(e) => return Err(store_retry(e)),
            };
        let now = self.deps.clock.now();
        let request = SyncRequest {
            tenant_id: payload.tenant_id,
            connection_id: payload.connection_id,
            resource: SyncResource::of(connection.provider),
            trigger: SyncTrigger::Initial,
            run_at: now,
            priority: SyncRequest::BACKFILL_PRIORITY,
        };
        match store.request_sync(request, now).await {
            Ok(requested) => {
                tracing::info!(connection = %payload.connection_id, run = %requested.run().id, "initial sync queued");
                Ok(())
            }
            // Not active (any more): nothing to sync; a reconnect or the repair sweep queues one.
            Err(StoreError::NotFound) => {
                tracing::info!(connection = %payload.connection_id, "initial sync not queued: the connection is not active");
                Ok(())
            }
            Err(e) => Err(store_retry(e)),
        }
    }
}
