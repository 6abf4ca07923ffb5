//! Webhook sources and the inbox on SQLite. A batch of deliveries is one transaction on the
//! single writer, so a burst of concurrent webhooks costs one WAL flush, not one each.

use crate::codec::*;
use crate::sealed_secrets::SOURCE_SECRETS;
use crate::{db_err, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::sqlite::SqliteRow;

fn source_row(row: &SqliteRow, secrets: Vec<SealedWebhookSecret>) -> StoreResult<WebhookSource> {
    Ok(WebhookSource {
        id: uuid(row, "id")?.into(),
        tenant_id: uuid(row, "tenant_id")?.into(),
        name: text(row, "name")?,
        scheme: parsed(row, "scheme")?,
        settings: json(row, "settings")?,
        created_at: time(row, "created_at")?,
        secrets,
    })
}

pub(crate) fn event_row(row: &SqliteRow) -> StoreResult<WebhookEvent> {
    Ok(WebhookEvent {
        id: uuid(row, "id")?.into(),
        source_kind: parsed(row, "source_kind")?,
        source_id: text(row, "source_id")?,
        tenant_id: opt_uuid(row, "tenant_id")?.map(Into::into),
        dedup_key: text(row, "dedup_key")?,
        received_at: time(row, "received_at")?,
        headers: json(row, "headers")?,
        key_id: key_id(row, "key_id")?,
        body: blob(row, "body")?,
        status: parsed(row, "status")?,
        attempts: int32(row, "attempts")?,
        error: opt_text(row, "error")?,
    })
}

impl SqliteStore {
    /// A source row (scoped to `tenant` when given) with its secrets, newest first.
    async fn load_source(&self, id: WebhookSourceId, tenant: Option<TenantId>) -> StoreResult<WebhookSource> {
        let row = sqlx::query("SELECT * FROM webhook_source WHERE id = ?1 AND (?2 IS NULL OR tenant_id = ?2)")
            .bind(id_text(id.0))
            .bind(tenant.map(|t| id_text(t.0)))
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        let secrets = SOURCE_SECRETS.load(&self.reader, id.0).await?;
        source_row(&row, secrets)
    }
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook_source(&self, source: NewWebhookSource) -> StoreResult<WebhookSource> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO webhook_source (id, tenant_id, name, scheme, settings, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id_text(source.id.0))
        .bind(id_text(source.tenant_id.0))
        .bind(&source.name)
        .bind(source.scheme.as_str())
        .bind(source.settings.to_string())
        .bind(micros(source.secret.created_at))
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
            "SELECT * FROM webhook_source WHERE tenant_id = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3",
        )
        .bind(id_text(scope.tenant_id().0))
        .bind(page.after.map(id_text))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.reader)
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
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query("SELECT id FROM webhook_source WHERE id = ? AND tenant_id = ?")
            .bind(id_text(id.0))
            .bind(id_text(scope.tenant_id().0))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        SOURCE_SECRETS.rotate(&mut tx, id.0, &secret, old_valid_until, now).await?;
        tx.commit().await.map_err(db_err)?;
        self.load_source(id, Some(scope.tenant_id())).await
    }

    async fn insert_webhook_events(&self, events: Vec<NewWebhookEvent>) -> StoreResult<Vec<WebhookInsert>> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let mut outcomes = Vec::with_capacity(events.len());
        for event in &events {
            let inserted = sqlx::query(
                "INSERT INTO webhook_event (id, source_kind, source_id, tenant_id, dedup_key, received_at, headers,
                     key_id, body, status)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')
                 ON CONFLICT (source_kind, source_id, dedup_key) DO NOTHING",
            )
            .bind(id_text(event.id.0))
            .bind(event.source_kind.as_str())
            .bind(&event.source_id)
            .bind(event.tenant_id.map(|t| id_text(t.0)))
            .bind(&event.dedup_key)
            .bind(micros(event.received_at))
            .bind(event.headers.to_string())
            .bind(i64::from(event.key_id))
            .bind(&event.body)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            outcomes.push(if inserted.rows_affected() == 1 {
                // The event's `webhook.process` job commits with it, so none is left unapplied.
                let job = WebhookProcessPayload { event_id: event.id }.job(event.received_at);
                crate::jobs::insert_job(&mut tx, &job, event.received_at).await?;
                WebhookInsert::Stored(event.id)
            } else {
                WebhookInsert::Duplicate
            });
        }
        tx.commit().await.map_err(db_err)?;
        Ok(outcomes)
    }

    async fn webhook_key_usage(&self) -> StoreResult<Vec<WebhookKeyUsage>> {
        let found = sqlx::query(
            "SELECT key_id, SUM(n) AS n FROM (SELECT key_id, COUNT(*) AS n FROM webhook_source_secret GROUP BY key_id UNION ALL SELECT key_id, COUNT(*) AS n FROM webhook_event GROUP BY key_id) u GROUP BY key_id ORDER BY key_id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        found
            .iter()
            .map(|row| Ok(WebhookKeyUsage { key_id: key_id(row, "key_id")?, ciphertexts: int(row, "n")? }))
            .collect()
    }

    async fn get_webhook_event(&self, scope: TenantScope, id: WebhookEventId) -> StoreResult<WebhookEvent> {
        let row = sqlx::query("SELECT * FROM webhook_event WHERE id = ? AND tenant_id = ?")
            .bind(id_text(id.0))
            .bind(id_text(scope.tenant_id().0))
            .fetch_optional(&self.reader)
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
            "SELECT * FROM webhook_event WHERE tenant_id = ?1 AND (?2 IS NULL OR id > ?2)
               AND (?3 IS NULL OR source_id = ?3) AND (?4 IS NULL OR status = ?4)
             ORDER BY id LIMIT ?5",
        )
        .bind(id_text(scope.tenant_id().0))
        .bind(page.after.map(id_text))
        .bind(filter.source_id.as_deref())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        let items = found.iter().map(event_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(items, page.limit, |e| e.id.0))
    }
}
