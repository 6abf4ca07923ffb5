//! Tenants, users and API keys: who may call Patchbay, and for which tenant.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A tenant: an organisation (claim mode) or a single user (per-user mode).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    /// `org:<claim value>` or `user:<iss>|<sub>`; the prefixes keep the two modes apart.
    pub external_key: String,
    pub created_at: DateTime<Utc>,
}

/// A person within one tenant (one person in two orgs is two users).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppUser {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub issuer: String,
    pub subject: String,
    pub created_at: DateTime<Utc>,
}

crate::text_enum! {
    /// What an API key may do.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum ApiKeyScope as "scope" {
        Read = "read",
        Connect = "connect",
        Write = "write",
        Admin = "admin",
    }
}

/// Encodes scopes for storage: a sorted, comma-separated list.
pub fn encode_scopes(scopes: &[ApiKeyScope]) -> String {
    let mut sorted = scopes.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

/// Decodes scopes written by [`encode_scopes`].
pub fn decode_scopes(text: &str) -> Result<Vec<ApiKeyScope>, String> {
    text.split(',').filter(|s| !s.is_empty()).map(str::parse).collect()
}

/// An API key as stored: a display prefix and the SHA-256 of the whole key, never the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<ApiKeyScope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key may be used at `now`.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|exp| exp > now)
    }
}

/// Input for [`crate::IdentityStore::create_api_key`].
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub tenant_id: TenantId,
    pub name: String,
    pub prefix: String,
    pub sha256: [u8; 32],
    pub scopes: Vec<ApiKeyScope>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Tenants, users and API keys.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Returns the tenant with this external key, creating it if missing. Idempotent under races.
    async fn upsert_tenant(&self, external_key: &str) -> StoreResult<Tenant>;
    /// Looks a tenant up by its external key (operator-level: no scope).
    async fn find_tenant(&self, external_key: &str) -> StoreResult<Option<Tenant>>;
    /// Returns the user (tenant, issuer, subject), creating it if missing. Idempotent under races.
    async fn upsert_user(&self, scope: TenantScope, issuer: &str, subject: &str) -> StoreResult<AppUser>;
    /// One user of the tenant.
    async fn get_user(&self, scope: TenantScope, id: UserId) -> StoreResult<AppUser>;
    /// Stores a new API key (only its hash and prefix).
    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKey>;
    /// Finds a key by the SHA-256 of its full text, with no tenant filter (this is how a key
    /// proves its tenant). Revoked and expired keys are returned too; the caller decides.
    async fn find_api_key_by_hash(&self, sha256: &[u8; 32]) -> StoreResult<Option<ApiKey>>;
    /// One key of the tenant.
    async fn get_api_key(&self, scope: TenantScope, id: ApiKeyId) -> StoreResult<ApiKey>;
    /// The tenant's keys, oldest first.
    async fn list_api_keys(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<ApiKey>>;
    /// Revokes a key of the tenant (idempotent: revoking twice keeps the first time).
    async fn revoke_api_key(&self, scope: TenantScope, id: ApiKeyId, at: DateTime<Utc>) -> StoreResult<ApiKey>;
    /// Records use of a key, at most once per `debounce`: returns whether a write happened.
    async fn touch_api_key(&self, id: ApiKeyId, at: DateTime<Utc>, debounce: chrono::Duration) -> StoreResult<bool>;
}
