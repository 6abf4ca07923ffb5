//! Conditional requests and the page cache of the record read API.
//!
//! Every record page is validated by one indexed query
//! ([`patchbay_store::RecordStore::readable_connection`]): the caller's connection (404 as
//! before) with its record high-water mark, the last `change_seq` any write of its records took.
//! A page's strong `ETag` is a hash of (format version, the vault's key ids, tenant, connection,
//! the normalised query, that mark, the connection's status). `If-None-Match` with it answers
//! 304 without touching a record; otherwise the encoded body is served from an in-process cache
//! entry carrying the same ETag, or built, answered and kept.
//!
//! Why the mark is enough: sync upserts, tombstones and sweeps and write-back all take new
//! seqs and store the mark in the same transaction as the records; a disconnect hides the
//! connection (404) before its purge deletes anything; a rewrap changes a record's ciphertext but
//! not what it opens to, and a changed key ring (a restart) changes every ETag. Several instances
//! on one database stay correct because each checks the database's mark on every request. The
//! mark is read before the page, so a page can only be newer than its ETag says, never older.
//!
//! The cache holds plaintext provider data, as serving it does briefly: it is bounded in bytes
//! (`PATCHBAY_READ_CACHE_BYTES`, 0 disables it), keyed by tenant and connection (an entry is
//! only reached after the connection check, and the tenant is part of the key), dropped whole
//! after [`IDLE`] without a hit, and each body is zeroed when its last holder drops it (the
//! cache's entry and any response still being written).

use crate::auth::Principal;
use crate::http::problem::ApiError;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use patchbay_store::{Connection, ConnectionId, ProviderId, ReadableConnection, TenantId};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How long the cache is kept without a hit before it is dropped whole.
pub const IDLE: Duration = Duration::from_secs(30);
/// Bookkeeping bytes counted per entry besides its body and key.
const ENTRY_OVERHEAD: usize = 160;

/// What a page is cached under: tenant, connection and the normalised request.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct PageKey {
    tenant: TenantId,
    connection: ConnectionId,
    query: String,
}

impl PageKey {
    /// `query` must name the route and every parameter that changes the answer.
    pub fn new(tenant: TenantId, connection: ConnectionId, query: String) -> Self {
        Self { tenant, connection, query }
    }

    /// The strong ETag of this page while the connection is `readable`.
    pub fn etag(&self, readable: &ReadableConnection, ring: &str) -> HeaderValue {
        let mut hash = Sha256::new();
        for part in [env!("CARGO_PKG_VERSION"), ring, readable.connection.status.as_str()] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hash.update(self.tenant.0.as_bytes());
        hash.update(self.connection.0.as_bytes());
        hash.update(readable.record_seq.to_be_bytes());
        hash.update((self.query.len() as u64).to_be_bytes());
        hash.update(self.query.as_bytes());
        let digest = hash.finalize();
        HeaderValue::try_from(format!("\"{}\"", hex::encode(&digest[..16]))).expect("hex is a valid header value")
    }
}

struct Entry {
    etag: HeaderValue,
    body: Bytes,
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<PageKey, Entry>,
    bytes: usize,
    tick: u64,
    last_hit: Option<Instant>,
}

/// Encoded record pages, bounded in bytes, least recently used out first.
pub struct ReadCache {
    budget: usize,
    /// How long it is kept without a hit ([`IDLE`] outside tests).
    idle: Duration,
    /// The vault's key ids, part of every ETag.
    ring: String,
    inner: Mutex<Inner>,
    sweeping: AtomicBool,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache").field("budget", &self.budget).field("bytes", &self.bytes()).finish()
    }
}

impl ReadCache {
    /// A cache of at most `budget` bytes (0: nothing is kept; ETags still work) for a vault
    /// with these key ids.
    pub fn new(budget: usize, key_ids: &[u32]) -> Self {
        let ring = key_ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        Self { budget, idle: IDLE, ring, inner: Mutex::new(Inner::default()), sweeping: AtomicBool::new(false) }
    }

