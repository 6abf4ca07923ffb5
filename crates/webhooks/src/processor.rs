//! The inbox processor: runs the `webhook.process` job every stored event gets in the same
//! transaction as its inbox row. It starts an attempt (only a `pending` event, so a duplicate
//! job applies nothing), opens the sealed body, hands it to the [`Applier`] registered for the
//! event's source kind and records the outcome on the row: `processed`; a transient failure
//! stays `pending` with its error and is retried by the job queue with growing backoff until
//! `max_attempts`, then `failed`; a permanent failure is `failed` at once. An event of a kind
//! with no applier ends `failed` with an error naming the kind, so it is listed and can be
//! reprocessed once an applier exists (never silently dropped).
//!
//! A crash between an applier's effect and the `processed` mark leaves the event `pending` and
//! the job leased; the lease lapses, the job runs again and the applier applies again (appliers
//! are idempotent, or, for `webhook.received`, at-least-once with a stable event id).

use crate::apply::{Applier, ApplyError};
use crate::inbox::body_aad;
use async_trait::async_trait;
use patchbay_store::{
    Clock, Job, JobContext, JobError, JobHandler, JobPayload, StoreError, WebhookEvent, WebhookEventId,
    WebhookProcessPayload, WebhookProcessingStore, WebhookSettle, WebhookSourceKind,
};
use patchbay_token_vault::Vault;
use std::collections::HashMap;
use std::sync::Arc;

/// Attempts at one event before a transient failure ends it `failed` (default).
pub const DEFAULT_MAX_ATTEMPTS: i32 = 8;

/// How processing one event ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Processed {
    /// Applied and marked `processed`.
    Applied,
    /// A transient failure; the event stays `pending` and the job retries.
    Retry(String),
    /// Marked `failed` with this error.
    Failed(String),
    /// Nothing to do: the event is no longer pending (a duplicate or late job) or is gone.
    Skipped,
}

impl Processed {
    /// The metric label of the outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Applied => "processed",
            Self::Retry(_) => "retried",
            Self::Failed(_) => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// Applies stored inbox events through the registered appliers.
#[derive(Clone)]
pub struct Processor {
    store: Arc<dyn WebhookProcessingStore>,
    vault: Vault,
    clock: Arc<dyn Clock>,
    appliers: HashMap<WebhookSourceKind, Arc<dyn Applier>>,
    max_attempts: i32,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("kinds", &self.appliers.keys().collect::<Vec<_>>())
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl Processor {
    /// A processor with no appliers and [`DEFAULT_MAX_ATTEMPTS`].
    pub fn new(store: Arc<dyn WebhookProcessingStore>, vault: Vault, clock: Arc<dyn Clock>) -> Self {
        Self { store, vault, clock, appliers: HashMap::new(), max_attempts: DEFAULT_MAX_ATTEMPTS }
    }

    /// Registers (or replaces) the applier of one source kind.
    pub fn with_applier(mut self, kind: WebhookSourceKind, applier: Arc<dyn Applier>) -> Self {
        self.appliers.insert(kind, applier);
        self
    }

    /// Attempts before a transient failure ends the event `failed` (at least 1).
    pub fn with_max_attempts(mut self, attempts: i32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The clock (for callers that stamp what they enqueue).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Processes one event and counts the outcome in
    /// `patchbay_webhook_processing_total{source_kind, outcome}`.
    pub async fn process(&self, id: WebhookEventId) -> Result<Processed, StoreError> {
        let event = match self.store.start_webhook_attempt(id).await? {
            Some(event) => event,
            None => {
                let kind = match self.store.find_webhook_event(id).await {
                    Ok(event) => event.source_kind.as_str(),
                    Err(StoreError::NotFound) => "unknown",
                    Err(e) => return Err(e),
                };
                count(kind, &Processed::Skipped);
                return Ok(Processed::Skipped);
            }
        };
        let outcome = self.attempt(&event).await;
        let settle = match &outcome {
            Processed::Applied => WebhookSettle::Processed,
            Processed::Retry(e) => WebhookSettle::Retry(e.clone()),
            Processed::Failed(e) => WebhookSettle::Failed(e.clone()),
            Processed::Skipped => return Ok(Processed::Skipped),
        };
        // If this write fails the event stays pending and the job retries: the effect may
        // then be applied twice, which appliers tolerate.
        self.store.settle_webhook_event(id, &settle).await?;
        count(event.source_kind.as_str(), &outcome);
        match &outcome {
            Processed::Failed(e) => {
                tracing::warn!(event = %id.0, kind = %event.source_kind, attempts = event.attempts, error = %e, "webhook event failed")
            }
            Processed::Retry(e) => {
                tracing::info!(event = %id.0, kind = %event.source_kind, attempts = event.attempts, error = %e, "webhook event will be retried")
            }
            _ => {}
        }
        Ok(outcome)
    }

    /// One attempt at a started event (its `attempts` already counts this one).
    async fn attempt(&self, event: &WebhookEvent) -> Processed {
        let Some(applier) = self.appliers.get(&event.source_kind) else {
            return Processed::Failed(format!("no applier for source kind `{}`", event.source_kind));
        };
        let body = match self.vault.decrypt(&event.body, &body_aad(event.tenant_id, event.id)) {
            Ok(body) => body,
            Err(e) => return Processed::Failed(format!("the sealed body does not open: {e}")),
        };
        match applier.apply(event, &body).await {
            Ok(()) => Processed::Applied,
            Err(ApplyError::Permanent(e)) => Processed::Failed(e),
            Err(ApplyError::Transient(e)) if event.attempts >= self.max_attempts => {
                Processed::Failed(format!("gave up after {} attempts: {e}", event.attempts))
            }
            Err(ApplyError::Transient(e)) => Processed::Retry(e),
        }
    }
}

fn count(kind: &str, outcome: &Processed) {
    metrics::counter!("patchbay_webhook_processing_total", "source_kind" => kind.to_owned(), "outcome" => outcome.label())
        .increment(1);
}

#[async_trait]
impl JobHandler for Processor {
    async fn run(&self, job: &Job, _ctx: JobContext) -> Result<(), JobError> {
        let payload = WebhookProcessPayload::from_job(job).map_err(JobError::Permanent)?;
        match self.process(payload.event_id).await {
            Ok(Processed::Retry(e)) => Err(JobError::Retry(e)),
            Ok(_) => Ok(()),
            Err(e) => Err(JobError::Retry(e.to_string())),
        }
    }
}
