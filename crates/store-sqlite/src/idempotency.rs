//! TODO: idempotency for SqliteStore.
#![allow(unused_variables)]

use crate::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn begin_idempotent(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        key: &str,
        request_hash: &[u8],
        expires_at: DateTime<Utc>,
        stale_after: chrono::Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyBegin> {
        todo!()
    }

    async fn finish_idempotent(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        key: &str,
        status: u16,
        response: Vec<u8>,
    ) -> StoreResult<()> {
        todo!()
    }

    async fn abandon_idempotent(&self, scope: TenantScope, connection: ConnectionId, key: &str) -> StoreResult<()> {
        todo!()
    }
}
