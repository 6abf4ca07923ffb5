//! Retention (architecture §3 "Retention"): bounded deletes of what has served its purpose —
//! settled inbox events, finished deliveries, dispatched outbox events nothing reads any more,
//! and expired push channels — run by the `retention.prune` job in batches.
//!
//! The rules that protect data live in the statements, not in the caller: an inbox event is
//! deleted only once settled and older than [`DEDUP_KEY_FLOOR`] whatever the caller asks (its
//! row is the sender's dedup key), a pending delivery and an undispatched outbox event are
//! never touched, and an outbox event is kept while any delivery of it is (a redrive re-reads it).

use crate::{JobKind, JobPayload, NewJob, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The shortest time an inbox event (its dedup key) is kept after it was received: the longest
/// sender retry window (the Standard Webhooks schedule spans about 75 hours, security.md J4).
pub const DEDUP_KEY_FLOOR: Duration = Duration::hours(75);

/// Which settled inbox events [`RetentionStore::prune_webhook_events`] deletes: `processed`
/// ones received before one cutoff, `failed` ones before another. Built only by
/// [`InboxCutoffs::new`], which never lets a cutoff come closer to `now` than
/// [`DEDUP_KEY_FLOOR`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboxCutoffs {
    processed_before: DateTime<Utc>,
    failed_before: DateTime<Utc>,
}

impl InboxCutoffs {
    /// Cutoffs keeping processed events `processed_keep` and failed ones `failed_keep`, each at
    /// least [`DEDUP_KEY_FLOOR`].
    pub fn new(now: DateTime<Utc>, processed_keep: Duration, failed_keep: Duration) -> Self {
        Self {
            processed_before: now - processed_keep.max(DEDUP_KEY_FLOOR),
            failed_before: now - failed_keep.max(DEDUP_KEY_FLOOR),
        }
    }

    /// Processed events received before this are deleted.
    pub fn processed_before(&self) -> DateTime<Utc> {
        self.processed_before
    }

    /// Failed events received before this are deleted.
    pub fn failed_before(&self) -> DateTime<Utc> {
        self.failed_before
    }
}

/// Batched deletes for retention. Each call deletes at most `limit` rows in one statement and
/// answers how many it deleted; the caller repeats while a call deletes a full batch.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes settled inbox events older than the cutoffs (pending ones are never touched).
    async fn prune_webhook_events(&self, cutoffs: &InboxCutoffs, limit: u32) -> StoreResult<u64>;
    /// Deletes delivered or exhausted deliveries that finished before `finished_before`
    /// (pending ones, a redriven one included, are never touched).
    async fn prune_event_deliveries(&self, finished_before: DateTime<Utc>, limit: u32) -> StoreResult<u64>;
    /// Deletes outbox events dispatched before `dispatched_before` that no delivery refers to
    /// any more (undispatched ones are never touched).
    async fn prune_outbox_events(&self, dispatched_before: DateTime<Utc>, limit: u32) -> StoreResult<u64>;
    /// Deletes push channels (stopped or not) that expired before `expired_before`.
    async fn prune_watch_channels(&self, expired_before: DateTime<Utc>, limit: u32) -> StoreResult<u64>;
}

/// Payload of [`JobKind::RetentionPrune`]: a singleton sweep that re-enqueues itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPrunePayload {}

impl JobPayload for RetentionPrunePayload {
    const KIND: JobKind = JobKind::RetentionPrune;

    fn job(&self, now: DateTime<Utc>) -> NewJob {
        let mut job = NewJob::new(Self::KIND.as_str(), serde_json::json!(self), now);
        // Housekeeping: below every other kind.
        job.priority = -40;
        job.dedup_key = Some(Self::KIND.to_string());
        job.concurrency_key = Some(Self::KIND.to_string());
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_cutoffs_never_come_closer_than_the_dedup_floor() {
        let now = Utc::now();
        let short = InboxCutoffs::new(now, Duration::hours(1), Duration::zero());
        assert_eq!(short.processed_before(), now - DEDUP_KEY_FLOOR, "1 h asked, 75 h kept");
        assert_eq!(short.failed_before(), now - DEDUP_KEY_FLOOR, "0 asked, 75 h kept");
        let long = InboxCutoffs::new(now, Duration::days(7), Duration::days(30));
        assert_eq!(
            (long.processed_before(), long.failed_before()),
            (now - Duration::days(7), now - Duration::days(30))
        );
    }
}
