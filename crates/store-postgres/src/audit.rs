//! The audit log: written inside the transaction of the action it records.

use crate::{db_err, now, rows, us, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::PgConnection;

/// Writes an audit record on `conn` (inside the caller's transaction when it has one).
pub(crate) async fn insert_audit(
    conn: &mut PgConnection,
    event: &NewAuditEvent,
    at: DateTime<Utc>,
) -> StoreResult<AuditEvent> {
    let row = sqlx::query(
        "INSERT INTO audit_event (id, tenant_id, actor, action, target, request_id, ip, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
    )
    .bind(AuditEventId::new().0)
    .bind(event.tenant_id.map(|t| t.0))
    .bind(&event.actor)
    .bind(&event.action)
    .bind(&event.target)
    .bind(&event.request_id)
    .bind(&event.ip)
    .bind(us(at))
    .fetch_one(conn)
    .await
    .map_err(db_err)?;
    rows::audit(&row)
}

#[async_trait]
impl AuditStore for PgStore {
    async fn record_audit(&self, event: NewAuditEvent) -> StoreResult<AuditEvent> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        insert_audit(&mut conn, &event, now()).await
    }

    async fn list_audit_events(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<AuditEvent>> {
        let found = sqlx::query(
            "SELECT * FROM audit_event WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(scope.tenant_id().0)
        .bind(page.after)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let items = found.iter().map(rows::audit).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(items, page.limit, |a| a.id.0))
    }
}
