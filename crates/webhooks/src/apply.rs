//! The seam between the inbox processor and what an event means: each source kind (a tenant's
//! third-party source, a Monday board webhook, a Google push channel) has one [`Applier`] that
//! turns a stored, verified event into its effect (mark records dirty, emit an outbox event).
//! The processor owns retries and the `failed` state; appliers only say how an attempt ended.

use async_trait::async_trait;
use patchbay_store::WebhookEvent;

/// How applying one event failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Worth another attempt later (store or provider unavailable, rate limited).
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (malformed payload, unknown board): the event ends `failed` at once.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Applies stored events of one source kind. Must be idempotent: an event can be applied
/// again after a crash between its effect and its `processed` mark, or by `reprocess`.
#[async_trait]
pub trait Applier: Send + Sync {
    /// Applies `event`; `body` is its opened (decrypted) raw body.
    async fn apply(&self, event: &WebhookEvent, body: &[u8]) -> Result<(), ApplyError>;
}
