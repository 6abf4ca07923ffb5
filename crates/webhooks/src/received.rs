//! The [`Applier`] of third-party sources: each verified delivery becomes a `webhook.received`
//! outbox event (architecture §4.4: "forwarded as `webhook.received`"), which events out
//! (§4.5) delivers to the tenant's endpoints.
//!
//! Payload: `webhook_event_id`, `source_id`, `received_at`, the selected `headers` kept at
//! ingest (never a signature), `body_size`, `body_sha256` and the body: as JSON when it parses
//! as JSON (`body_encoding: "json"`), else base64 (`"base64"`). A body larger than the inline
//! limit (default 256 KiB, below the 1 MiB ingest default) is left out (`"omitted"`, `body`
//! null): outbox rows and signed deliveries stay small, and the size and hash still say what
//! arrived. Applying twice (a crash before the `processed` mark, a reprocess) appends a second
//! event with the same `webhook_event_id`, which consumers use to discard the repeat.

use crate::apply::{Applier, ApplyError};
use async_trait::async_trait;
use base64::Engine;
use patchbay_store::{EventType, NewEvent, OutboxStore, StoreError, WebhookEvent};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Bodies up to this size are carried inline in `webhook.received` (default).
pub const DEFAULT_MAX_INLINE_BODY: usize = 256 * 1024;

/// Appends `webhook.received` for events of [`patchbay_store::WebhookSourceKind::Source`].
#[derive(Clone)]
pub struct ReceivedApplier {
    outbox: Arc<dyn OutboxStore>,
    max_inline_body: usize,
}

impl std::fmt::Debug for ReceivedApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedApplier").field("max_inline_body", &self.max_inline_body).finish_non_exhaustive()
    }
}

impl ReceivedApplier {
    pub fn new(outbox: Arc<dyn OutboxStore>) -> Self {
        Self { outbox, max_inline_body: DEFAULT_MAX_INLINE_BODY }
    }

    /// Changes the inline body limit.
    pub fn with_max_inline_body(mut self, bytes: usize) -> Self {
        self.max_inline_body = bytes;
        self
    }

    /// The `webhook.received` payload of `event` with its opened `body`.
    pub fn payload(&self, event: &WebhookEvent, body: &[u8]) -> serde_json::Value {
        let (encoding, inline) = if body.len() > self.max_inline_body {
            ("omitted", serde_json::Value::Null)
        } else {
            match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(json) => ("json", json),
                Err(_) => ("base64", base64::engine::general_purpose::STANDARD.encode(body).into()),
            }
        };
        serde_json::json!({
            "webhook_event_id": event.id,
            "source_id": event.source_id,
            "received_at": event.received_at,
            "headers": event.headers,
            "body_encoding": encoding,
            "body": inline,
            "body_size": body.len(),
            "body_sha256": hex::encode(Sha256::digest(body)),
        })
    }
}

#[async_trait]
impl Applier for ReceivedApplier {
    async fn apply(&self, event: &WebhookEvent, body: &[u8]) -> Result<(), ApplyError> {
        let tenant_id =
            event.tenant_id.ok_or_else(|| ApplyError::Permanent("a source event without a tenant".to_owned()))?;
        let appended = self
            .outbox
            .append_event(NewEvent {
                tenant_id,
                connection_id: None,
                event_type: EventType::WebhookReceived,
                payload: self.payload(event, body),
            })
            .await;
        match appended {
            Ok(_) => Ok(()),
            // A refused row (its tenant is gone) will never be written.
            Err(e @ (StoreError::Conflict(_) | StoreError::NotFound)) => Err(ApplyError::Permanent(e.to_string())),
            Err(e) => Err(ApplyError::Transient(e.to_string())),
        }
    }
}
