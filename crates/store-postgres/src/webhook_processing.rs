//! Applying inbox events on Postgres: attempts and outcomes on the event row (only while it is
//! pending), reprocessing with its job in one transaction, and rewrapping sealed material.

use crate::jobs::insert_job;
use crate::webhooks::event_row;
use crate::{db_err, rows, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::Row;

#[async_trait]
impl WebhookProcessingStore for PgStore {
    async fn find_webhook_event(&self, id: WebhookEventId) -> StoreResult<WebhookEvent> {
        let row = sqlx::query("SELECT * FROM webhook_event WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        event_row(&row)
    }

    async fn start_webhook_attempt(&self, id: WebhookEventId) -> StoreResult<Option<WebhookEvent>> {
        let row = sqlx::query(
            "UPDATE webhook_event SET attempts = attempts + 1 WHERE id = $1 AND status = 'pending' RETURNING *",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(event_row).transpose()
    }

    async fn settle_webhook_event(&self, id: WebhookEventId, settle: &WebhookSettle) -> StoreResult<bool> {
        let (status, error) = match settle {
            WebhookSettle::Processed => ("processed", None),
            WebhookSettle::Failed(e) => ("failed", Some(e.as_str())),
            WebhookSettle::Retry(e) => ("pending", Some(e.as_str())),
        };
        let done = sqlx::query("UPDATE webhook_event SET status = $2, error = $3 WHERE id = $1 AND status = 'pending'")
            .bind(id.0)
            .bind(status)
            .bind(error)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn reprocess_webhook_event(
        &self,
        scope: TenantScope,
        id: WebhookEventId,
        now: DateTime<Utc>,
    ) -> StoreResult<WebhookEvent> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let row = sqlx::query(
            "UPDATE webhook_event SET status = 'pending', attempts = 0, error = NULL
             WHERE id = $1 AND tenant_id = $2 RETURNING *",
        )
        .bind(id.0)
        .bind(scope.tenant_id().0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
        insert_job(&mut tx, &WebhookProcessPayload { event_id: id }.job(now), now).await?;
        tx.commit().await.map_err(db_err)?;
        event_row(&row)
    }

    async fn webhook_ciphertexts_not_under(&self, primary: u32, limit: u32) -> StoreResult<Vec<WebhookCiphertext>> {
        let mut found = Vec::new();
        let secrets = sqlx::query(
            "SELECT s.id, s.source_id, src.tenant_id, s.key_id, s.ciphertext
             FROM webhook_source_secret s JOIN webhook_source src ON src.id = s.source_id
             WHERE s.key_id <> $1 ORDER BY s.id LIMIT $2",
        )
        .bind(i64::from(primary))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        for row in &secrets {
            found.push(WebhookCiphertext::Secret {
                source_id: WebhookSourceId(row.try_get("source_id").map_err(db_err)?),
                tenant_id: TenantId(row.try_get("tenant_id").map_err(db_err)?),
                secret_id: row.try_get("id").map_err(db_err)?,
                key_id: rows::key_id(row, "key_id")?,
                ciphertext: row.try_get("ciphertext").map_err(db_err)?,
            });
        }
        let left = i64::from(limit) - found.len() as i64;
        let endpoint_secrets = sqlx::query(
            "SELECT s.id, s.endpoint_id, ep.tenant_id, s.key_id, s.ciphertext
             FROM event_endpoint_secret s JOIN event_endpoint ep ON ep.id = s.endpoint_id
             WHERE s.key_id <> $1 ORDER BY s.id LIMIT $2",
        )
        .bind(i64::from(primary))
        .bind(left.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        for row in &endpoint_secrets {
            found.push(WebhookCiphertext::EndpointSecret {
                endpoint_id: EventEndpointId(row.try_get("endpoint_id").map_err(db_err)?),
                tenant_id: TenantId(row.try_get("tenant_id").map_err(db_err)?),
                secret_id: row.try_get("id").map_err(db_err)?,
                key_id: rows::key_id(row, "key_id")?,
                ciphertext: row.try_get("ciphertext").map_err(db_err)?,
            });
        }
        let left = i64::from(limit) - found.len() as i64;
        if left > 0 {
            let bodies = sqlx::query(
                "SELECT id, tenant_id, key_id, body FROM webhook_event WHERE key_id <> $1 ORDER BY id LIMIT $2",
            )
            .bind(i64::from(primary))
            .bind(left)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
            for row in &bodies {
                found.push(WebhookCiphertext::Body {
                    event_id: WebhookEventId(row.try_get("id").map_err(db_err)?),
                    tenant_id: row.try_get::<Option<uuid::Uuid>, _>("tenant_id").map_err(db_err)?.map(TenantId),
                    key_id: rows::key_id(row, "key_id")?,
                    ciphertext: row.try_get("body").map_err(db_err)?,
                });
            }
        }
        Ok(found)
    }

    async fn rewrap_webhook_ciphertext(
        &self,
        old: &WebhookCiphertext,
        key_id: u32,
        ciphertext: &[u8],
    ) -> StoreResult<bool> {
        let done = match old {
            WebhookCiphertext::Secret { secret_id, ciphertext: before, .. } => sqlx::query(
                "UPDATE webhook_source_secret SET key_id = $2, ciphertext = $3 WHERE id = $1 AND ciphertext = $4",
            )
            .bind(secret_id)
            .bind(i64::from(key_id))
            .bind(ciphertext)
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(db_err)?,
            WebhookCiphertext::EndpointSecret { secret_id, ciphertext: before, .. } => sqlx::query(
                "UPDATE event_endpoint_secret SET key_id = $2, ciphertext = $3 WHERE id = $1 AND ciphertext = $4",
            )
            .bind(*secret_id)
            .bind(i64::from(key_id))
            .bind(ciphertext)
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(db_err)?,
            WebhookCiphertext::Body { event_id, ciphertext: before, .. } => {
                sqlx::query("UPDATE webhook_event SET key_id = $2, body = $3 WHERE id = $1 AND body = $4")
                    .bind(event_id.0)
                    .bind(i64::from(key_id))
                    .bind(ciphertext)
                    .bind(before)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?
            }
        };
        Ok(done.rows_affected() == 1)
    }
}
