//! Write-back idempotency keys on SQLite: claimed in one transaction on the single writer, so two
//! requests with one key cannot both start.

use crate::codec::{blob, id_text, int, micros, opt_blob, opt_int};
use crate::{db_err, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

/// The key's primary key columns, bound as `?1 ?2 ?3` by every statement here.
const KEY: &str = "tenant_id = ?1 AND connection_id = ?2 AND key = ?3";

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
        let (tenant, connection) = (id_text(scope.tenant_id().0), id_text(connection.0));
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let row = sqlx::query(&format!("SELECT * FROM idempotency_key WHERE {KEY} AND expires_at > ?4"))
            .bind(&tenant)
            .bind(&connection)
            .bind(key)
            .bind(micros(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let begin = match row {
            None => {
                // Absent or expired (an expired key counts as absent and is overwritten).
                sqlx::query(
                    "INSERT INTO idempotency_key (tenant_id, connection_id, key, request_hash, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (tenant_id, connection_id, key) DO UPDATE SET request_hash = excluded.request_hash,
                         status_code = NULL, response = NULL, created_at = excluded.created_at,
                         expires_at = excluded.expires_at",
                )
                .bind(&tenant)
                .bind(&connection)
                .bind(key)
                .bind(request_hash)
                .bind(micros(now))
                .bind(micros(expires_at))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                IdempotencyBegin::Started
            }
            Some(row) if blob(&row, "request_hash")? != request_hash => IdempotencyBegin::Mismatch,
            Some(row) => match opt_int(&row, "status_code")? {
                Some(status) => IdempotencyBegin::Replay {
                    status: u16::try_from(status)
                        .map_err(|_| StoreError::Corrupt("idempotency_key.status_code is out of range".into()))?,
                    response: opt_blob(&row, "response")?.unwrap_or_default(),
                },
                None if int(&row, "created_at")? <= micros(now - stale_after) => {
                    // The first request never finished: take the key over.
                    sqlx::query(&format!("UPDATE idempotency_key SET created_at = ?4 WHERE {KEY}"))
                        .bind(&tenant)
                        .bind(&connection)
                        .bind(key)
                        .bind(micros(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    IdempotencyBegin::Started
                }
                None => IdempotencyBegin::InFlight,
            },
        };
        tx.commit().await.map_err(db_err)?;
        Ok(begin)
    }

    async fn finish_idempotent(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        key: &str,
        status: u16,
        response: Vec<u8>,
    ) -> StoreResult<()> {
        sqlx::query(&format!("UPDATE idempotency_key SET status_code = ?4, response = ?5 WHERE {KEY}"))
            .bind(id_text(scope.tenant_id().0))
            .bind(id_text(connection.0))
            .bind(key)
            .bind(i64::from(status))
            .bind(response)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn abandon_idempotent(&self, scope: TenantScope, connection: ConnectionId, key: &str) -> StoreResult<()> {
        // Only an unanswered key: an answered one must keep replaying.
        sqlx::query(&format!("DELETE FROM idempotency_key WHERE {KEY} AND status_code IS NULL"))
            .bind(id_text(scope.tenant_id().0))
            .bind(id_text(connection.0))
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