    /// The same, dropped after `idle` without a hit.
    pub fn with_idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bytes held now (bodies, keys and bookkeeping).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached body of `key` if it was built under `etag`.
    fn get(&self, key: &PageKey, etag: &HeaderValue) -> Option<Bytes> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.entries.get_mut(key).filter(|e| e.etag == *etag)?;
        entry.used = tick;
        let body = entry.body.clone();
        inner.last_hit = Some(Instant::now());
        Some(body)
    }

    /// Keeps `body` for `key` (replacing an older version), evicting the least recently used
    /// entries over the budget. A body over an eighth of the budget is not kept.
    fn put(self: &Arc<Self>, key: PageKey, etag: HeaderValue, body: Bytes) {
        let size = body.len() + key.query.len() + ENTRY_OVERHEAD;
        if size > self.budget / 8 {
            return;
        }
        let query_len = key.query.len();
        let mut inner = self.lock();
        inner.tick += 1;
        let used = inner.tick;
        if let Some(old) = inner.entries.insert(key, Entry { etag, body, used }) {
            inner.bytes -= old.body.len() + query_len + ENTRY_OVERHEAD;
        }
        inner.bytes += size;
        while inner.bytes > self.budget {
            let Some(oldest) = inner.entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| k.clone()) else { break };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.bytes -= gone.body.len() + oldest.query.len() + ENTRY_OVERHEAD;
            }
        }
        inner.last_hit.get_or_insert_with(Instant::now);
        drop(inner);
        self.sweep_when_idle();
    }

    /// Drops everything (and the map's own allocation).
    pub fn clear(&self) {
        let mut inner = self.lock();
        *inner = Inner::default();
    }

    /// Starts the idle sweeper unless one runs: it drops the cache once nothing was served from
    /// it for [`IDLE`], then ends (the next insert starts it again).
    fn sweep_when_idle(self: &Arc<Self>) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.sweeping.store(false, Ordering::Release);
            return;
        };
        let cache = Arc::downgrade(self);
        let idle = self.idle;
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(idle / 2).await;
                let Some(cache) = cache.upgrade() else { return };
                let mut inner = cache.lock();
                if inner.last_hit.is_none_or(|at| at.elapsed() >= idle) {
                    *inner = Inner::default();
                    cache.sweeping.store(false, Ordering::Release);
                    return;
                }
            }
        });
    }
}

/// A response body that is zeroed when its last holder drops it.
fn zeroing_body(body: Vec<u8>) -> Bytes {
    Bytes::from_owner(Zeroizing::new(body))
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for this header).
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let wanted = etag.as_bytes();
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|value| {
        value
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == wanted)
    })
}

fn answer(status: StatusCode, etag: HeaderValue, body: Option<Bytes>) -> Response {
    let mut response = match body {
        Some(body) => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], Body::from(body)).into_response()
        }
        None => Body::empty().into_response(),
    };
    *response.status_mut() = status;
    response.headers_mut().insert(header::ETAG, etag);
    response
}

/// The caller's connection of `provider` with its validator: 404 for another tenant's, another
/// user's (for end users) or the other provider's.
pub async fn readable_of(
    state: &AppState,
    principal: &Principal,
    id: ConnectionId,
    provider: ProviderId,
) -> Result<ReadableConnection, ApiError> {
    let readable = state.store.readable_connection(principal.scope(), id).await?;
    let connection = &readable.connection;
    if principal.own_user().is_some_and(|me| me != connection.user_id) || connection.provider != provider {
        return Err(ApiError::not_found());
    }
    Ok(readable)
}

