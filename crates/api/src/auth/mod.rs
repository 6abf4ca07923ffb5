//! Who is calling: end users (JWTs), API keys (tenant-level, scoped) and operators (admin
//! tokens). Tenancy is decided here: claim mode (`org:<claim>`) or per-user (`user:<iss>|<sub>`),
//! prefixes that can never collide.

pub mod api_key;
mod error;
mod jwt;
mod principal;

pub use error::AuthError;
pub use jwt::{Claims, JwtError, JwtVerifier, JWKS_MAX_BYTES};
pub use principal::{short, Need, Operator, Principal, PrincipalKind, UserIdentity};

use crate::config::AuthSettings;
use axum::http::{header, HeaderMap};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use patchbay_store::{ApiKeyId, Store, TenantId, TenantScope, UserId};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const IDENTITY_CACHE_MAX: usize = 50_000;

/// (tenant key, issuer, subject): who a verified token names.
type IdentityKey = (String, String, String);

/// Authentication service shared by every request.
pub struct Auth {
    store: Arc<dyn Store>,
    jwt: JwtVerifier,
    tenant_claim: Option<String>,
    role_claim: String,
    admin_role: String,
    /// (tenant key, issuer, subject) → ids, so a known user costs no database round trip.
    identities: Mutex<HashMap<IdentityKey, (TenantId, UserId)>>,
    /// When each API key's use was last written, to write `last_used_at` at most once a period.
    touched: Mutex<HashMap<ApiKeyId, Instant>>,
    touch_interval: Duration,
    limiter: DefaultKeyedRateLimiter<String>,
    /// SHA-256 of each operator token with a short fingerprint for the audit log.
    operators: Vec<([u8; 32], String)>,
}

impl Auth {
    pub fn new(
        store: Arc<dyn Store>,
        settings: &AuthSettings,
        principal_limit: crate::config::RateLimit,
        client: reqwest::Client,
    ) -> Self {
        let operators = settings
            .admin_tokens
            .iter()
            .map(|t| {
                let digest: [u8; 32] = Sha256::digest(t.expose_secret().as_bytes()).into();
                (digest, hex::encode(&digest[..4]))
            })
            .collect();
        Self {
            store,
            jwt: JwtVerifier::new(settings, client),
            tenant_claim: settings.tenant_claim.clone(),
            role_claim: settings.role_claim.clone(),
            admin_role: settings.admin_role.clone(),
            identities: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
            touch_interval: settings.api_key_touch_interval,
            limiter: RateLimiter::keyed(quota(principal_limit)),
            operators,
        }
    }

