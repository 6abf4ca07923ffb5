//! The event outbox: written inside the transaction of the change it announces.

use crate::{db_err, now, rows, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::{Postgres, Transaction};

/// Appends an event inside the caller's transaction. For a connection's event the sequence
/// comes from `UPDATE connection SET event_seq = event_seq + 1 … RETURNING`: the row lock it
/// takes serializes concurrent emitters until commit, so sequences are gap-free and in commit
/// order per connection. A connection of another tenant is `NotFound`.
pub(crate) async fn insert_event(
    tx: &mut Transaction<'_, Postgres>,
    event: &NewEvent,
    at: DateTime<Utc>,
) -> StoreResult<OutboxEvent> {
    let sequence: Option<i64> = match event.connection_id {
        Some(connection) => Some(
            sqlx::query_scalar(
                "UPDATE connection SET event_seq = event_seq + 1 WHERE id = $1 AND tenant_id = $2 RETURNING event_seq",
            )
            .bind(connection.0)
            .bind(event.tenant_id.0)
            .fetch_one(&mut **tx)
            .await
            .map_err(db_err)?,
        ),
        None => None,
    };
    let row = sqlx::query(
        "INSERT INTO event_outbox (id, tenant_id, connection_id, event_type, sequence, payload, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
    )
    .bind(EventId::new().0)
    .bind(event.tenant_id.0)
    .bind(event.connection_id.map(|c| c.0))
    .bind(event.event_type.as_str())
    .bind(sequence)
    .bind(&event.payload)
    .bind(at)
    .fetch_one(&mut **tx)
    .await
    .map_err(db_err)?;
    rows::event(&row)
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn append_event(&self, event: NewEvent) -> StoreResult<OutboxEvent> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let stored = insert_event(&mut tx, &event, now()).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(stored)
    }

    async fn list_events(&self, scope: TenantScope, after_position: i64, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
        let found =
            sqlx::query("SELECT * FROM event_outbox WHERE tenant_id = $1 AND position > $2 ORDER BY position LIMIT $3")
                .bind(scope.tenant_id().0)
                .bind(after_position)
                .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        found.iter().map(rows::event).collect()
    }
}
