//! Webhooks in: tenant-managed third-party sources (scheme, settings, sealed secrets with
//! rotation overlap) and the inbox every verified delivery is committed to before its 2xx.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

crate::text_enum! {
    /// How a third-party source signs its deliveries (architecture §4.4), fixed at creation.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum WebhookScheme as "webhook scheme" {
        /// `webhook-id`, `webhook-timestamp`, `webhook-signature`; `whsec_` secrets.
        StandardWebhooks = "standard_webhooks",
        /// `X-Hub-Signature-256: sha256=<hex>`; dedup on `X-GitHub-Delivery`.
        Github = "github",
        /// HMAC-SHA256 in a configurable header (hex or base64, optional prefix and timestamp).
        GenericHmac = "generic_hmac",
    }
}

crate::text_enum! {
    /// Where an inbox event came from.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum WebhookSourceKind as "webhook source kind" {
        /// A tenant's third-party source (`/webhooks/sources/{id}`).
        Source = "source",
        /// A Monday board webhook.
        Monday = "monday",
        /// A Google Calendar push channel.
        Google = "google",
    }
}

crate::text_enum! {
    /// Where an inbox event is in its processing.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum WebhookEventStatus as "webhook event status" {
        /// Stored, not yet applied.
        Pending = "pending",
        /// Applied.
        Processed = "processed",
        /// Given up on; `error` says why.
        Failed = "failed",
    }
}

/// A signing secret of a source, as stored: sealed by the vault, never plaintext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedWebhookSecret {
    pub id: uuid::Uuid,
    /// The vault key the ciphertext is sealed under (for rotation reporting).
    pub key_id: u32,
    pub ciphertext: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// After this the secret no longer verifies; `None` until a rotation replaces it.
    pub valid_until: Option<DateTime<Utc>>,
}

impl SealedWebhookSecret {
    /// Whether the secret still verifies at `now`.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.valid_until.is_none_or(|until| now < until)
    }
}

/// A third-party webhook source with all its stored secrets (newest first).
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookSource {
    pub id: WebhookSourceId,
    pub tenant_id: TenantId,
    pub name: String,
    pub scheme: WebhookScheme,
    /// Scheme settings (the generic scheme's header names and encoding); `{}` for the others.
    pub settings: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub secrets: Vec<SealedWebhookSecret>,
}

/// Input for [`WebhookStore::create_webhook_source`]: ids are chosen by the caller so the
/// secret can be sealed bound to them before the row exists.
#[derive(Clone, Debug)]
pub struct NewWebhookSource {
    pub id: WebhookSourceId,
    pub tenant_id: TenantId,
    pub name: String,
    pub scheme: WebhookScheme,
    pub settings: serde_json::Value,
    pub secret: SealedWebhookSecret,
}

/// A delivery to commit to the inbox.
#[derive(Clone, Debug)]
pub struct NewWebhookEvent {
    pub id: WebhookEventId,
    pub source_kind: WebhookSourceKind,
    pub source_id: String,
    pub tenant_id: Option<TenantId>,
    /// Unique per (source kind, source id): the sender's delivery id, or a body hash.
    pub dedup_key: String,
    pub received_at: DateTime<Utc>,
    /// The few headers the processor needs, as a JSON object of strings (never a signature).
    pub headers: serde_json::Value,
    pub key_id: u32,
    /// The raw body sealed by the vault.
    pub body: Vec<u8>,
}

/// What committing one delivery did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookInsert {
    /// A new inbox row.
    Stored(WebhookEventId),
    /// The source already has an event with this dedup key: nothing was written.
    Duplicate,
}

/// An inbox event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WebhookEvent {
    pub id: WebhookEventId,
    pub source_kind: WebhookSourceKind,
    pub source_id: String,
    pub tenant_id: Option<TenantId>,
    pub dedup_key: String,
    pub received_at: DateTime<Utc>,
    pub headers: serde_json::Value,
    pub key_id: u32,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub status: WebhookEventStatus,
    pub attempts: i32,
    pub error: Option<String>,
}

impl Serialize for WebhookSourceKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Serialize for WebhookEventStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Webhook ciphertexts (source secrets and inbox bodies) under one vault key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookKeyUsage {
    pub key_id: u32,
    pub ciphertexts: i64,
}

/// Filters of [`WebhookStore::list_webhook_events`].
#[derive(Clone, Debug, Default)]
pub struct WebhookEventFilter {
    pub source_id: Option<String>,
    pub status: Option<WebhookEventStatus>,
}

/// Third-party sources and the webhook inbox.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Creates a source with its first secret.
    async fn create_webhook_source(&self, source: NewWebhookSource) -> StoreResult<WebhookSource>;
    /// A source by id, whatever its tenant: ingestion knows only the URL's id (the tenant
    /// comes from the source row, never from the request).
    async fn find_webhook_source(&self, id: WebhookSourceId) -> StoreResult<WebhookSource>;
    /// A source of the tenant (another tenant's id is `NotFound`).
    async fn get_webhook_source(&self, scope: TenantScope, id: WebhookSourceId) -> StoreResult<WebhookSource>;
    /// The tenant's sources in creation order.
    async fn list_webhook_sources(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<WebhookSource>>;
    /// In one transaction: secrets already expired at `now` are deleted, every other secret
    /// ends at `old_valid_until` at the latest, and `secret` is added.
    async fn rotate_webhook_secret(
        &self,
        scope: TenantScope,
        id: WebhookSourceId,
        secret: SealedWebhookSecret,
        old_valid_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<WebhookSource>;
    /// Commits a batch of deliveries in one transaction (group commit) and says, per delivery
    /// in input order, whether it was stored or a duplicate. Either all are committed or the
    /// call fails and none is.
    async fn insert_webhook_events(&self, events: Vec<NewWebhookEvent>) -> StoreResult<Vec<WebhookInsert>>;
    /// An inbox event of the tenant.
    async fn get_webhook_event(&self, scope: TenantScope, id: WebhookEventId) -> StoreResult<WebhookEvent>;
    /// Sealed webhook secrets and inbox bodies per vault key id, so a key that still seals
    /// one is never retired.
    async fn webhook_key_usage(&self) -> StoreResult<Vec<WebhookKeyUsage>>;
    /// The tenant's inbox events in arrival (id) order.
    async fn list_webhook_events(
        &self,
        scope: TenantScope,
        filter: &WebhookEventFilter,
        page: Page,
    ) -> StoreResult<Paged<WebhookEvent>>;
}
