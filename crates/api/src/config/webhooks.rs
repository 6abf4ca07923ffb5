//! Webhooks-in tunables (architecture §4.4): the default secret-rotation overlap and how the
//! inbox groups concurrent deliveries into one commit, and how often the processor tries an event.

use super::ConfigError;
use std::time::Duration;

/// Webhook sources and the inbox.
#[derive(clap::Args, Clone, Debug)]
pub struct WebhookArgs {
    /// Seconds a rotated source secret keeps verifying when the rotation names no overlap.
    #[arg(long, env = "PATCHBAY_WEBHOOK_SECRET_OVERLAP_SECONDS", default_value_t = 86_400, global = true)]
    pub secret_overlap_seconds: u64,
    /// Most deliveries the inbox commits in one transaction.
    #[arg(long, env = "PATCHBAY_WEBHOOK_BATCH_MAX_ITEMS", default_value_t = 256, global = true)]
    pub batch_max_items: usize,
    /// Milliseconds the inbox waits for more deliveries before committing a batch (0: commit
    /// what is queued at once).
    #[arg(long, env = "PATCHBAY_WEBHOOK_BATCH_MAX_WAIT_MS", default_value_t = 1, global = true)]
    pub batch_max_wait_ms: u64,
    /// Attempts at applying one inbox event before a transient failure ends it `failed`.
    #[arg(long, env = "PATCHBAY_WEBHOOK_PROCESS_MAX_ATTEMPTS", default_value_t = 8, global = true)]
    pub process_max_attempts: i32,
    /// Seconds an instance reuses a source's unsealed keys before reading the row again (0:
    /// every request reads it). A new secret verifies at once everywhere: a refusal by cached
    /// keys re-reads the source before it is final.
    #[arg(long, env = "PATCHBAY_WEBHOOK_SOURCE_CACHE_SECONDS", default_value_t = 5, global = true)]
    pub source_cache_seconds: u64,
}

/// Validated webhook settings.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    pub secret_overlap: chrono::Duration,
    pub batch_max_items: usize,
    pub batch_max_wait: Duration,
    pub process_max_attempts: i32,
    pub source_cache_ttl: Duration,
}

impl WebhookArgs {
    pub(super) fn settings(&self) -> Result<WebhookSettings, ConfigError> {
        let max_overlap = patchbay_webhooks::sources::MAX_OVERLAP.num_seconds().unsigned_abs();
        if self.secret_overlap_seconds > max_overlap {
            return Err(ConfigError::new(
                "PATCHBAY_WEBHOOK_SECRET_OVERLAP_SECONDS",
                "must be at most 2592000 (30 days)",
            ));
        }
        if !(1..=10_000).contains(&self.batch_max_items) {
            return Err(ConfigError::new("PATCHBAY_WEBHOOK_BATCH_MAX_ITEMS", "must be between 1 and 10000"));
        }
        if self.batch_max_wait_ms > 1_000 {
            return Err(ConfigError::new("PATCHBAY_WEBHOOK_BATCH_MAX_WAIT_MS", "must be at most 1000"));
        }
        // Below the job's own attempt limit, so the processor (not the queue) ends an event.
        let job_attempts = patchbay_store::WEBHOOK_PROCESS_JOB_ATTEMPTS - 10;
        if !(1..=job_attempts).contains(&self.process_max_attempts) {
            return Err(ConfigError::new(
                "PATCHBAY_WEBHOOK_PROCESS_MAX_ATTEMPTS",
                format!("must be between 1 and {job_attempts}"),
            ));
        }
        if self.source_cache_seconds > 60 {
            return Err(ConfigError::new("PATCHBAY_WEBHOOK_SOURCE_CACHE_SECONDS", "must be at most 60"));
        }
        Ok(WebhookSettings {
            secret_overlap: chrono::Duration::seconds(i64::try_from(self.secret_overlap_seconds).unwrap_or(0)),
            batch_max_items: self.batch_max_items,
            batch_max_wait: Duration::from_millis(self.batch_max_wait_ms),
            process_max_attempts: self.process_max_attempts,
            source_cache_ttl: Duration::from_secs(self.source_cache_seconds),
        })
    }
}
