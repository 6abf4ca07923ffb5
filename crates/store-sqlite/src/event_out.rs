//! Event endpoints and deliveries on SQLite. Every write is a transaction on the single writer
//! connection, so dispatch and claims are serialized without row locks.

use crate::codec::*;
use crate::outbox::insert_event;
use crate::sealed_secrets::ENDPOINT_SECRETS;
use crate::{db_err, rows, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::sqlite::SqliteRow;
use sqlx::SqliteConnection;

fn endpoint_row(row: &SqliteRow, secrets: Vec<SealedWebhookSecret>) -> StoreResult<EventEndpoint> {
    let types: Vec<String> = serde_json::from_value(json(row, "event_types")?)
        .map_err(|e| StoreError::Corrupt(format!("column `event_types`: {e}")))?;
    let event_types = types
        .iter()
        .map(|t| t.parse().map_err(|e| StoreError::Corrupt(format!("column `event_types`: {e}"))))
        .collect::<StoreResult<_>>()?;
    Ok(EventEndpoint {
        id: uuid(row, "id")?.into(),
        tenant_id: uuid(row, "tenant_id")?.into(),
        url: text(row, "url")?,
        event_types,
        created_at: time(row, "created_at")?,
        disabled_at: opt_time(row, "disabled_at")?,
        failing_since: opt_time(row, "failing_since")?,
        secrets,
    })
}

fn delivery_row(row: &SqliteRow) -> StoreResult<EventDelivery> {
    Ok(EventDelivery {
        id: uuid(row, "id")?.into(),
        tenant_id: uuid(row, "tenant_id")?.into(),
        endpoint_id: uuid(row, "endpoint_id")?.into(),
        event_id: uuid(row, "event_id")?.into(),
        event_type: parsed(row, "event_type")?,
        status: parsed(row, "status")?,
        attempts: int32(row, "attempts")?,
        next_attempt_at: opt_time(row, "next_attempt_at")?,
        last_status: opt_int(row, "last_status")?.map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
        last_error: opt_text(row, "last_error")?,
        created_at: time(row, "created_at")?,
        delivered_at: opt_time(row, "delivered_at")?,
    })
}

async fn insert_delivery(
    conn: &mut SqliteConnection,
    tenant: &str,
    endpoint: &str,
    event: &str,
    event_type: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<SqliteRow>> {
    sqlx::query(
        "INSERT INTO event_delivery (id, tenant_id, endpoint_id, event_id, event_type, status, attempts,
             next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6)
         ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING *",
    )
    .bind(id_text(EventDeliveryId::new().0))
    .bind(tenant)
    .bind(endpoint)
    .bind(event)
    .bind(event_type)
    .bind(micros(now))
    .fetch_optional(conn)
    .await
    .map_err(db_err)
}

impl SqliteStore {
    async fn load_endpoint(&self, id: EventEndpointId, tenant: Option<TenantId>) -> StoreResult<EventEndpoint> {
        let row = sqlx::query("SELECT * FROM event_endpoint WHERE id = ?1 AND (?2 IS NULL OR tenant_id = ?2)")
            .bind(id_text(id.0))
            .bind(tenant.map(|t| id_text(t.0)))
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        let secrets = ENDPOINT_SECRETS.load(&self.reader, id.0).await?;
        endpoint_row(&row, secrets)
    }
}

#[async_trait]
impl EventOutStore for SqliteStore {
    async fn create_event_endpoint(&self, endpoint: NewEventEndpoint) -> StoreResult<EventEndpoint> {
        let types: Vec<&str> = endpoint.event_types.iter().map(|t| t.as_str()).collect();
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query("INSERT INTO event_endpoint (id, tenant_id, url, event_types, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(id_text(endpoint.id.0))
            .bind(id_text(endpoint.tenant_id.0))
            .bind(&endpoint.url)
            .bind(serde_json::json!(types).to_string())
            .bind(micros(endpoint.secret.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        ENDPOINT_SECRETS.insert(&mut tx, endpoint.id.0, &endpoint.secret).await?;
        tx.commit().await.map_err(db_err)?;
        self.load_endpoint(endpoint.id, Some(endpoint.tenant_id)).await
    }

    async fn get_event_endpoint(&self, scope: TenantScope, id: EventEndpointId) -> StoreResult<EventEndpoint> {
        self.load_endpoint(id, Some(scope.tenant_id())).await
    }

    async fn find_event_endpoint(&self, id: EventEndpointId) -> StoreResult<EventEndpoint> {
        self.load_endpoint(id, None).await
    }

    async fn list_event_endpoints(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<EventEndpoint>> {
        let found = sqlx::query(
            "SELECT * FROM event_endpoint WHERE tenant_id = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3",
        )
        .bind(id_text(scope.tenant_id().0))
        .bind(page.after.map(id_text))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        let items = found.iter().map(|row| endpoint_row(row, Vec::new())).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(items, page.limit, |e| e.id.0))
    }

    async fn delete_event_endpoint(&self, scope: TenantScope, id: EventEndpointId) -> StoreResult<()> {
        let id = id_text(id.0);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query("SELECT id FROM event_endpoint WHERE id = ? AND tenant_id = ?")
            .bind(&id)
            .bind(id_text(scope.tenant_id().0))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        for sql in [
            "DELETE FROM event_delivery WHERE endpoint_id = ?",
            "DELETE FROM event_endpoint_secret WHERE endpoint_id = ?",
            "DELETE FROM event_endpoint WHERE id = ?",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn rotate_event_endpoint_secret(
        &self,
        scope: TenantScope,
        id: EventEndpointId,
        secret: SealedWebhookSecret,
        old_valid_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<EventEndpoint> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query("SELECT id FROM event_endpoint WHERE id = ? AND tenant_id = ?")
            .bind(id_text(id.0))
            .bind(id_text(scope.tenant_id().0))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        ENDPOINT_SECRETS.rotate(&mut tx, id.0, &secret, old_valid_until, now).await?;
        tx.commit().await.map_err(db_err)?;
        self.load_endpoint(id, Some(scope.tenant_id())).await
    }

    async fn dispatch_events(&self, limit: u32, now: DateTime<Utc>) -> StoreResult<Dispatched> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let positions: Vec<i64> = sqlx::query_scalar(
            "SELECT position FROM event_outbox WHERE dispatched_at IS NULL ORDER BY position LIMIT ?",
        )
        .bind(i64::from(limit.max(1)))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let (Some(first), Some(last)) = (positions.first(), positions.last()) else {
            return Ok(Dispatched::default());
        };
        // Endpoints that existed when the event was written, subscribe to its type and are
        // enabled. Test events are never dispatched (they are created with their delivery).
        let candidates = sqlx::query(
            "SELECT o.id AS event_id, o.tenant_id, o.event_type, ep.id AS endpoint_id
             FROM event_outbox o
             JOIN event_endpoint ep ON ep.tenant_id = o.tenant_id AND ep.disabled_at IS NULL
                  AND ep.created_at <= o.created_at
                  AND EXISTS (SELECT 1 FROM json_each(ep.event_types) t WHERE t.value = o.event_type)
             WHERE o.position BETWEEN ?1 AND ?2 AND o.dispatched_at IS NULL AND o.event_type <> 'endpoint.test'
             ORDER BY o.position, ep.id",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let mut deliveries = 0u32;
        for row in &candidates {
            let (tenant, endpoint) = (text(row, "tenant_id")?, text(row, "endpoint_id")?);
            let (event, event_type) = (text(row, "event_id")?, text(row, "event_type")?);
            if insert_delivery(&mut tx, &tenant, &endpoint, &event, &event_type, now).await?.is_some() {
                deliveries += 1;
            }
        }
        sqlx::query(
            "UPDATE event_outbox SET dispatched_at = ?3 WHERE position BETWEEN ?1 AND ?2 AND dispatched_at IS NULL",
        )
        .bind(first)
        .bind(last)
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Dispatched { events: u32::try_from(positions.len()).unwrap_or(u32::MAX), deliveries })
    }

    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<EventDelivery>> {
        let found = sqlx::query(
            "UPDATE event_delivery SET next_attempt_at = ?2
             WHERE id IN (
                 SELECT d.id FROM event_delivery d JOIN event_endpoint ep ON ep.id = d.endpoint_id
                 WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 AND ep.disabled_at IS NULL
                 ORDER BY d.next_attempt_at, d.id LIMIT ?3)
             RETURNING *",
        )
        .bind(micros(now))
        .bind(micros(lease_until))
        .bind(i64::from(limit.max(1)))
        .fetch_all(&self.writer)
        .await
        .map_err(db_err)?;
        let mut claimed = found.iter().map(delivery_row).collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|d| d.id.0);
        Ok(claimed)
    }

    async fn record_delivery_attempt(
        &self,
        id: EventDeliveryId,
        attempt: DeliveryAttempt,
        now: DateTime<Utc>,
    ) -> StoreResult<EventEndpoint> {
        let (status, next, delivered_at) = match attempt.outcome {
            AttemptOutcome::Delivered => (EventDeliveryStatus::Delivered, None, Some(micros(now))),
            AttemptOutcome::Retry(at) => (EventDeliveryStatus::Pending, Some(micros(at)), None),
            AttemptOutcome::Exhausted => (EventDeliveryStatus::Exhausted, None, None),
        };
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let endpoint: String = sqlx::query_scalar(
            "UPDATE event_delivery SET attempts = attempts + 1, status = ?2, next_attempt_at = ?3, last_status = ?4,
                 last_error = ?5, delivered_at = COALESCE(?6, delivered_at),
                 finished_at = CASE WHEN ?2 = 'pending' THEN NULL ELSE ?7 END
             WHERE id = ?1 RETURNING endpoint_id",
        )
        .bind(id_text(id.0))
        .bind(status.as_str())
        .bind(next)
        .bind(attempt.status)
        .bind(attempt.error.as_deref())
        .bind(delivered_at)
        .bind(micros(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
        let ok = attempt.outcome == AttemptOutcome::Delivered;
        sqlx::query(
            "UPDATE event_endpoint SET failing_since = CASE WHEN ?2 THEN NULL ELSE COALESCE(failing_since, ?3) END
             WHERE id = ?1",
        )
        .bind(&endpoint)
        .bind(ok)
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let endpoint = uuid::Uuid::parse_str(&endpoint).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.load_endpoint(EventEndpointId(endpoint), None).await
    }

    async fn disable_event_endpoint(
        &self,
        id: EventEndpointId,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let done = sqlx::query("UPDATE event_endpoint SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL")
            .bind(micros(now))
            .bind(id_text(id.0))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_event(&mut tx, &event, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn list_event_deliveries(
        &self,
        scope: TenantScope,
        endpoint: EventEndpointId,
        filter: &EventDeliveryFilter,
        page: Page,
    ) -> StoreResult<Paged<EventDelivery>> {
        self.load_endpoint(endpoint, Some(scope.tenant_id())).await?;
        let found = sqlx::query(
            "SELECT * FROM event_delivery WHERE endpoint_id = ?1 AND tenant_id = ?2
                 AND (?3 IS NULL OR id < ?3) AND (?4 IS NULL OR status = ?4)
             ORDER BY id DESC LIMIT ?5",
        )
        .bind(id_text(endpoint.0))
        .bind(id_text(scope.tenant_id().0))
        .bind(page.after.map(id_text))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        let items = found.iter().map(delivery_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(items, page.limit, |d| d.id.0))
    }

    async fn redrive_event_delivery(
        &self,
        scope: TenantScope,
        endpoint: EventEndpointId,
        id: EventDeliveryId,
        now: DateTime<Utc>,
    ) -> StoreResult<EventDelivery> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let row = sqlx::query("SELECT status FROM event_delivery WHERE id = ? AND endpoint_id = ? AND tenant_id = ?")
            .bind(id_text(id.0))
            .bind(id_text(endpoint.0))
            .bind(id_text(scope.tenant_id().0))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        let status: EventDeliveryStatus = parsed(&row, "status")?;
        if status == EventDeliveryStatus::Pending {
            return Err(StoreError::Conflict("the delivery is still pending".into()));
        }
        let row = sqlx::query(
            "UPDATE event_delivery SET status = 'pending', attempts = 0, next_attempt_at = ?, finished_at = NULL
             WHERE id = ? RETURNING *",
        )
        .bind(micros(now))
        .bind(id_text(id.0))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("UPDATE event_endpoint SET disabled_at = NULL, failing_since = NULL WHERE id = ? AND disabled_at IS NOT NULL")
            .bind(id_text(endpoint.0))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        delivery_row(&row)
    }

    async fn create_test_delivery(
        &self,
        scope: TenantScope,
        endpoint: EventEndpointId,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<EventDelivery> {
        if event.tenant_id != scope.tenant_id() {
            return Err(StoreError::NotFound);
        }
        let tenant = id_text(scope.tenant_id().0);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query("SELECT id FROM event_endpoint WHERE id = ? AND tenant_id = ?")
            .bind(id_text(endpoint.0))
            .bind(&tenant)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        let stored = insert_event(&mut tx, &event, now).await?;
        sqlx::query("UPDATE event_outbox SET dispatched_at = ? WHERE position = ?")
            .bind(micros(now))
            .bind(stored.position)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let row = insert_delivery(
            &mut tx,
            &tenant,
            &id_text(endpoint.0),
            &id_text(stored.id.0),
            stored.event_type.as_str(),
            now,
        )
        .await?
        .ok_or_else(|| StoreError::Conflict("the test delivery exists".into()))?;
        tx.commit().await.map_err(db_err)?;
        delivery_row(&row)
    }

    async fn event_endpoint_key_usage(&self) -> StoreResult<Vec<WebhookKeyUsage>> {
        let found =
            sqlx::query("SELECT key_id, COUNT(*) AS n FROM event_endpoint_secret GROUP BY key_id ORDER BY key_id")
                .fetch_all(&self.reader)
                .await
                .map_err(db_err)?;
        found
            .iter()
            .map(|row| Ok(WebhookKeyUsage { key_id: key_id(row, "key_id")?, ciphertexts: int(row, "n")? }))
            .collect()
    }

    async fn find_outbox_event(&self, id: EventId) -> StoreResult<OutboxEvent> {
        let row = sqlx::query("SELECT * FROM event_outbox WHERE id = ?")
            .bind(id_text(id.0))
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        rows::event(&row)
    }
}
