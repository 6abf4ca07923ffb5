//! Event endpoints and deliveries on Postgres. Dispatch takes undispatched outbox events with
//! `FOR UPDATE SKIP LOCKED`, so two instances never take the same event, and creates their
//! deliveries and marks them in one transaction.

use crate::outbox::insert_event;
use crate::rows::col;
use crate::sealed_secrets::ENDPOINT_SECRETS;
use crate::{db_err, rows, us, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::postgres::PgRow;

fn endpoint_row(row: &PgRow, secrets: Vec<SealedWebhookSecret>) -> StoreResult<EventEndpoint> {
    let types: Vec<String> = col(row, "event_types")?;
    let event_types = types
        .iter()
        .map(|t| t.parse().map_err(|e| StoreError::Corrupt(format!("column `event_types`: {e}"))))
        .collect::<StoreResult<_>>()?;
    Ok(EventEndpoint {
        id: EventEndpointId(col(row, "id")?),
        tenant_id: TenantId(col(row, "tenant_id")?),
        url: col(row, "url")?,
        event_types,
        created_at: col(row, "created_at")?,
        disabled_at: col(row, "disabled_at")?,
        failing_since: col(row, "failing_since")?,
        secrets,
    })
}

fn delivery_row(row: &PgRow) -> StoreResult<EventDelivery> {
    Ok(EventDelivery {
        id: EventDeliveryId(col(row, "id")?),
        tenant_id: TenantId(col(row, "tenant_id")?),
        endpoint_id: EventEndpointId(col(row, "endpoint_id")?),
        event_id: EventId(col(row, "event_id")?),
        event_type: rows::parsed(row, "event_type")?,
        status: rows::parsed(row, "status")?,
        attempts: col(row, "attempts")?,
        next_attempt_at: col(row, "next_attempt_at")?,
        last_status: col(row, "last_status")?,
        last_error: col(row, "last_error")?,
        created_at: col(row, "created_at")?,
        delivered_at: col(row, "delivered_at")?,
    })
}

impl PgStore {
    async fn load_endpoint(&self, id: EventEndpointId, tenant: Option<TenantId>) -> StoreResult<EventEndpoint> {
        let row = sqlx::query("SELECT * FROM event_endpoint WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)")
            .bind(id.0)
            .bind(tenant.map(|t| t.0))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        let secrets = ENDPOINT_SECRETS.load(&self.pool, id.0).await?;
        endpoint_row(&row, secrets)
    }
}

#[async_trait]
impl EventOutStore for PgStore {
    async fn create_event_endpoint(&self, endpoint: NewEventEndpoint) -> StoreResult<EventEndpoint> {
        let types: Vec<&str> = endpoint.event_types.iter().map(|t| t.as_str()).collect();
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO event_endpoint (id, tenant_id, url, event_types, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(endpoint.id.0)
        .bind(endpoint.tenant_id.0)
        .bind(&endpoint.url)
        .bind(&types)
        .bind(us(endpoint.secret.created_at))
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
            "SELECT * FROM event_endpoint WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(scope.tenant_id().0)
        .bind(page.after)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let items = found.iter().map(|row| endpoint_row(row, Vec::new())).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(items, page.limit, |e| e.id.0))
    }

    async fn delete_event_endpoint(&self, scope: TenantScope, id: EventEndpointId) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let deleted = sqlx::query("DELETE FROM event_endpoint WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(scope.tenant_id().0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("SELECT id FROM event_endpoint WHERE id = $1 AND tenant_id = $2 FOR UPDATE")
            .bind(id.0)
            .bind(scope.tenant_id().0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        ENDPOINT_SECRETS.rotate(&mut tx, id.0, &secret, old_valid_until, now).await?;
        tx.commit().await.map_err(db_err)?;
        self.load_endpoint(id, Some(scope.tenant_id())).await
    }

    async fn dispatch_events(&self, limit: u32, now: DateTime<Utc>) -> StoreResult<Dispatched> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let positions: Vec<i64> = sqlx::query_scalar(
            "SELECT position FROM event_outbox WHERE dispatched_at IS NULL ORDER BY position LIMIT $1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(i64::from(limit.max(1)))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        if positions.is_empty() {
            return Ok(Dispatched::default());
        }
        // Endpoints that existed when the event was written, subscribe to its type and are
        // enabled. Test events are never dispatched (they are created with their delivery).
        let candidates = sqlx::query(
            "SELECT o.id AS event_id, o.tenant_id, o.event_type, ep.id AS endpoint_id
             FROM event_outbox o
             JOIN event_endpoint ep ON ep.tenant_id = o.tenant_id AND ep.disabled_at IS NULL
                  AND ep.created_at <= o.created_at AND o.event_type = ANY (ep.event_types)
             WHERE o.position = ANY ($1) AND o.event_type <> 'endpoint.test'
             ORDER BY o.position, ep.id",
        )
        .bind(&positions)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let mut deliveries = 0u32;
        for row in &candidates {
            let done = sqlx::query(
                "INSERT INTO event_delivery (id, tenant_id, endpoint_id, event_id, event_type, status, attempts,
                     next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)
                 ON CONFLICT (endpoint_id, event_id) DO NOTHING",
            )
            .bind(EventDeliveryId::new().0)
            .bind(col::<uuid::Uuid>(row, "tenant_id")?)
            .bind(col::<uuid::Uuid>(row, "endpoint_id")?)
            .bind(col::<uuid::Uuid>(row, "event_id")?)
            .bind(col::<String>(row, "event_type")?)
            .bind(us(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            deliveries += u32::try_from(done.rows_affected()).unwrap_or(0);
        }
        sqlx::query("UPDATE event_outbox SET dispatched_at = $2 WHERE position = ANY ($1)")
            .bind(&positions)
            .bind(us(now))
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
            "UPDATE event_delivery SET next_attempt_at = $2
             WHERE id IN (
                 SELECT d.id FROM event_delivery d JOIN event_endpoint ep ON ep.id = d.endpoint_id
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND ep.disabled_at IS NULL
                 ORDER BY d.next_attempt_at, d.id LIMIT $3
                 FOR UPDATE OF d SKIP LOCKED)
             RETURNING *",
        )
        .bind(us(now))
        .bind(us(lease_until))
        .bind(i64::from(limit.max(1)))
        .fetch_all(&self.pool)
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
            AttemptOutcome::Delivered => (EventDeliveryStatus::Delivered, None, Some(us(now))),
            AttemptOutcome::Retry(at) => (EventDeliveryStatus::Pending, Some(us(at)), None),
            AttemptOutcome::Exhausted => (EventDeliveryStatus::Exhausted, None, None),
        };
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let endpoint: uuid::Uuid = sqlx::query_scalar(
            "UPDATE event_delivery SET attempts = attempts + 1, status = $2, next_attempt_at = $3, last_status = $4,
                 last_error = $5, delivered_at = COALESCE($6, delivered_at),
                 finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE $7 END
             WHERE id = $1 RETURNING endpoint_id",
        )
        .bind(id.0)
        .bind(status.as_str())
        .bind(next)
        .bind(attempt.status)
        .bind(attempt.error.as_deref())
        .bind(delivered_at)
        .bind(us(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
        let ok = attempt.outcome == AttemptOutcome::Delivered;
        sqlx::query(
            "UPDATE event_endpoint SET failing_since = CASE WHEN $2 THEN NULL ELSE COALESCE(failing_since, $3) END
             WHERE id = $1",
        )
        .bind(endpoint)
        .bind(ok)
        .bind(us(now))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        self.load_endpoint(EventEndpointId(endpoint), None).await
    }

    async fn disable_event_endpoint(
        &self,
        id: EventEndpointId,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let done = sqlx::query("UPDATE event_endpoint SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL")
            .bind(id.0)
            .bind(us(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_event(&mut tx, &event, us(now)).await?;
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
            "SELECT * FROM event_delivery WHERE endpoint_id = $1 AND tenant_id = $2
                 AND ($3::uuid IS NULL OR id < $3) AND ($4::text IS NULL OR status = $4)
             ORDER BY id DESC LIMIT $5",
        )
        .bind(endpoint.0)
        .bind(scope.tenant_id().0)
        .bind(page.after)
        .bind(filter.status.map(|s| s.as_str()))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let row = sqlx::query(
            "SELECT status FROM event_delivery WHERE id = $1 AND endpoint_id = $2 AND tenant_id = $3 FOR UPDATE",
        )
        .bind(id.0)
        .bind(endpoint.0)
        .bind(scope.tenant_id().0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
        let status: EventDeliveryStatus = rows::parsed(&row, "status")?;
        if status == EventDeliveryStatus::Pending {
            return Err(StoreError::Conflict("the delivery is still pending".into()));
        }
        let row = sqlx::query(
            "UPDATE event_delivery SET status = 'pending', attempts = 0, next_attempt_at = $2, finished_at = NULL
             WHERE id = $1 RETURNING *",
        )
        .bind(id.0)
        .bind(us(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("UPDATE event_endpoint SET disabled_at = NULL, failing_since = NULL WHERE id = $1 AND disabled_at IS NOT NULL")
            .bind(endpoint.0)
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("SELECT id FROM event_endpoint WHERE id = $1 AND tenant_id = $2")
            .bind(endpoint.0)
            .bind(scope.tenant_id().0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        let stored = insert_event(&mut tx, &event, us(now)).await?;
        sqlx::query("UPDATE event_outbox SET dispatched_at = $2 WHERE position = $1")
            .bind(stored.position)
            .bind(us(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let row = sqlx::query(
            "INSERT INTO event_delivery (id, tenant_id, endpoint_id, event_id, event_type, status, attempts,
                 next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) RETURNING *",
        )
        .bind(EventDeliveryId::new().0)
        .bind(scope.tenant_id().0)
        .bind(endpoint.0)
        .bind(stored.id.0)
        .bind(stored.event_type.as_str())
        .bind(us(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        delivery_row(&row)
    }

    async fn event_endpoint_key_usage(&self) -> StoreResult<Vec<WebhookKeyUsage>> {
        let found = sqlx::query(
            "SELECT key_id, COUNT(*)::bigint AS n FROM event_endpoint_secret GROUP BY key_id ORDER BY key_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        found
            .iter()
            .map(|row| Ok(WebhookKeyUsage { key_id: rows::key_id(row, "key_id")?, ciphertexts: col(row, "n")? }))
            .collect()
    }

    async fn find_outbox_event(&self, id: EventId) -> StoreResult<OutboxEvent> {
        let row = sqlx::query("SELECT * FROM event_outbox WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        rows::event(&row)
    }
}
