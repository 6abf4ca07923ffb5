//! The event outbox and the audit log.

use crate::codec::{id_text, micros, now};
use crate::{db_err, rows, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::{Sqlite, SqliteConnection, Transaction};

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

/// Writes an audit record on `conn` (inside the caller's transaction when it has one).
pub(crate) async fn insert_audit(
    conn: &mut SqliteConnection,
    event: &NewAuditEvent,
    at: DateTime<Utc>,
) -> StoreResult<AuditEvent> {
    let row = sqlx::query(
        "INSERT INTO audit_event (id, tenant_id, actor, action, target, request_id, ip, at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
    )
    .bind(id_text(AuditEventId::new().0))
    .bind(event.tenant_id.map(|t| id_text(t.0)))
    .bind(&event.actor)
    .bind(&event.action)
    .bind(&event.target)
    .bind(&event.request_id)
    .bind(&event.ip)
    .bind(micros(at))
    .fetch_one(conn)
    .await
    .map_err(db_err)?;
    rows::audit(&row)
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

#[async_trait]
impl AuditStore for SqliteStore {
    async fn record_audit(&self, event: NewAuditEvent) -> StoreResult<AuditEvent> {
        let mut conn = self.writer.acquire().await.map_err(db_err)?;
        insert_audit(&mut conn, &event, now()).await
    }

    async fn list_audit_events(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<AuditEvent>> {
        let found = sqlx::query(
            "SELECT * FROM audit_event WHERE tenant_id = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3",
        )
        .bind(id_text(scope.tenant_id().0))
        .bind(page.after.map(id_text))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        let items = found.iter().map(rows::audit).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(items, page.limit, |a| a.id.0))
    }
}
