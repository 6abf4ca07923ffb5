//! Credentials: the encrypted token sets, their refresh lease and version guard, and the key
//! rotation queries. The multi-statement lifecycle operations live in `lifecycle`.

use crate::codec::{id_text, int, key_id, micros, now};
use crate::connections::VISIBLE;
use crate::rows::CREDENTIAL;
use crate::{db_err, lifecycle, rows, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn find_connection_by_account(
        &self,
        scope: TenantScope,
        user_id: UserId,
        provider: ProviderId,
        provider_account_id: &str,
    ) -> StoreResult<Option<Connection>> {
        let row = sqlx::query(&format!(
            "SELECT * FROM connection WHERE tenant_id = ? AND user_id = ? AND provider = ?
             AND provider_account_id = ? AND {VISIBLE}"
        ))
        .bind(id_text(scope.tenant_id().0))
        .bind(id_text(user_id.0))
        .bind(provider.as_str())
        .bind(provider_account_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        row.as_ref().map(rows::connection).transpose()
    }

    async fn save_grant(&self, grant: SaveGrant) -> StoreResult<Connection> {
        lifecycle::save_grant(&self.writer, grant).await
    }

    async fn get_credential(&self, scope: TenantScope, connection_id: ConnectionId) -> StoreResult<Credential> {
        let row = sqlx::query(&format!(
            "{CREDENTIAL} WHERE cr.connection_id = ? AND c.tenant_id = ? AND c.deleted_at IS NULL
             AND c.status <> 'disconnecting'"
        ))
        .bind(id_text(connection_id.0))
        .bind(id_text(scope.tenant_id().0))
        .fetch_one(&self.reader)
        .await
        .map_err(db_err)?;
        rows::credential(&row)
    }

    async fn try_lease_refresh(
        &self,
        connection_id: ConnectionId,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE credential SET refresh_lease_owner = ?1, refresh_lease_until = ?2
             WHERE connection_id = ?3
               AND (refresh_lease_until IS NULL OR refresh_lease_until < ?4 OR refresh_lease_owner = ?1)",
        )
        .bind(owner)
        .bind(micros(until))
        .bind(id_text(connection_id.0))
        .bind(micros(now))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn store_refreshed(
        &self,
        connection_id: ConnectionId,
        expected_version: i64,
        credential: NewCredential,
        now: DateTime<Utc>,
    ) -> StoreResult<Credential> {
        lifecycle::store_refreshed(&self.writer, connection_id, expected_version, credential, now).await
    }

    async fn release_refresh_lease(&self, connection_id: ConnectionId, owner: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE credential SET refresh_lease_owner = NULL, refresh_lease_until = NULL
             WHERE connection_id = ? AND refresh_lease_owner = ?",
        )
        .bind(id_text(connection_id.0))
        .bind(owner)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn set_connection_status(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        change: StatusChange,
    ) -> StoreResult<Connection> {
        lifecycle::set_status(&self.writer, scope, id, change).await
    }

    async fn credentials_expiring(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(TenantScope, ConnectionId)>> {
        let found = sqlx::query(
            "SELECT c.tenant_id, c.id FROM credential cr JOIN connection c ON c.id = cr.connection_id
             WHERE c.status = 'active' AND c.deleted_at IS NULL
               AND cr.access_expires_at IS NOT NULL AND cr.access_expires_at < ?
             ORDER BY cr.access_expires_at, cr.connection_id LIMIT ?",
        )
        .bind(micros(before))
        .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        found
            .iter()
            .map(|row| {
                let tenant = TenantId(crate::codec::uuid(row, "tenant_id")?);
                Ok((TenantScope::new(tenant), ConnectionId(crate::codec::uuid(row, "id")?)))
            })
            .collect()
    }

    async fn begin_disconnect(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        job: NewJob,
        audit: NewAuditEvent,
    ) -> StoreResult<()> {
        lifecycle::begin_disconnect(&self.writer, scope, id, job, audit).await
    }

    async fn connection_for_job(&self, scope: TenantScope, id: ConnectionId) -> StoreResult<Connection> {
        let row = sqlx::query("SELECT * FROM connection WHERE id = ? AND tenant_id = ? AND deleted_at IS NULL")
            .bind(id_text(id.0))
            .bind(id_text(scope.tenant_id().0))
            .fetch_one(&self.reader)
            .await
            .map_err(db_err)?;
        rows::connection(&row)
    }

    async fn credential_for_disconnect(&self, scope: TenantScope, id: ConnectionId) -> StoreResult<Credential> {
        let row = sqlx::query(&format!(
            "{CREDENTIAL} WHERE cr.connection_id = ? AND c.tenant_id = ? AND c.deleted_at IS NULL"
        ))
        .bind(id_text(id.0))
        .bind(id_text(scope.tenant_id().0))
        .fetch_one(&self.reader)
        .await
        .map_err(db_err)?;
        rows::credential(&row)
    }

    async fn grant_sharers(&self, connection: &Connection) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM connection c JOIN credential cr ON cr.connection_id = c.id
             WHERE c.provider = ? AND c.provider_account_id = ? AND c.provider_user_id IS ? AND c.id <> ?
               AND c.deleted_at IS NULL AND c.status <> 'disconnecting'",
        )
        .bind(connection.provider.as_str())
        .bind(&connection.provider_account_id)
        .bind(&connection.provider_user_id)
        .bind(id_text(connection.id.0))
        .fetch_one(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn finish_disconnect(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        lifecycle::finish_disconnect(&self.writer, scope, id, audit, now).await
    }

    async fn credential_key_usage(&self) -> StoreResult<Vec<KeyUsage>> {
        let found = sqlx::query("SELECT key_id, COUNT(*) AS n FROM credential GROUP BY key_id ORDER BY key_id")
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        found.iter().map(|row| Ok(KeyUsage { key_id: key_id(row, "key_id")?, credentials: int(row, "n")? })).collect()
    }

    async fn credentials_to_rewrap(&self, primary_key_id: u32, limit: u32) -> StoreResult<Vec<Credential>> {
        let found = sqlx::query(&format!("{CREDENTIAL} WHERE cr.key_id <> ? ORDER BY cr.connection_id LIMIT ?"))
            .bind(i64::from(primary_key_id))
            .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        found.iter().map(rows::credential).collect()
    }

    async fn credentials_with_flow(&self, flow: TokenFlow, limit: u32) -> StoreResult<Vec<Credential>> {
        let found = sqlx::query(&format!(
            "{CREDENTIAL} WHERE cr.flow = ? AND c.deleted_at IS NULL AND c.status <> 'disconnecting' ORDER BY cr.connection_id LIMIT ?"
        ))
        .bind(flow.as_str())
        .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        found.iter().map(rows::credential).collect()
    }

    async fn rewrap_credential(
        &self,
        connection_id: ConnectionId,
        expected_version: i64,
        key_id: u32,
        ciphertext: Vec<u8>,
    ) -> StoreResult<bool> {
        let at = micros(now());
        let done = sqlx::query(
            "UPDATE credential SET key_id = ?, ciphertext = ?, version = version + 1, updated_at = ?
             WHERE connection_id = ? AND version = ?
               AND (refresh_lease_until IS NULL OR refresh_lease_until < ?)",
        )
        .bind(i64::from(key_id))
        .bind(ciphertext)
        .bind(at)
        .bind(id_text(connection_id.0))
        .bind(expected_version)
        .bind(at)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }
}
