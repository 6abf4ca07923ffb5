//! TODO: records for SqliteStore.
#![allow(unused_variables)]

use crate::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

#[async_trait]
impl RecordStore for SqliteStore {
    async fn apply_page(&self, page: PageWrite) -> StoreResult<PageOutcome> {
        todo!()
    }

    async fn upsert_records(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        records: Vec<RecordWrite>,
        now: DateTime<Utc>,
    ) -> StoreResult<PageOutcome> {
        todo!()
    }

    async fn get_record(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        kind: RecordKind,
        id: RecordId,
    ) -> StoreResult<Record> {
        todo!()
    }

    async fn list_records(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        kind: RecordKind,
        filter: &RecordFilter,
        page: Page,
    ) -> StoreResult<Paged<Record>> {
        todo!()
    }

    async fn change_feed(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        kinds: &[RecordKind],
        after: i64,
        limit: u32,
    ) -> StoreResult<ChangePage> {
        todo!()
    }

    async fn purge_connection_records(&self, connection: ConnectionId, batch: u32) -> StoreResult<u64> {
        todo!()
    }

    async fn record_key_usage(&self) -> StoreResult<Vec<RecordKeyUsage>> {
        todo!()
    }

    async fn records_to_rewrap(&self, primary_key_id: u32, limit: u32) -> StoreResult<Vec<Record>> {
        todo!()
    }

    async fn rewrap_record(&self, kind: RecordKind, id: RecordId, old: &[u8], rewrapped: Rewrap) -> StoreResult<bool> {
        todo!()
    }
}
