//! `retention.prune`: a singleton sweep that deletes, in bounded batches, what the retention
//! periods no longer keep — finished deliveries, then the outbox events no delivery refers to
//! any more, settled inbox events (never a dedup key younger than 75 hours, see
//! [`patchbay_store::DEDUP_KEY_FLOOR`]) and push channels a grace period past their expiry —
//! then queues itself again.
//!
//! Every statement deletes at most `batch` rows, so no sweep holds a long lock; a sweep stops
//! after `max_batches` per table (or when the worker cancels it) and the next one, queued soon
//! in that case, continues. Progress: `patchbay_retention_deleted_total{table}` and one log line
//! per table that lost rows.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use patchbay_store::{
    Clock, InboxCutoffs, Job, JobContext, JobError, JobHandler, JobPayload, JobStore, RetentionPrunePayload,
    RetentionStore, StoreResult,
};
use std::future::Future;
use std::sync::Arc;

/// The retention periods and the sweep's pace (environment variables in `patchbay-api`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Processed inbox events, after receipt (never less than the 75-hour dedup floor).
    pub inbox_processed: Duration,
    /// Failed inbox events, after receipt: long enough to reprocess them.
    pub inbox_failed: Duration,
    /// Delivered or exhausted deliveries, after they finished.
    pub deliveries: Duration,
    /// Dispatched outbox events no delivery refers to, after dispatch.
    pub outbox: Duration,
    /// Push channels, after they expired.
    pub watch_channels: Duration,
    /// Rows per statement.
    pub batch: u32,
    /// Statements per table per sweep.
    pub max_batches: u32,
    /// The pause between sweeps.
    pub every: std::time::Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            inbox_processed: Duration::days(7),
            inbox_failed: Duration::days(30),
            deliveries: Duration::days(30),
            outbox: Duration::days(7),
            watch_channels: Duration::days(1),
            batch: 1_000,
            max_batches: 100,
            every: std::time::Duration::from_secs(3_600),
        }
    }
}

/// What one sweep deleted, per table, and whether it got through everything due.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub event_deliveries: u64,
    pub outbox_events: u64,
    pub webhook_events: u64,
    pub watch_channels: u64,
    /// `false` when a table still had rows due after `max_batches` (or the sweep was cancelled).
    pub complete: bool,
}

/// Runs `retention.prune`.
#[derive(Clone)]
pub struct RetentionJob {
    pub store: Arc<dyn RetentionStore>,
    pub jobs: Arc<dyn JobStore>,
    pub clock: Arc<dyn Clock>,
    pub settings: RetentionSettings,
}

/// When a sweep left rows due, the next one comes this soon rather than after `every`.
const BACKLOG_PAUSE: std::time::Duration = std::time::Duration::from_secs(60);

impl RetentionJob {
    /// One sweep at `now`; stops between batches once `stopped()` says so (the worker's
    /// cancellation).
    pub async fn sweep(&self, now: DateTime<Utc>, stopped: &(dyn Fn() -> bool + Sync)) -> StoreResult<Pruned> {
        let s = &self.settings;
        let store = &self.store;
        let mut complete = true;
        // Deliveries first: the outbox events they held become prunable in the same sweep.
        let (event_deliveries, done) = self
            .table("event_delivery", stopped, |limit| store.prune_event_deliveries(now - s.deliveries, limit))
            .await?;
        complete &= done;
        let (outbox_events, done) =
            self.table("event_outbox", stopped, |limit| store.prune_outbox_events(now - s.outbox, limit)).await?;
        complete &= done;
        let cutoffs = InboxCutoffs::new(now, s.inbox_processed, s.inbox_failed);
        let (webhook_events, done) =
            self.table("webhook_event", stopped, |limit| store.prune_webhook_events(&cutoffs, limit)).await?;
        complete &= done;
        let (watch_channels, done) = self
            .table("watch_channel", stopped, |limit| store.prune_watch_channels(now - s.watch_channels, limit))
            .await?;
        complete &= done;
        Ok(Pruned { event_deliveries, outbox_events, webhook_events, watch_channels, complete })
    }

    /// Repeats one table's bounded delete until a batch comes back short; answers the rows
    /// deleted and whether the table is done.
    async fn table<'a, F, Fut>(
        &self,
        table: &'static str,
        stopped: &(dyn Fn() -> bool + Sync),
        mut prune: F,
    ) -> StoreResult<(u64, bool)>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = StoreResult<u64>> + 'a,
    {
        let batch = self.settings.batch.max(1);
        let mut total = 0;
        for _ in 0..self.settings.max_batches.max(1) {
            if stopped() {
                break;
            }
            let deleted = prune(batch).await?;
            total += deleted;
            metrics::counter!("patchbay_retention_deleted_total", "table" => table).increment(deleted);
            if deleted < u64::from(batch) {
                log(table, total, true);
                return Ok((total, true));
            }
            tracing::debug!(table, deleted = total, "retention: deleting");
        }
        log(table, total, false);
        Ok((total, false))
    }
}

fn log(table: &'static str, deleted: u64, complete: bool) {
    if !complete {
        tracing::info!(table, deleted, "retention: more rows are due; the next sweep continues soon");
    } else if deleted > 0 {
        tracing::info!(table, deleted, "retention: rows past their period deleted");
    }
}

#[async_trait]
impl JobHandler for RetentionJob {
    async fn run(&self, _job: &Job, ctx: JobContext) -> Result<(), JobError> {
        let now = self.clock.now();
        let result = self.sweep(now, &|| ctx.cancel.is_cancelled()).await;
        let pause = match &result {
            Ok(pruned) if !pruned.complete => BACKLOG_PAUSE,
            _ => self.settings.every,
        };
        // The next sweep whatever this one did; the dedup key keeps one queued fleet-wide.
        let mut next = RetentionPrunePayload {}.job(now);
        next.run_at = now + Duration::from_std(pause).unwrap_or_default();
        self.jobs.enqueue(next, now).await.map_err(|e| JobError::Retry(e.to_string()))?;
        // Every batch is durable on its own: a failed sweep is not retried, the next continues.
        if let Err(e) = result {
            tracing::warn!(error = %e, "a retention sweep failed");
        }
        Ok(())
    }
}
