//! Webhook sources and the inbox on Postgres. A batch of deliveries is one `INSERT … SELECT
//! FROM unnest(…)` in one transaction: one round trip and one WAL flush for the whole batch.

use crate::rows::col;
use crate::sealed_secrets::SOURCE_SECRETS;
use crate::{db_err, rows, us, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::postgres::PgRow;
use std::collections::HashSet;

fn source_row(row: &PgRow, secrets: Vec<SealedWebhookSecret>) -> StoreResult<WebhookSource> {
    Ok(WebhookSource {
        id: WebhookSourceId(col(row, "id")?),
        tenant_id: TenantId(col(row, "tenant_id")?),
        name: col(row, "name")?,
        scheme: rows::parsed(row, "scheme")?,
        settings: col(row, "settings")?,
        created_at: col(row, "created_at")?,
        secrets,
    })
}

pub(crate) fn event_row(row: &PgRow) -> StoreResult<WebhookEvent> {
    Ok(WebhookEvent {
        id: WebhookEventId(col(row, "id")?),
        source_kind: rows::parsed(row, "source_kind")?,
        source_id: col(row, "source_id")?,
        tenant_id: col::<Option<uuid::Uuid>>(row, "tenant_id")?.map(TenantId),
        dedup_key: col(row, "dedup_key")?,
        received_at: col(row, "received_at")?,
        headers: col(row, "headers")?,
        key_id: rows::key_id(row, "key_id")?,
        body: col(row, "body")?,
        status: rows::parsed(row, "status")?,
        attempts: col(row, "attempts")?,
        error: col(row, "error")?,
    })
}

impl PgStore {
    /// A source row (scoped to `tenant` when given) with its secrets, newest first.
    async fn load_source(&self, id: WebhookSourceId, tenant: Option<TenantId>) -> StoreResult<WebhookSource> {
        let row = sqlx::query("SELECT * FROM webhook_source WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)")
            .bind(id.0)
            .bind(tenant.map(|t| t.0))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        let secrets = SOURCE_SECRETS.load(&self.pool, id.0).await?;
        source_row(&row, secrets)
    }
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn create_webhook_source(&self, source: NewWebhookSource) -> StoreResult<WebhookSource> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO webhook_source (id, tenant_id, name, scheme, settings, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(source.id.0)
        .bind(source.tenant_id.0)
        .bind(&source.name)
        .bind(source.scheme.as_str())
        .bind(&source.settings)
        .bind(us(source.secret.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        SOURCE_SECRETS.insert(&mut tx, source.id.0, &source.secret).await?;
        tx.commit().await.map_err(db_err)?;
        self.load_source(source.id, Some(source.tenant_id)).await
    }

    async fn find_webhook_source(&self, id: WebhookSourceId) -> StoreResult<WebhookSource> {
        self.load_source(id, None).await
    }

    async fn get_webhook_source(&self, scope: TenantScope, id: WebhookSourceId) -> StoreResult<WebhookSource> {
        self.load_source(id, Some(scope.tenant_id())).await
    }

    async fn list_webhook_sources(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<WebhookSource>> {
        let found = sqlx::query(
            "SELECT * FROM webhook_source WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(scope.tenant_id().0)
        .bind(page.after)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        // Listing shows no secrets; sources are loaded whole where secrets are needed.
        let items = found.iter().map(|row| source_row(row, Vec::new())).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(items, page.limit, |s| s.id.0))
    }

    async fn rotate_webhook_secret(
        &self,
        scope: TenantScope,
        id: WebhookSourceId,
        secret: SealedWebhookSecret,
        old_valid_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<WebhookSource> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // The row lock serializes two rotations of one source.
        sqlx::query("SELECT id FROM webhook_source WHERE id = $1 AND tenant_id = $2 FOR UPDATE")
            .bind(id.0)
            .bind(scope.tenant_id().0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        SOURCE_SECRETS.rotate(&mut tx, id.0, &secret, old_valid_until, now).await?;
        tx.commit().await.map_err(db_err)?;
        self.load_source(id, Some(scope.tenant_id())).await
    }

    async fn insert_webhook_events(&self, events: Vec<NewWebhookEvent>) -> StoreResult<Vec<WebhookInsert>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let n = events.len();
        let (mut ids, mut kinds, mut sources, mut tenants) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut keys, mut times, mut headers, mut key_ids, mut bodies) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for e in &events {
            ids.push(e.id.0);
            kinds.push(e.source_kind.as_str());
            sources.push(e.source_id.as_str());
            tenants.push(e.tenant_id.map(|t| t.0));
            keys.push(e.dedup_key.as_str());
            times.push(us(e.received_at));
            headers.push(e.headers.clone());
            key_ids.push(i64::from(e.key_id));
            bodies.push(e.body.as_slice());
        }
        // Every stored event gets its `webhook.process` job in the same statement, so no event
        // is stored without the job that applies it (a crash cannot separate them).
        let (mut job_ids, mut payloads, mut dedups, mut lanes) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for e in &events {
            let job = WebhookProcessPayload { event_id: e.id }.job(e.received_at);
            job_ids.push(JobId::new().0);
            payloads.push(job.payload);
            dedups.push(job.dedup_key);
            lanes.push(job.concurrency_key);
        }
        let template = WebhookProcessPayload { event_id: events[0].id }.job(events[0].received_at);
        // One statement: rows conflicting with a stored event, or with an earlier row of the
        // same batch, are skipped; the ids that come back are the ones stored. A concurrent
        // transaction inserting the same key makes this one wait for its outcome, so a key is
        // stored once across instances too.
        let stored: Vec<uuid::Uuid> = sqlx::query_scalar(
            "WITH stored AS (
                 INSERT INTO webhook_event (id, source_kind, source_id, tenant_id, dedup_key, received_at, headers,
                     key_id, body, status)
                 SELECT id, kind, source, tenant, key, at, hdr, kid, body, 'pending'
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::timestamptz[],
                             $7::jsonb[], $8::bigint[], $9::bytea[])
                      WITH ORDINALITY AS b (id, kind, source, tenant, key, at, hdr, kid, body, n)
                 ORDER BY n
                 ON CONFLICT (source_kind, source_id, dedup_key) DO NOTHING
                 RETURNING id, received_at
             ), jobs AS (
                 INSERT INTO job (id, kind, payload, priority, run_at, dedup_key, concurrency_key, attempts,
                     max_attempts, status, created_at, updated_at)
                 SELECT j.jid, $14, j.payload, $15, s.received_at, j.dedup, j.lane, 0, $16, 'queued',
                        s.received_at, s.received_at
                 FROM stored s
                 JOIN unnest($1::uuid[], $10::uuid[], $11::jsonb[], $12::text[], $13::text[])
                      AS j (eid, jid, payload, dedup, lane) ON j.eid = s.id
             )
             SELECT id FROM stored",
        )
        .bind(&ids)
        .bind(&kinds)
        .bind(&sources)
        .bind(&tenants)
        .bind(&keys)
        .bind(&times)
        .bind(&headers)
        .bind(&key_ids)
        .bind(&bodies)
        .bind(&job_ids)
        .bind(&payloads)
        .bind(&dedups)
        .bind(&lanes)
        .bind(&template.kind)
        .bind(template.priority)
        .bind(template.max_attempts)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let stored: HashSet<uuid::Uuid> = stored.into_iter().collect();
        Ok(events
            .iter()
            .map(|e| if stored.contains(&e.id.0) { WebhookInsert::Stored(e.id) } else { WebhookInsert::Duplicate })
            .collect())
    }

    async fn webhook_key_usage(&self) -> StoreResult<Vec<WebhookKeyUsage>> {
        let found = sqlx::query(
            "SELECT key_id, SUM(n)::bigint AS n FROM (SELECT key_id, COUNT(*) AS n FROM webhook_source_secret GROUP BY key_id UNION ALL SELECT key_id, COUNT(*) AS n FROM webhook_event GROUP BY key_id) u GROUP BY key_id ORDER BY key_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        found
            .iter()
            .map(|row| Ok(WebhookKeyUsage { key_id: rows::key_id(row, "key_id")?, ciphertexts: col(row, "n")? }))
            .collect()
    }

    async fn get_webhook_event(&self, scope: TenantScope, id: WebhookEventId) -> StoreResult<WebhookEvent> {
        let row = sqlx::query("SELECT * FROM webhook_event WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(scope.tenant_id().0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        event_row(&row)
    }

    async fn list_webhook_events(
        &self,
        scope: TenantScope,
        filter: &WebhookEventFilter,
        page: Page,
    ) -> StoreResult<Paged<WebhookEvent>> {
        let found = sqlx::query(
            "SELECT * FROM webhook_event WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2)
               AND ($3::text IS NULL OR source_id = $3) AND ($4::text IS NULL OR status = $4)
             ORDER BY id LIMIT $5",
        )
        .bind(scope.tenant_id().0)
        .bind(page.after)
        .bind(filter.source_id.as_deref())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let items = found.iter().map(event_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(items, page.limit, |e| e.id.0))
    }
}
