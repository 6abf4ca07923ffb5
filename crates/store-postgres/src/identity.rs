//! Tenants, users and API keys.

use crate::{db_err, now, rows, us, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

#[async_trait]
impl IdentityStore for PgStore {
    async fn upsert_tenant(&self, external_key: &str) -> StoreResult<Tenant> {
        // DO NOTHING, then read back: a racing insert waits for the winner to commit, does
        // nothing, and the SELECT (a new snapshot under READ COMMITTED) sees the winner's row.
        sqlx::query("INSERT INTO tenant (id, external_key, created_at) VALUES ($1, $2, $3) ON CONFLICT (external_key) DO NOTHING")
            .bind(TenantId::new().0)
            .bind(external_key)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        let row = sqlx::query("SELECT * FROM tenant WHERE external_key = $1")
            .bind(external_key)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        rows::tenant(&row)
    }

    async fn find_tenant(&self, external_key: &str) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query("SELECT * FROM tenant WHERE external_key = $1")
            .bind(external_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::tenant).transpose()
    }

    async fn upsert_user(&self, scope: TenantScope, issuer: &str, subject: &str) -> StoreResult<AppUser> {
        sqlx::query(
            "INSERT INTO app_user (id, tenant_id, issuer, subject, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, issuer, subject) DO NOTHING",
        )
        .bind(UserId::new().0)
        .bind(scope.tenant_id().0)
        .bind(issuer)
        .bind(subject)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        let row = sqlx::query("SELECT * FROM app_user WHERE tenant_id = $1 AND issuer = $2 AND subject = $3")
            .bind(scope.tenant_id().0)
            .bind(issuer)
            .bind(subject)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        rows::user(&row)
    }

    async fn get_user(&self, scope: TenantScope, id: UserId) -> StoreResult<AppUser> {
        let row = sqlx::query("SELECT * FROM app_user WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(scope.tenant_id().0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        rows::user(&row)
    }

    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKey> {
        let row = sqlx::query(
            "INSERT INTO api_key (id, tenant_id, name, prefix, sha256, scopes, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        )
        .bind(ApiKeyId::new().0)
        .bind(key.tenant_id.0)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.sha256[..])
        .bind(encode_scopes(&key.scopes))
        .bind(now())
        .bind(key.expires_at.map(us))
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        rows::api_key(&row)
    }

    async fn find_api_key_by_hash(&self, sha256: &[u8; 32]) -> StoreResult<Option<ApiKey>> {
        let row = sqlx::query("SELECT * FROM api_key WHERE sha256 = $1")
            .bind(&sha256[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::api_key).transpose()
    }

    async fn get_api_key(&self, scope: TenantScope, id: ApiKeyId) -> StoreResult<ApiKey> {
        let row = sqlx::query("SELECT * FROM api_key WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(scope.tenant_id().0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        rows::api_key(&row)
    }

    async fn list_api_keys(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<ApiKey>> {
        let found = sqlx::query(
            "SELECT * FROM api_key WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(scope.tenant_id().0)
        .bind(page.after)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let keys = found.iter().map(rows::api_key).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(keys, page.limit, |k| k.id.0))
    }

    async fn revoke_api_key(&self, scope: TenantScope, id: ApiKeyId, at: DateTime<Utc>) -> StoreResult<ApiKey> {
        // COALESCE keeps the first revocation time when a key is revoked twice.
        let row = sqlx::query(
            "UPDATE api_key SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND tenant_id = $3 RETURNING *",
        )
        .bind(us(at))
        .bind(id.0)
        .bind(scope.tenant_id().0)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        rows::api_key(&row)
    }

    async fn touch_api_key(&self, id: ApiKeyId, at: DateTime<Utc>, debounce: chrono::Duration) -> StoreResult<bool> {
        // The debounce is in the WHERE clause, so concurrent requests write at most once per window.
        let done = sqlx::query(
            "UPDATE api_key SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(us(at))
        .bind(id.0)
        .bind(us(at - debounce))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }
}