/// Answers one record page: checks the caller's connection, then 304 for a matching
/// `If-None-Match`, else the cached body, else `build`'s (kept for the next request). `query`
/// names the route and every parameter that changes the answer.
pub async fn page<F, Fut>(
    state: &AppState,
    principal: &Principal,
    (id, provider): (ConnectionId, ProviderId),
    query: String,
    headers: &HeaderMap,
    build: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(Connection) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, ApiError>>,
{
    let readable = readable_of(state, principal, id, provider).await?;
    let cache = &state.read_cache;
    let key = PageKey::new(principal.tenant_id, id, query);
    let etag = key.etag(&readable, &cache.ring);
    if not_modified(headers, &etag) {
        metrics::counter!("patchbay_read_pages_total", "answer" => "not_modified").increment(1);
        return Ok(answer(StatusCode::NOT_MODIFIED, etag, None));
    }
    if let Some(body) = cache.get(&key, &etag) {
        metrics::counter!("patchbay_read_pages_total", "answer" => "cached").increment(1);
        return Ok(answer(StatusCode::OK, etag, Some(body)));
    }
    let body = zeroing_body(build(readable.connection).await?);
    metrics::counter!("patchbay_read_pages_total", "answer" => "built").increment(1);
    if cache.budget > 0 {
        cache.put(key, etag.clone(), body.clone());
    }
    Ok(answer(StatusCode::OK, etag, Some(body)))
}

/// Encodes a page as JSON into one buffer sized for `rows` records.
pub fn encode<T: serde::Serialize>(value: &T, rows: usize) -> Result<Vec<u8>, ApiError> {
    let mut buffer = Vec::with_capacity(64 + rows * 640);
    serde_json::to_writer(&mut buffer, value).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(query: &str) -> PageKey {
        PageKey::new(TenantId(uuid::Uuid::nil()), ConnectionId(uuid::Uuid::nil()), query.into())
    }

    fn tag(n: u8) -> HeaderValue {
        HeaderValue::try_from(format!("\"{n}\"")).unwrap()
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_budget_dropping_the_least_recently_used() {
        let cache = Arc::new(ReadCache::new(8 * 1024, &[1]));
        let body = || Bytes::from(vec![7u8; 600]);
        cache.put(key("a"), tag(1), body());
        cache.put(key("b"), tag(1), body());
        assert!(cache.get(&key("a"), &tag(1)).is_some(), "a is used again");
        for n in 0..20 {
            cache.put(key(&format!("x{n}")), tag(1), body());
            assert!(cache.bytes() <= 8 * 1024, "{} bytes", cache.bytes());
        }
        assert!(cache.get(&key("b"), &tag(1)).is_none(), "the least recently used went first");
        assert!(cache.get(&key("x19"), &tag(1)).is_some(), "the newest stays");
        assert!(cache.get(&key("x19"), &tag(2)).is_none(), "under another ETag it is not served");
        cache.put(key("x19"), tag(2), Bytes::from(vec![1u8; 100]));
        assert_eq!(cache.get(&key("x19"), &tag(2)).unwrap().len(), 100, "replaced in place");
        assert!(cache.bytes() <= 8 * 1024);
        cache.put(key("big"), tag(1), Bytes::from(vec![0u8; 2 * 1024]));
        assert!(cache.get(&key("big"), &tag(1)).is_none(), "over an eighth of the budget is not kept");
        cache.clear();
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
    }

    #[tokio::test]
    async fn an_idle_cache_is_dropped_whole() {
        let idle = Duration::from_millis(200);
        let cache = Arc::new(ReadCache::new(64 * 1024, &[1]).with_idle(idle));
        cache.put(key("a"), tag(1), Bytes::from(vec![7u8; 600]));
        tokio::time::sleep(idle / 4).await;
        assert!(cache.get(&key("a"), &tag(1)).is_some());
        tokio::time::sleep(idle * 4).await;
        assert!(cache.is_empty(), "dropped after {idle:?} without a hit");
        assert_eq!(cache.bytes(), 0);
        cache.put(key("b"), tag(1), Bytes::from(vec![7u8; 600]));
        assert_eq!(cache.len(), 1);
        tokio::time::sleep(idle * 4).await;
        assert!(cache.is_empty(), "the sweeper starts again with the next entry");
    }

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_a_star() {
        let etag = HeaderValue::from_static("\"abc\"");
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static(value));
            not_modified(&headers, &etag)
        };
        assert!(with("\"abc\""));
        assert!(with("\"x\", W/\"abc\""));
        assert!(with("*"));
        assert!(!with("\"abd\""));
        assert!(!with("abc"));
        assert!(!not_modified(&HeaderMap::new(), &etag));
    }
}
