//! TODO: sync for SqliteStore.
#![allow(unused_variables)]

use crate::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

#[async_trait]
impl SyncStore for SqliteStore {
    async fn request_sync(&self, request: SyncRequest, now: DateTime<Utc>) -> StoreResult<SyncRequested> {
        todo!()
    }

    async fn start_sync_run(&self, lease: &LeaseRef, run: SyncRunId, now: DateTime<Utc>) -> StoreResult<SyncRun> {
        todo!()
    }

    async fn finish_sync_run(
        &self,
        lease: &LeaseRef,
        run: SyncRunId,
        finish: RunFinish,
        now: DateTime<Utc>,
    ) -> StoreResult<SyncRun> {
        todo!()
    }

    async fn get_sync_run(&self, scope: TenantScope, id: SyncRunId) -> StoreResult<SyncRun> {
        todo!()
    }

    async fn list_sync_runs(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        page: Page,
    ) -> StoreResult<Paged<SyncRun>> {
        todo!()
    }

    async fn sync_state(&self, connection: ConnectionId, part: &str) -> StoreResult<Option<SyncState>> {
        todo!()
    }

    async fn sync_states(&self, connection: ConnectionId) -> StoreResult<Vec<SyncState>> {
        todo!()
    }

    async fn save_sync_state(
        &self,
        lease: &LeaseRef,
        connection: ConnectionId,
        write: StateWrite,
        now: DateTime<Utc>,
    ) -> StoreResult<SyncState> {
        todo!()
    }

    async fn mark_dirty(&self, connection: ConnectionId, part: &str, at: DateTime<Utc>) -> StoreResult<()> {
        todo!()
    }

    async fn set_change_signal(
        &self,
        connection: ConnectionId,
        part: &str,
        healthy_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        todo!()
    }

    async fn sync_repair_candidates(&self, limit: u32) -> StoreResult<Vec<RepairCandidate>> {
        todo!()
    }
}
