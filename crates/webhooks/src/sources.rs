//! Third-party sources: created with a scheme and a generated secret (shown once), rotated
//! with an overlap during which old and new secrets both verify, and opened into HMAC keys.

use crate::scheme::{GenericSettings, Scheme};
use crate::secret::{self, secret_aad, SigningKey};
use chrono::{DateTime, Utc};
use patchbay_store::{
    Page, Paged, SealedWebhookSecret, StoreError, TenantScope, WebhookScheme, WebhookSource, WebhookSourceId,
    WebhookStore,
};
use patchbay_token_vault::Vault;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The longest rotation overlap a caller may ask for.
pub const MAX_OVERLAP: chrono::Duration = chrono::Duration::days(30);

/// Why a source operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The request is not valid (the message names the field, never a secret).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A source just created or rotated, with the secret it will be signed with — shown once.
#[derive(Debug)]
pub struct WithSecret {
    pub source: WebhookSource,
    pub secret: SecretString,
}

/// How long an opened source (its scheme and HMAC keys) is reused by default before the row is
/// read and its secrets unsealed again. A rotation on this instance takes effect at once; on
/// other instances within this time.
pub const DEFAULT_KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// The most sources kept opened at once; past it the cache starts over (a bound on memory, not
/// a correctness matter).
const KEY_CACHE_CAPACITY: usize = 10_000;

/// A source opened for verification: what the ingest path needs, with its secrets as keys.
#[derive(Debug)]
pub struct OpenedSource {
    pub id: WebhookSourceId,
    pub tenant_id: patchbay_store::TenantId,
    pub scheme: Scheme,
    /// The keys of every secret valid when it was opened.
    pub keys: Vec<SigningKey>,
}

struct CachedSource {
    opened: Arc<OpenedSource>,
    /// Reused until this instant (the TTL) ...
    fresh_until: Instant,
    /// ... and while the clock is before the earliest end of an overlap among its secrets, so
    /// a secret never verifies past its `valid_until`.
    keys_until: Option<DateTime<Utc>>,
}

/// Opened sources by id, with a generation that every invalidation bumps: a source read before
/// an invalidation is not cached after it.
#[derive(Default)]
struct KeyCache {
    entries: RwLock<HashMap<WebhookSourceId, CachedSource>>,
    generation: AtomicU64,
}

/// Creates, lists and rotates sources; opens their secrets for verification.
#[derive(Clone)]
pub struct Sources {
    store: Arc<dyn WebhookStore>,
    vault: Vault,
    cache: Arc<KeyCache>,
    ttl: Duration,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

impl Sources {
    pub fn new(store: Arc<dyn WebhookStore>, vault: Vault) -> Self {
        Self::with_key_cache(store, vault, DEFAULT_KEY_CACHE_TTL)
    }

    /// Like `new`, reusing opened sources for `ttl` (zero: read and unseal on every request).
    pub fn with_key_cache(store: Arc<dyn WebhookStore>, vault: Vault, ttl: Duration) -> Self {
        Self { store, vault, cache: Arc::new(KeyCache::default()), ttl }
    }

    /// The source `id` opened for verification at `now`: from the cache while it is fresh,
    /// else read from the store and its valid secrets unsealed (then cached).
    pub async fn open(&self, id: WebhookSourceId, now: DateTime<Utc>) -> Result<Arc<OpenedSource>, StoreError> {
        if !self.ttl.is_zero() {
            let entries = self.cache.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(entry) = entries.get(&id) {
                if Instant::now() < entry.fresh_until && entry.keys_until.is_none_or(|until| now < until) {
                    return Ok(entry.opened.clone());
                }
            }
        }
        let generation = self.cache.generation.load(Ordering::Acquire);
        let source = self.store.find_webhook_source(id).await?;
        let scheme = scheme_of(&source).map_err(StoreError::Unavailable)?;
        let keys = self.keys(&source, now);
        let keys_until = source.secrets.iter().filter(|s| s.is_valid_at(now)).filter_map(|s| s.valid_until).min();
        let opened = Arc::new(OpenedSource { id: source.id, tenant_id: source.tenant_id, scheme, keys });
        if !self.ttl.is_zero() {
            let mut entries = self.cache.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Not if a rotation happened while this one was read: it may be the old row.
            if self.cache.generation.load(Ordering::Acquire) == generation {
                if entries.len() >= KEY_CACHE_CAPACITY && !entries.contains_key(&id) {
                    entries.clear();
                }
                let fresh_until = Instant::now() + self.ttl;
                entries.insert(id, CachedSource { opened: opened.clone(), fresh_until, keys_until });
            }
        }
        Ok(opened)
    }

