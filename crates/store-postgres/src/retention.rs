//! Retention deletes on Postgres: each call one bounded `DELETE … WHERE id IN (SELECT … LIMIT n)`
//! (the sweep is a singleton job, so no two run at once; `SKIP LOCKED` keeps a row a live
//! transaction holds out of the batch instead of waiting on it).

use crate::{db_err, us, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

#[async_trait]
impl RetentionStore for PgStore {
    async fn prune_webhook_events(&self, cutoffs: &InboxCutoffs, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM webhook_event WHERE id IN (
                 SELECT id FROM webhook_event
                 WHERE (status = 'processed' AND received_at < $1) OR (status = 'failed' AND received_at < $2)
                 LIMIT $3 FOR UPDATE SKIP LOCKED)",
        )
        .bind(us(cutoffs.processed_before()))
        .bind(us(cutoffs.failed_before()))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn prune_event_deliveries(&self, finished_before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM event_delivery WHERE id IN (
                 SELECT id FROM event_delivery
                 WHERE finished_at < $1 AND status IN ('delivered', 'exhausted')
                 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(us(finished_before))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn prune_outbox_events(&self, dispatched_before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM event_outbox WHERE position IN (
                 SELECT o.position FROM event_outbox o
                 WHERE o.dispatched_at < $1
                   AND NOT EXISTS (SELECT 1 FROM event_delivery d WHERE d.event_id = o.id)
                 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(us(dispatched_before))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn prune_watch_channels(&self, expired_before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM watch_channel WHERE id IN (
                 SELECT id FROM watch_channel WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(us(expired_before))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }
}
