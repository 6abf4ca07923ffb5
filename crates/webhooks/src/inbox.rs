//! The ingest path of `/webhooks/sources/{id}`, after the HTTP layer has enforced the size
//! limit and read the raw bytes: verification → timestamp window → dedup insert committed
//! (through the group-commit batcher). The caller answers 2xx only on `Ok`.

use crate::batcher::Batcher;
use crate::scheme::{self, Rejection};
use crate::sources::Sources;
use patchbay_store::{
    Clock, NewWebhookEvent, StoreError, TenantId, WebhookEventId, WebhookInsert, WebhookSourceId, WebhookSourceKind,
    WebhookStore,
};
use patchbay_token_vault::{Aad, Purpose, Vault};
use std::sync::Arc;

/// A committed delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingested {
    /// Newly stored.
    Stored(WebhookEventId),
    /// A redelivery of a stored event: acknowledged, nothing written.
    Duplicate,
}

/// Why a delivery was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Not verified (401, empty body): the reason is for the log only.
    #[error("rejected: {0}")]
    Rejected(Rejection),
    /// No such source (answered like a bad signature, so ids are not probed).
    #[error("unknown source")]
    UnknownSource,
    /// The store could not commit it (503; the sender retries).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// What a sealed inbox body is bound to: its tenant (if any) and its event id.
pub fn body_aad(tenant: Option<TenantId>, event: WebhookEventId) -> Aad {
    let tenant = tenant.map(|t| t.0.as_bytes().to_vec()).unwrap_or_default();
    Aad::new(Purpose::WebhookBody).with("tenant", tenant).with("event", event.0.as_bytes())
}

/// Verifies and commits deliveries to third-party sources.
#[derive(Clone)]
pub struct Inbox {
    sources: Sources,
    vault: Vault,
    batcher: Batcher,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").finish_non_exhaustive()
    }
}

impl Inbox {
    pub fn new(store: Arc<dyn WebhookStore>, vault: Vault, batcher: Batcher, clock: Arc<dyn Clock>) -> Self {
        let sources = Sources::new(store, vault.clone());
        Self::with_sources(sources, vault, batcher, clock)
    }

    /// An inbox over `sources` (which carries the store and the key cache's TTL).
    pub fn with_sources(sources: Sources, vault: Vault, batcher: Batcher, clock: Arc<dyn Clock>) -> Self {
        Self { sources, vault, batcher, clock }
    }

    /// The group-commit batcher (Google push notifications share it).
    pub fn batcher(&self) -> &Batcher {
        &self.batcher
    }

    /// The vault inbox bodies are sealed with.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The clock deliveries are stamped with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The source service over the same store and vault.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Verifies `body` against the source's scheme and secrets, then commits it once.
    #[tracing::instrument(skip_all, fields(source = %source_id))]
    pub async fn ingest(
        &self,
        source_id: WebhookSourceId,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Ingested, IngestError> {
        let now = self.clock.now();
        let source = match self.sources.open(source_id, now).await {
            Ok(source) => source,
            Err(StoreError::NotFound) => return Err(IngestError::UnknownSource),
            Err(e) => return Err(IngestError::Unavailable(e.to_string())),
        };
        let verified = match scheme::verify(&source.scheme, &source.keys, headers, body, now.timestamp()) {
            Ok(verified) => verified,
            // Cached keys may predate a rotation made by another instance (or the CLI): a
            // refusal re-reads the source once, so a new secret verifies at once everywhere.
            // A forged request costs the one read it cost before the cache existed.
            Err(_) if self.sources.caching() => {
                self.sources.forget(source_id);
                let fresh = match self.sources.open(source_id, now).await {
                    Ok(source) => source,
                    Err(StoreError::NotFound) => return Err(IngestError::UnknownSource),
                    Err(e) => return Err(IngestError::Unavailable(e.to_string())),
                };
                scheme::verify(&fresh.scheme, &fresh.keys, headers, body, now.timestamp())
                    .map_err(IngestError::Rejected)?
            }
            Err(rejection) => return Err(IngestError::Rejected(rejection)),
        };
        let id = WebhookEventId::new();
        let tenant = Some(source.tenant_id);
        let headers: serde_json::Map<String, serde_json::Value> =
            verified.headers.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
        let event = NewWebhookEvent {
            id,
            source_kind: WebhookSourceKind::Source,
            source_id: source.id.to_string(),
            tenant_id: tenant,
            dedup_key: verified.dedup_key,
            received_at: now,
            headers: serde_json::Value::Object(headers),
            key_id: self.vault.ring().primary_id(),
            body: self.vault.encrypt(body, &body_aad(tenant, id)),
        };
        match self.batcher.submit(event).await {
            Ok(WebhookInsert::Stored(id)) => Ok(Ingested::Stored(id)),
            Ok(WebhookInsert::Duplicate) => Ok(Ingested::Duplicate),
            Err(e) => Err(IngestError::Unavailable(e.0)),
        }
    }
}
