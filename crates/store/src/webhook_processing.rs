//! Applying inbox events: the `webhook.process` job each stored event gets in the same
//! transaction as its inbox row, the per-event state changes the processor makes, reprocessing,
//! and rewrapping sealed webhook material under a new vault key.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Job attempts of a `webhook.process` job. Far above any processor attempt limit: the
/// processor ends an event `failed` by itself, so the job only dies if the store keeps failing.
pub const WEBHOOK_PROCESS_JOB_ATTEMPTS: i32 = 50;

/// Payload of [`JobKind::WebhookProcess`]: one inbox event to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookProcessPayload {
    pub event_id: WebhookEventId,
}

impl JobPayload for WebhookProcessPayload {
    const KIND: JobKind = JobKind::WebhookProcess;

    fn job(&self, now: DateTime<Utc>) -> NewJob {
        let mut job = NewJob::new(Self::KIND.as_str(), serde_json::json!(self), now);
        // Change-driven work, like a sync run.
        job.priority = 0;
        job.max_attempts = WEBHOOK_PROCESS_JOB_ATTEMPTS;
        job.dedup_key = Some(format!("{}:{}", Self::KIND, self.event_id.0));
        // No two runs of one event at once (a reprocess while a retry runs, two instances).
        job.concurrency_key = Some(format!("webhook_event:{}", self.event_id.0));
        job
    }
}

/// How an attempt at an event ended, as stored on its row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookSettle {
    /// Applied: `processed`, error cleared.
    Processed,
    /// Given up: `failed` with the error kept.
    Failed(String),
    /// Stays `pending` with the error kept; a retry is queued.
    Retry(String),
}

/// One sealed webhook ciphertext (a source secret or an inbox body), for rewrapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookCiphertext {
    /// A source's signing secret.
    Secret { source_id: WebhookSourceId, tenant_id: TenantId, secret_id: uuid::Uuid, key_id: u32, ciphertext: Vec<u8> },
    /// An event endpoint's signing secret.
    EndpointSecret {
        endpoint_id: EventEndpointId,
        tenant_id: TenantId,
        secret_id: uuid::Uuid,
        key_id: u32,
        ciphertext: Vec<u8>,
    },
    /// An inbox body.
    Body { event_id: WebhookEventId, tenant_id: Option<TenantId>, key_id: u32, ciphertext: Vec<u8> },
}

impl WebhookCiphertext {
    /// The key the ciphertext is sealed under.
    pub fn key_id(&self) -> u32 {
        match self {
            Self::Secret { key_id, .. } | Self::EndpointSecret { key_id, .. } | Self::Body { key_id, .. } => *key_id,
        }
    }

    /// The sealed bytes.
    pub fn ciphertext(&self) -> &[u8] {
        match self {
            Self::Secret { ciphertext, .. }
            | Self::EndpointSecret { ciphertext, .. }
            | Self::Body { ciphertext, .. } => ciphertext,
        }
    }
}

/// What the inbox processor, reprocessing and key rotation need from the store.
#[async_trait]
pub trait WebhookProcessingStore: Send + Sync {
    /// An inbox event by id, whatever its tenant (the job carries only the id).
    async fn find_webhook_event(&self, id: WebhookEventId) -> StoreResult<WebhookEvent>;
    /// Starts an attempt: a `pending` event's `attempts` goes up by one and the event comes
    /// back; `None` when the event is not pending (already processed or failed), so a
    /// duplicate job applies nothing.
    async fn start_webhook_attempt(&self, id: WebhookEventId) -> StoreResult<Option<WebhookEvent>>;
    /// Records how an attempt ended, only while the event is still `pending`; says whether
    /// the row changed.
    async fn settle_webhook_event(&self, id: WebhookEventId, settle: &WebhookSettle) -> StoreResult<bool>;
    /// In one transaction: the tenant's event goes back to `pending` with no attempts and no
    /// error, and a `webhook.process` job is queued (merged into a queued one). Another
    /// tenant's id is `NotFound`.
    async fn reprocess_webhook_event(
        &self,
        scope: TenantScope,
        id: WebhookEventId,
        now: DateTime<Utc>,
    ) -> StoreResult<WebhookEvent>;
    /// Up to `limit` webhook ciphertexts (source secrets first, then event endpoint secrets,
    /// then inbox bodies) sealed under a key other than `primary`.
    async fn webhook_ciphertexts_not_under(&self, primary: u32, limit: u32) -> StoreResult<Vec<WebhookCiphertext>>;
    /// Replaces one ciphertext if it is still the one read (compare-and-set on the old bytes);
    /// says whether it was replaced.
    async fn rewrap_webhook_ciphertext(
        &self,
        old: &WebhookCiphertext,
        key_id: u32,
        ciphertext: &[u8],
    ) -> StoreResult<bool>;
}
