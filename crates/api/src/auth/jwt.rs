//! User JWT verification: HS256 with a shared secret, or RS256/ES256 with keys from a JWKS URL.
//! The algorithm picks the key type, so a public key can never be used as an HMAC secret, and
//! `alg: none` has no key at all.

use crate::config::AuthSettings;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};
use url::Url;

/// Why a token was refused. Only logged; callers see a generic 401.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token or header")]
    Malformed,
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    #[error("no verification key is configured for this algorithm")]
    NoKey,
    #[error("unknown key id")]
    UnknownKid,
    #[error("the JWKS could not be fetched: {0}")]
    JwksUnavailable(String),
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("wrong audience")]
    Audience,
}

/// The verified claims of a token.
pub type Claims = Map<String, Value>;

/// Verifies user JWTs as configured.
pub struct JwtVerifier {
    hs256: Option<DecodingKey>,
    jwks: Option<Jwks>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

impl JwtVerifier {
    pub fn new(settings: &AuthSettings, client: reqwest::Client) -> Self {
        Self {
            hs256: settings.jwt_secret.as_ref().map(|s| DecodingKey::from_secret(s.expose_secret().as_bytes())),
            jwks: settings
                .jwks_url
                .clone()
                .map(|url| Jwks::new(url, client, settings.jwks_min_refetch, settings.jwks_max_age)),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway: settings.leeway_seconds,
        }
    }

    /// Replaces the clock the JWKS cache ages by (tests move it past the maximum age).
    pub fn with_clock(mut self, clock: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        if let Some(jwks) = &mut self.jwks {
            jwks.clock = Arc::new(clock);
        }
        self
    }

    /// Checks signature, algorithm, `exp` (required), `nbf`, `sub` (required), `iss` and
    /// `aud`/`azp` as configured.
    pub async fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        let header = decode_header(token).map_err(|_| JwtError::Malformed)?;
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.clone().ok_or(JwtError::NoKey)?,
            Algorithm::RS256 | Algorithm::ES256 => {
                let jwks = self.jwks.as_ref().ok_or(JwtError::NoKey)?;
                jwks.key_for(header.kid.as_deref().ok_or(JwtError::UnknownKid)?, header.alg).await?
            }
            other => return Err(JwtError::Algorithm(other)),
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.validate_aud = false; // checked below, with the `azp` fallback
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        let data = decode::<Claims>(token, &key, &validation).map_err(|e| JwtError::Invalid(e.to_string()))?;
        let claims = data.claims;
        if let Some(audience) = &self.audience {
            if !audience_matches(&claims, audience) {
                return Err(JwtError::Audience);
            }
        }
        match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => Ok(claims),
            _ => Err(JwtError::Invalid("`sub` must be a non-empty string".into())),
        }
    }
}

/// `aud` (a string or a list) must contain the audience; a token with no `aud` may instead
/// name it in `azp` (some identity providers set no `aud` on access tokens).
fn audience_matches(claims: &Claims, audience: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(list)) => list.iter().any(|v| v.as_str() == Some(audience)),
        None => claims.get("azp").and_then(Value::as_str) == Some(audience),
        _ => false,
    }
}

/// A cached JWKS. Keys are refetched when a token names an unknown key id — at most once per
/// `min_refetch`, so a storm of made-up key ids cannot turn Patchbay into a load generator against
/// the identity provider — and when the cache is older than `max_age`, even while tokens keep
/// naming known key ids: a key the identity provider withdrew stops working once `max_age` has
/// passed. A failed or oversized fetch leaves the cached keys as they were; a cache past its
/// `max_age` is not used (the caller gets "keys unavailable, retry", never a withdrawn key).
struct Jwks {
    url: Url,
    client: reqwest::Client,
    min_refetch: Duration,
    max_age: Duration,
    clock: Clock,
    keys: RwLock<KeyCache>,
    refresh: Mutex<RefreshState>,
}

/// The time source of the cache (injectable so tests can move past `max_age` without waiting).
type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    fetched_at: Option<Instant>,
}

#[derive(Default)]
struct RefreshState {
    last_miss_fetch: Option<Instant>,
}

/// The largest JWKS document read; a bigger one is refused without being buffered whole.
pub const JWKS_MAX_BYTES: usize = 256 * 1024;

impl Jwks {
    fn new(url: Url, client: reqwest::Client, min_refetch: Duration, max_age: Duration) -> Self {
        Self {
            url,
            client,
            min_refetch,
            max_age,
            clock: Arc::new(Instant::now),
            keys: RwLock::new(KeyCache::default()),
            refresh: Mutex::new(RefreshState::default()),
        }
    }

    async fn key_for(&self, kid: &str, alg: Algorithm) -> Result<DecodingKey, JwtError> {
        if let Some(key) = self.lookup(kid, alg).await? {
            return Ok(key);
        }
        // One refresher at a time; the others wait here and then re-read what it fetched.
        let mut state = self.refresh.lock().await;
        if let Some(key) = self.lookup(kid, alg).await? {
            return Ok(key);
        }
        let now = (self.clock)();
        let stale = !self.is_fresh(self.keys.read().await.fetched_at, now);
        let may_refetch = state.last_miss_fetch.is_none_or(|t| now.saturating_duration_since(t) >= self.min_refetch);
        if stale || may_refetch {
            if !stale {
                state.last_miss_fetch = Some(now);
            }
            let keys = self.fetch().await?;
            *self.keys.write().await = KeyCache { keys, fetched_at: Some((self.clock)()) };
        }
        drop(state);
        self.lookup(kid, alg).await?.ok_or(JwtError::UnknownKid)
    }

    fn is_fresh(&self, fetched_at: Option<Instant>, now: Instant) -> bool {
        fetched_at.is_some_and(|t| now.saturating_duration_since(t) < self.max_age)
    }

    /// A cached key, unless the cache is past its maximum age.
    async fn lookup(&self, kid: &str, alg: Algorithm) -> Result<Option<DecodingKey>, JwtError> {
        let cache = self.keys.read().await;
        if !self.is_fresh(cache.fetched_at, (self.clock)()) {
            return Ok(None);
        }
        match cache.keys.get(kid) {
            Some((key_alg, key)) if *key_alg == alg => Ok(Some(key.clone())),
            Some(_) => Err(JwtError::Algorithm(alg)),
            None => Ok(None),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, (Algorithm, DecodingKey)>, JwtError> {
        metrics::counter!("patchbay_auth_jwks_fetches_total").increment(1);
        let unavailable = |e: reqwest::Error| JwtError::JwksUnavailable(e.without_url().to_string());
        let mut response = self.client.get(self.url.clone()).send().await.map_err(unavailable)?;
        if !response.status().is_success() {
            return Err(JwtError::JwksUnavailable(format!("status {}", response.status())));
        }
        let too_large = || JwtError::JwksUnavailable(format!("the JWKS is larger than {JWKS_MAX_BYTES} bytes"));
        if response.content_length().is_some_and(|n| n > JWKS_MAX_BYTES as u64) {
            return Err(too_large());
        }
        // Read chunk by chunk: a body without (or lying about) its length is cut off at the limit.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
            if body.len() + chunk.len() > JWKS_MAX_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| JwtError::JwksUnavailable(format!("the JWKS is not a key set: {e}")))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) else { continue };
            let alg = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(p)
                    if p.curve == jsonwebtoken::jwk::EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => continue,
            };
            keys.insert(kid, (alg, key));
        }
        tracing::info!(keys = keys.len(), "fetched the JWKS");
        Ok(keys)
    }
}
