//! Write-back idempotency keys on Postgres: claiming a key is one upsert statement.

use crate::{db_err, us, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::Row;

/// Claims a key. The upsert takes the row when it is absent, expired, or a same-body request
/// that never finished and went stale; otherwise it only locks it, and `seen` (read under that
/// lock) says why the claim was refused. Both branches run under the row lock, so of racing
/// claims exactly one starts.
const BEGIN: &str = "WITH seen AS (
        SELECT request_hash, status_code, response FROM idempotency_key
        WHERE tenant_id = $1 AND connection_id = $2 AND key = $3 FOR UPDATE
    ), claimed AS (
        INSERT INTO idempotency_key AS k
            (tenant_id, connection_id, key, request_hash, status_code, response, created_at, expires_at)
        VALUES ($1, $2, $3, $4, NULL, NULL, $6, $5)
        ON CONFLICT (tenant_id, connection_id, key) DO UPDATE SET
            request_hash = excluded.request_hash, status_code = NULL, response = NULL,
            created_at = excluded.created_at, expires_at = excluded.expires_at
        WHERE k.expires_at <= $6
           OR (k.request_hash = excluded.request_hash AND k.status_code IS NULL AND k.created_at <= $7)
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM claimed) AS started, seen.* FROM (SELECT 1) AS one LEFT JOIN seen ON true";

#[async_trait]
impl IdempotencyStore for PgStore {
    #[allow(clippy::too_many_arguments)]
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
        let row = sqlx::query(BEGIN)
            .bind(scope.tenant_id().0)
            .bind(connection.0)
            .bind(key)
            .bind(request_hash)
            .bind(us(expires_at))
            .bind(us(now))
            .bind(us(now - stale_after))
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        if row.try_get::<bool, _>("started").map_err(db_err)? {
            return Ok(IdempotencyBegin::Started);
        }
        let mut hash: Option<Vec<u8>> = row.try_get("request_hash").map_err(db_err)?;
        let mut status: Option<i32> = row.try_get("status_code").map_err(db_err)?;
        let mut response: Option<Vec<u8>> = row.try_get("response").map_err(db_err)?;
        if hash.is_none() {
            // The key was inserted by a concurrent claim after our snapshot: read what it wrote.
            let row = sqlx::query(
                "SELECT request_hash, status_code, response FROM idempotency_key
                 WHERE tenant_id = $1 AND connection_id = $2 AND key = $3",
            )
            .bind(scope.tenant_id().0)
            .bind(connection.0)
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
            hash = row.try_get("request_hash").map_err(db_err)?;
            status = row.try_get("status_code").map_err(db_err)?;
            response = row.try_get("response").map_err(db_err)?;
        }
        Ok(if hash.as_deref() != Some(request_hash) {
            IdempotencyBegin::Mismatch
        } else if let Some(status) = status {
            let status = u16::try_from(status).map_err(|_| StoreError::Corrupt("idempotency status code".into()))?;
            IdempotencyBegin::Replay { status, response: response.unwrap_or_default() }
        } else {
            IdempotencyBegin::InFlight
        })
    }

    async fn finish_idempotent(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        key: &str,
        status: u16,
        response: Vec<u8>,
    ) -> StoreResult<()> {
        // A key already answered keeps its first answer (a replay must not change).
        sqlx::query(
            "UPDATE idempotency_key SET status_code = $4, response = $5
             WHERE tenant_id = $1 AND connection_id = $2 AND key = $3 AND status_code IS NULL",
        )
        .bind(scope.tenant_id().0)
        .bind(connection.0)
        .bind(key)
        .bind(i32::from(status))
        .bind(response)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn abandon_idempotent(&self, scope: TenantScope, connection: ConnectionId, key: &str) -> StoreResult<()> {
        // Only an unfinished claim goes: a stored answer must keep being replayed.
        sqlx::query(
            "DELETE FROM idempotency_key
             WHERE tenant_id = $1 AND connection_id = $2 AND key = $3 AND status_code IS NULL",
        )
        .bind(scope.tenant_id().0)
        .bind(connection.0)
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }
}
