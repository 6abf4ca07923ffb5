//! The event outbox: written inside the transaction of the change it announces.

use crate::codec::{id_text, micros, now};
use crate::{db_err, rows, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::{Sqlite, Transaction};

/// Appends an event inside the caller's transaction. For a connection's event the sequence
/// comes from bumping `connection.event_seq` in the same transaction, so sequences are gap-free
/// and ordered per connection; a connection of another tenant is `NotFound`.
pub(crate) async fn insert_event(
    tx: &mut Transaction<'_, Sqlite>,
    event: &NewEvent,
    at: DateTime<Utc>,
) -> StoreResult<OutboxEvent> {
    let tenant = id_text(event.tenant_id.0);
    let sequence: Option<i64> = match event.connection_id {
        Some(connection) => Some(
            sqlx::query_scalar(
                "UPDATE connection SET event_seq = event_seq + 1 WHERE id = ? AND tenant_id = ? RETURNING event_seq",
            )
            .bind(id_text(connection.0))
            .bind(&tenant)
            .fetch_one(&mut **tx)
            .await
            .map_err(db_err)?,
        ),
        None => None,
    };
    let row = sqlx::query(
        "INSERT INTO event_outbox (id, tenant_id, connection_id, event_type, sequence, payload, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
    )
    .bind(id_text(EventId::new().0))
    .bind(&tenant)
    .bind(event.connection_id.map(|c| id_text(c.0)))
    .bind(event.event_type.as_str())
    .bind(sequence)
    .bind(event.payload.to_string())
    .bind(micros(at))
    .fetch_one(&mut **tx)
    .await
    .map_err(db_err)?;
    rows::event(&row)
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn append_event(&self, event: NewEvent) -> StoreResult<OutboxEvent> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let stored = insert_event(&mut tx, &event, now()).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(stored)
    }

    async fn list_events(&self, scope: TenantScope, after_position: i64, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
        let found =
            sqlx::query("SELECT * FROM event_outbox WHERE tenant_id = ? AND position > ? ORDER BY position LIMIT ?")
                .bind(id_text(scope.tenant_id().0))
                .bind(after_position)
                .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
                .fetch_all(&self.reader)
                .await
                .map_err(db_err)?;
        found.iter().map(rows::event).collect()
    }
}