    /// Authenticates a `/v1` call and applies the per-principal rate limit.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let credential = bearer(headers).ok_or(AuthError::Unauthenticated)?;
        let principal = if api_key::looks_like_key(&credential) {
            self.api_key_principal(&credential).await?
        } else {
            self.user_principal(&credential).await?
        };
        self.limit(&principal)?;
        Ok(principal)
    }

    /// Authenticates an operator (`/admin/v1`) by one of `PATCHBAY_ADMIN_TOKENS`.
    pub fn authenticate_operator(&self, headers: &HeaderMap) -> Result<Operator, AuthError> {
        if self.operators.is_empty() {
            return Err(AuthError::AdminApiOff);
        }
        let credential = bearer(headers).ok_or(AuthError::Unauthenticated)?;
        let digest: [u8; 32] = Sha256::digest(credential.expose_secret().as_bytes()).into();
        self.operators
            .iter()
            .find(|(d, _)| *d == digest)
            .map(|(_, fingerprint)| Operator { fingerprint: fingerprint.clone() })
            .ok_or(AuthError::Unauthenticated)
    }

    async fn api_key_principal(&self, credential: &SecretString) -> Result<Principal, AuthError> {
        let digest = api_key::hash(credential.expose_secret());
        let key = self.store.find_api_key_by_hash(&digest).await?.ok_or_else(|| {
            tracing::info!("unknown API key presented");
            AuthError::Unauthenticated
        })?;
        let now = chrono::Utc::now();
        if !key.is_usable(now) {
            tracing::info!(api_key_id = %key.id, "revoked or expired API key presented");
            return Err(AuthError::KeyUnusable);
        }
        self.touch(key.id, now);
        Ok(Principal {
            tenant_id: key.tenant_id,
            kind: PrincipalKind::ApiKey { key_id: key.id, name: key.name, scopes: key.scopes },
        })
    }

    /// Writes `last_used_at` in the background, at most once per interval per key.
    fn touch(&self, id: ApiKeyId, now: chrono::DateTime<chrono::Utc>) {
        {
            let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
            if touched.get(&id).is_some_and(|t| t.elapsed() < self.touch_interval) {
                return;
            }
            if touched.len() > IDENTITY_CACHE_MAX {
                touched.clear();
            }
            touched.insert(id, Instant::now());
        }
        let store = self.store.clone();
        let debounce = chrono::Duration::from_std(self.touch_interval).unwrap_or(chrono::Duration::seconds(60));
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_key(id, now, debounce).await {
                tracing::warn!(api_key_id = %id, error = %e, "could not record API key use");
            }
        });
    }

    async fn user_principal(&self, credential: &SecretString) -> Result<Principal, AuthError> {
        let claims = self.jwt.verify(credential.expose_secret()).await.map_err(|e| match e {
            JwtError::JwksUnavailable(cause) => AuthError::IdentityProviderUnavailable(cause),
            other => {
                tracing::info!(reason = %other, "user token refused");
                AuthError::Unauthenticated
            }
        })?;
        let issuer = claims.get("iss").and_then(Value::as_str).unwrap_or("").to_string();
        let subject = claims.get("sub").and_then(Value::as_str).unwrap_or("").to_string();
        let tenant_key = match &self.tenant_claim {
            Some(claim) => match claims.get(claim).and_then(claim_text) {
                Some(value) => format!("org:{value}"),
                None => return Err(AuthError::NoTenantClaim(claim.clone())),
            },
            None => format!("user:{issuer}|{subject}"),
        };
        let admin = match claims.get(&self.role_claim) {
            Some(Value::String(role)) => *role == self.admin_role,
            Some(Value::Array(roles)) => roles.iter().any(|r| r.as_str() == Some(&self.admin_role)),
            _ => false,
        };
        let (tenant_id, user_id) = self.resolve_identity(&tenant_key, &issuer, &subject).await?;
        let identity = UserIdentity { subject, issuer, tenant_key };
        Ok(Principal { tenant_id, kind: PrincipalKind::User { user_id, admin, identity } })
    }

    async fn resolve_identity(
        &self,
        tenant_key: &str,
        issuer: &str,
        subject: &str,
    ) -> Result<(TenantId, UserId), AuthError> {
        let cache_key = (tenant_key.to_string(), issuer.to_string(), subject.to_string());
        if let Some(ids) = self.identities.lock().unwrap_or_else(|p| p.into_inner()).get(&cache_key) {
            return Ok(*ids);
        }
        let tenant = self.store.upsert_tenant(&cache_key.0).await?;
        let user = self.store.upsert_user(TenantScope::new(tenant.id), issuer, subject).await?;
        let ids = (tenant.id, user.id);
        let mut cache = self.identities.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= IDENTITY_CACHE_MAX {
            cache.clear();
        }
        cache.insert(cache_key, ids);
        Ok(ids)
    }

    fn limit(&self, principal: &Principal) -> Result<(), AuthError> {
        let key = match &principal.kind {
            PrincipalKind::ApiKey { key_id, .. } => format!("key:{key_id}"),
            PrincipalKind::User { .. } => format!("tenant:{}", principal.tenant_id),
        };
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            AuthError::RateLimited { retry_after_seconds: wait.as_secs().max(1) }
        })
    }

    /// Forgets rate-limiter state of idle keys (called periodically).
    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
    }
}

/// A tenant claim may be a string or a number; anything else is no tenant.
fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() && s.len() <= 256 => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn bearer(headers: &HeaderMap) -> Option<SecretString> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| SecretString::from(token.to_string()))
}

/// A governor quota from a rate and burst (one cell replenished every 1/rate seconds).
pub fn quota(limit: crate::config::RateLimit) -> Quota {
    let period = Duration::from_secs_f64(1.0 / limit.per_second).max(Duration::from_nanos(1));
    Quota::with_period(period)
        .expect("period is positive")
        .allow_burst(NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN))
}
