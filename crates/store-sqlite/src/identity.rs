//! Tenants, users and API keys.

use crate::codec::{id_text, micros, now, opt_micros};
use crate::{db_err, rows, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn upsert_tenant(&self, external_key: &str) -> StoreResult<Tenant> {
        // DO NOTHING then read back: racing first logins converge on whichever insert won.
        sqlx::query(
            "INSERT INTO tenant (id, external_key, created_at) VALUES (?, ?, ?) ON CONFLICT (external_key) DO NOTHING",
        )
        .bind(id_text(TenantId::new().0))
        .bind(external_key)
        .bind(micros(now()))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        let row = sqlx::query("SELECT * FROM tenant WHERE external_key = ?")
            .bind(external_key)
            .fetch_one(&self.writer)
            .await
            .map_err(db_err)?;
        rows::tenant(&row)
    }

    async fn find_tenant(&self, external_key: &str) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query("SELECT * FROM tenant WHERE external_key = ?")
            .bind(external_key)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::tenant).transpose()
    }

    async fn upsert_user(&self, scope: TenantScope, issuer: &str, subject: &str) -> StoreResult<AppUser> {
        let tenant = id_text(scope.tenant_id().0);
        sqlx::query(
            "INSERT INTO app_user (id, tenant_id, issuer, subject, created_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (tenant_id, issuer, subject) DO NOTHING",
        )
        .bind(id_text(UserId::new().0))
        .bind(&tenant)
        .bind(issuer)
        .bind(subject)
        .bind(micros(now()))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        let row = sqlx::query("SELECT * FROM app_user WHERE tenant_id = ? AND issuer = ? AND subject = ?")
            .bind(&tenant)
            .bind(issuer)
            .bind(subject)
            .fetch_one(&self.writer)
            .await
            .map_err(db_err)?;
        rows::user(&row)
    }

    async fn get_user(&self, scope: TenantScope, id: UserId) -> StoreResult<AppUser> {
        let row = sqlx::query("SELECT * FROM app_user WHERE id = ? AND tenant_id = ?")
            .bind(id_text(id.0))
            .bind(id_text(scope.tenant_id().0))
            .fetch_one(&self.reader)
            .await
            .map_err(db_err)?;
        rows::user(&row)
    }

    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKey> {
        let row = sqlx::query(
            "INSERT INTO api_key (id, tenant_id, name, prefix, sha256, scopes, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(id_text(ApiKeyId::new().0))
        .bind(id_text(key.tenant_id.0))
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.sha256[..])
        .bind(encode_scopes(&key.scopes))
        .bind(micros(now()))
        .bind(opt_micros(key.expires_at))
        .fetch_one(&self.writer)
        .await
        .map_err(db_err)?;
        rows::api_key(&row)
    }

    async fn find_api_key_by_hash(&self, sha256: &[u8; 32]) -> StoreResult<Option<ApiKey>> {
        let row = sqlx::query("SELECT * FROM api_key WHERE sha256 = ?")
            .bind(&sha256[..])
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::api_key).transpose()
    }

    async fn get_api_key(&self, scope: TenantScope, id: ApiKeyId) -> StoreResult<ApiKey> {
        let row = sqlx::query("SELECT * FROM api_key WHERE id = ? AND tenant_id = ?")
            .bind(id_text(id.0))
            .bind(id_text(scope.tenant_id().0))
            .fetch_one(&self.reader)
            .await
            .map_err(db_err)?;
        rows::api_key(&row)
    }

    async fn list_api_keys(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<ApiKey>> {
        let found =
            sqlx::query("SELECT * FROM api_key WHERE tenant_id = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3")
                .bind(id_text(scope.tenant_id().0))
                .bind(page.after.map(id_text))
                .bind(i64::from(page.limit) + 1)
                .fetch_all(&self.reader)
                .await
                .map_err(db_err)?;
        let keys = found.iter().map(rows::api_key).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(keys, page.limit, |k| k.id.0))
    }

    async fn revoke_api_key(&self, scope: TenantScope, id: ApiKeyId, at: DateTime<Utc>) -> StoreResult<ApiKey> {
        // COALESCE keeps the first revocation time when a key is revoked twice.
        let row = sqlx::query(
            "UPDATE api_key SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND tenant_id = ? RETURNING *",
        )
        .bind(micros(at))
        .bind(id_text(id.0))
        .bind(id_text(scope.tenant_id().0))
        .fetch_one(&self.writer)
        .await
        .map_err(db_err)?;
        rows::api_key(&row)
    }

    async fn touch_api_key(&self, id: ApiKeyId, at: DateTime<Utc>, debounce: chrono::Duration) -> StoreResult<bool> {
        // The debounce is in the WHERE clause, so concurrent requests write at most once per window.
        let done = sqlx::query(
            "UPDATE api_key SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at <= ?3)",
        )
        .bind(micros(at))
        .bind(id_text(id.0))
        .bind(micros(at - debounce))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }
}
