//! Credentials: the encrypted token sets, their refresh lease and version guard, and the key
//! rotation queries. The multi-statement lifecycle operations live in `lifecycle`.

use crate::connections::VISIBLE;
use crate::{db_err, lifecycle, now, rows, us, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

/// A credential with its tenant (credentials carry none of their own: the connection's rules).
const CREDENTIAL: &str = "SELECT cr.*, c.tenant_id FROM credential cr JOIN connection c ON c.id = cr.connection_id";

#[async_trait]
impl CredentialStore for PgStore {
    async fn find_connection_by_account(
        &self,
        scope: TenantScope,
        user_id: UserId,
        provider: ProviderId,
        provider_account_id: &str,
    ) -> StoreResult<Option<Connection>> {
        let row = sqlx::query(&format!(
            "SELECT * FROM connection WHERE tenant_id = $1 AND user_id = $2 AND provider = $3
             AND provider_account_id = $4 AND {VISIBLE}"
        ))
        .bind(scope.tenant_id().0)
        .bind(user_id.0)
        .bind(provider.as_str())
        .bind(provider_account_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(rows::connection).transpose()
    }

    async fn save_grant(&self, grant: SaveGrant) -> StoreResult<Connection> {
        lifecycle::save_grant(&self.pool, grant).await
    }

    async fn get_credential(&self, scope: TenantScope, connection_id: ConnectionId) -> StoreResult<Credential> {
        // A connection being disconnected serves no token (architecture §4.6).
        let row = sqlx::query(&format!(
            "{CREDENTIAL} WHERE cr.connection_id = $1 AND c.tenant_id = $2 AND c.deleted_at IS NULL
             AND c.status <> 'disconnecting'"
        ))
        .bind(connection_id.0)
        .bind(scope.tenant_id().0)
        .fetch_one(&self.pool)
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
        // One statement, no transaction held: a concurrent taker waits on the row lock, then
        // re-checks the condition against our committed lease and takes nothing.
        let done = sqlx::query(
            "UPDATE credential SET refresh_lease_owner = $1, refresh_lease_until = $2
             WHERE connection_id = $3
               AND (refresh_lease_until IS NULL OR refresh_lease_until < $4 OR refresh_lease_owner = $1)",
        )
        .bind(owner)
        .bind(us(until))
        .bind(connection_id.0)
        .bind(us(now))
        .execute(&self.pool)
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
        lifecycle::store_refreshed(&self.pool, connection_id, expected_version, credential, now).await
    }

    async fn release_refresh_lease(&self, connection_id: ConnectionId, owner: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE credential SET refresh_lease_owner = NULL, refresh_lease_until = NULL
             WHERE connection_id = $1 AND refresh_lease_owner = $2",
        )
        .bind(connection_id.0)
        .bind(owner)
        .execute(&self.pool)
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
        lifecycle::set_status(&self.pool, scope, id, change).await
    }

    async fn credentials_expiring(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(TenantScope, ConnectionId)>> {
        let found = sqlx::query(
            "SELECT c.tenant_id, c.id FROM credential cr JOIN connection c ON c.id = cr.connection_id
             WHERE c.status = 'active' AND c.deleted_at IS NULL
               AND cr.access_expires_at IS NOT NULL AND cr.access_expires_at < $1
             ORDER BY cr.access_expires_at, cr.connection_id LIMIT $2",
        )
        .bind(us(before))
        .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        found.iter().map(rows::scoped_connection).collect()
    }

    async fn begin_disconnect(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        job: NewJob,
        audit: NewAuditEvent,
    ) -> StoreResult<()> {
        lifecycle::begin_disconnect(&self.pool, scope, id, job, audit).await
    }

    async fn connection_for_job(&self, scope: TenantScope, id: ConnectionId) -> StoreResult<Connection> {
        let row = sqlx::query("SELECT * FROM connection WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL")
            .bind(id.0)
            .bind(scope.tenant_id().0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        rows::connection(&row)
    }

    async fn credential_for_disconnect(&self, scope: TenantScope, id: ConnectionId) -> StoreResult<Credential> {
        let row = sqlx::query(&format!(
            "{CREDENTIAL} WHERE cr.connection_id = $1 AND c.tenant_id = $2 AND c.deleted_at IS NULL"
        ))
        .bind(id.0)
        .bind(scope.tenant_id().0)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        rows::credential(&row)
    }

    async fn grant_sharers(&self, connection: &Connection) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM connection c JOIN credential cr ON cr.connection_id = c.id
             WHERE c.provider = $1 AND c.provider_account_id = $2
               AND c.provider_user_id IS NOT DISTINCT FROM $3 AND c.id <> $4
               AND c.deleted_at IS NULL AND c.status <> 'disconnecting'",
        )
        .bind(connection.provider.as_str())
        .bind(&connection.provider_account_id)
        .bind(&connection.provider_user_id)
        .bind(connection.id.0)
        .fetch_one(&self.pool)
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
        lifecycle::finish_disconnect(&self.pool, scope, id, audit, now).await
    }

    async fn credential_key_usage(&self) -> StoreResult<Vec<KeyUsage>> {
        let found = sqlx::query("SELECT key_id, COUNT(*) AS n FROM credential GROUP BY key_id ORDER BY key_id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        found.iter().map(rows::key_usage).collect()
    }

    async fn credentials_to_rewrap(&self, primary_key_id: u32, limit: u32) -> StoreResult<Vec<Credential>> {
        let found = sqlx::query(&format!("{CREDENTIAL} WHERE cr.key_id <> $1 ORDER BY cr.connection_id LIMIT $2"))
            .bind(i64::from(primary_key_id))
            .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        found.iter().map(rows::credential).collect()
    }

    async fn credentials_with_flow(&self, flow: TokenFlow, limit: u32) -> StoreResult<Vec<Credential>> {
        let found = sqlx::query(&format!(
            "{CREDENTIAL} WHERE cr.flow = $1 AND c.deleted_at IS NULL AND c.status <> 'disconnecting' ORDER BY cr.connection_id LIMIT $2"
        ))
        .bind(flow.as_str())
        .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
        .fetch_all(&self.pool)
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
        let done = sqlx::query(
            "UPDATE credential SET key_id = $1, ciphertext = $2, version = version + 1, updated_at = $3
             WHERE connection_id = $4 AND version = $5
               AND (refresh_lease_until IS NULL OR refresh_lease_until < $3)",
        )
        .bind(i64::from(key_id))
        .bind(ciphertext)
        .bind(now())
        .bind(connection_id.0)
        .bind(expected_version)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }
}
