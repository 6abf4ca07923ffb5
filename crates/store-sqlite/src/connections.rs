//! Connections: created together with their `connection.created` outbox event.

use crate::codec::{id_text, micros, now};
use crate::{db_err, outbox, rows, SqliteStore};
use async_trait::async_trait;
use patchbay_store::*;

/// Visible connections: not tombstoned and not being disconnected.
pub(crate) const VISIBLE: &str = "deleted_at IS NULL AND status <> 'disconnecting'";

#[async_trait]
impl ConnectionStore for SqliteStore {
    async fn create_connection(&self, new: NewConnection) -> StoreResult<Connection> {
        let at = now();
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let row = sqlx::query(
            "INSERT INTO connection (id, tenant_id, user_id, provider, provider_account_id, provider_user_id,
                 account_name, account_email, scopes, status, status_reason, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(id_text(ConnectionId::new().0))
        .bind(id_text(new.tenant_id.0))
        .bind(id_text(new.user_id.0))
        .bind(new.provider.as_str())
        .bind(&new.provider_account_id)
        .bind(&new.provider_user_id)
        .bind(&new.account_name)
        .bind(&new.account_email)
        .bind(new.scopes.join(" "))
        .bind(new.status.as_str())
        .bind(&new.status_reason)
        .bind(micros(at))
        .bind(micros(at))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let connection = rows::connection(&row)?;
        outbox::insert_event(&mut tx, &event_for(&connection, EventType::ConnectionCreated), at).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(connection)
    }

    async fn get_connection(&self, scope: TenantScope, id: ConnectionId) -> StoreResult<Connection> {
        let row = sqlx::query(&format!("SELECT * FROM connection WHERE id = ? AND tenant_id = ? AND {VISIBLE}"))
            .bind(id_text(id.0))
            .bind(id_text(scope.tenant_id().0))
            .fetch_one(&self.reader)
            .await
            .map_err(db_err)?;
        rows::connection(&row)
    }

    async fn list_connections(
        &self,
        scope: TenantScope,
        filter: ConnectionFilter,
        page: Page,
    ) -> StoreResult<Paged<Connection>> {
        let found = sqlx::query(&format!(
            "SELECT * FROM connection WHERE tenant_id = ?1 AND (?2 IS NULL OR user_id = ?2)
             AND (?3 IS NULL OR id > ?3) AND {VISIBLE} ORDER BY id LIMIT ?4"
        ))
        .bind(id_text(scope.tenant_id().0))
        .bind(filter.user_id.map(|u| id_text(u.0)))
        .bind(page.after.map(id_text))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        let items = found.iter().map(rows::connection).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(items, page.limit, |c| c.id.0))
    }

    async fn list_all_connections(&self, page: Page) -> StoreResult<Paged<Connection>> {
        let found = sqlx::query(&format!(
            "SELECT * FROM connection WHERE (?1 IS NULL OR id > ?1) AND {VISIBLE} ORDER BY id LIMIT ?2"
        ))
        .bind(page.after.map(id_text))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        let items = found.iter().map(rows::connection).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(items, page.limit, |c| c.id.0))
    }
}

/// The payload of every connection event: a snapshot of public fields, never anything secret.
pub(crate) fn snapshot(c: &Connection) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "provider": c.provider,
        "status": c.status,
        "status_reason": c.status_reason,
        "provider_account_id": c.provider_account_id,
    })
}

/// A connection event of `event_type` carrying the connection's snapshot.
pub(crate) fn event_for(c: &Connection, event_type: EventType) -> NewEvent {
    NewEvent { tenant_id: c.tenant_id, connection_id: Some(c.id), event_type, payload: snapshot(c) }
}