    /// Whether opened sources are kept for a while (a TTL above zero).
    pub fn caching(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// Drops a source's cached keys (after a rotation, or when they failed to verify).
    pub fn forget(&self, id: WebhookSourceId) {
        let mut entries = self.cache.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.cache.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(&id);
    }

    /// Creates a source of `scheme`; `settings` is required for (and only for) generic HMAC.
    pub async fn create(
        &self,
        scope: TenantScope,
        name: &str,
        scheme: WebhookScheme,
        settings: Option<serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<WithSecret, SourceError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(SourceError::Invalid("`name` must be 1 to 200 characters".into()));
        }
        let settings = checked_settings(scheme, settings)?;
        let id = WebhookSourceId::new();
        let secret = secret::generate(scheme);
        let sealed = self.seal(scope, id, &secret, now);
        let source = patchbay_store::NewWebhookSource {
            id,
            tenant_id: scope.tenant_id(),
            name: name.to_owned(),
            scheme,
            settings,
            secret: sealed,
        };
        let source = self.store.create_webhook_source(source).await?;
        Ok(WithSecret { source, secret })
    }

    /// Adds a new secret; every older one keeps verifying until `now + overlap`.
    pub async fn rotate(
        &self,
        scope: TenantScope,
        id: WebhookSourceId,
        overlap: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<WithSecret, SourceError> {
        if overlap < chrono::Duration::zero() || overlap > MAX_OVERLAP {
            return Err(SourceError::Invalid("`overlap_seconds` must be between 0 and 2592000 (30 days)".into()));
        }
        let existing = self.store.get_webhook_source(scope, id).await?;
        let secret = secret::generate(existing.scheme);
        let sealed = self.seal(scope, id, &secret, now);
        let rotated = self.store.rotate_webhook_secret(scope, id, sealed, now + overlap, now).await;
        // Also after a failure: the row may have changed even if the answer was lost.
        self.forget(id);
        Ok(WithSecret { source: rotated?, secret })
    }

    pub async fn get(&self, scope: TenantScope, id: WebhookSourceId) -> Result<WebhookSource, SourceError> {
        Ok(self.store.get_webhook_source(scope, id).await?)
    }

    pub async fn list(&self, scope: TenantScope, page: Page) -> Result<Paged<WebhookSource>, SourceError> {
        Ok(self.store.list_webhook_sources(scope, page).await?)
    }

    /// The HMAC keys of every secret valid at `now`. A secret that does not open (a retired
    /// vault key, a corrupt row) is skipped and logged, never fatal: the others still verify.
    pub fn keys(&self, source: &WebhookSource, now: DateTime<Utc>) -> Vec<SigningKey> {
        source
            .secrets
            .iter()
            .filter(|s| s.is_valid_at(now))
            .filter_map(|s| {
                let aad = secret_aad(source.tenant_id, source.id, s.id);
                let opened = self.vault.decrypt_string(&s.ciphertext, &aad).map_err(|e| e.to_string());
                let key = opened.and_then(|text| SigningKey::from_secret(source.scheme, &text).map_err(|e| e.to_string()));
                key.inspect_err(|e| tracing::warn!(source = %source.id, secret = %s.id, error = %e, "a webhook secret does not open"))
                    .ok()
            })
            .collect()
    }

    fn seal(
        &self,
        scope: TenantScope,
        id: WebhookSourceId,
        secret: &SecretString,
        now: DateTime<Utc>,
    ) -> SealedWebhookSecret {
        let secret_id = uuid::Uuid::now_v7();
        let aad = secret_aad(scope.tenant_id(), id, secret_id);
        let ciphertext = self.vault.encrypt(secret.expose_secret().as_bytes(), &aad);
        SealedWebhookSecret {
            id: secret_id,
            key_id: self.vault.ring().primary_id(),
            ciphertext,
            created_at: now,
            valid_until: None,
        }
    }
}

/// The scheme of a stored source, with its settings parsed.
pub fn scheme_of(source: &WebhookSource) -> Result<Scheme, String> {
    Ok(match source.scheme {
        WebhookScheme::StandardWebhooks => Scheme::StandardWebhooks,
        WebhookScheme::Github => Scheme::Github,
        WebhookScheme::GenericHmac => Scheme::Generic(
            serde_json::from_value(source.settings.clone()).map_err(|e| format!("generic settings: {e}"))?,
        ),
    })
}

fn checked_settings(
    scheme: WebhookScheme,
    settings: Option<serde_json::Value>,
) -> Result<serde_json::Value, SourceError> {
    match (scheme, settings) {
        (WebhookScheme::GenericHmac, Some(value)) => {
            let parsed: GenericSettings = serde_json::from_value(value)
                .map_err(|e| SourceError::Invalid(format!("`settings` for generic_hmac: {e}")))?;
            for name in [Some(&parsed.signature_header), parsed.timestamp_header.as_ref(), parsed.id_header.as_ref()]
                .into_iter()
                .flatten()
            {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(SourceError::Invalid(
                        "`settings`: a header name is not a valid HTTP header name".into(),
                    ));
                }
            }
            serde_json::to_value(parsed).map_err(|e| SourceError::Invalid(e.to_string()))
        }
        (WebhookScheme::GenericHmac, None) => {
            Err(SourceError::Invalid("`settings.signature_header` is required for generic_hmac".into()))
        }
        (_, Some(v)) if !v.is_null() && v != serde_json::json!({}) => {
            Err(SourceError::Invalid("`settings` is only for generic_hmac".into()))
        }
        (_, _) => Ok(serde_json::json!({})),
    }
}
