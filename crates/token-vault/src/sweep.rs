//! The refresh sweep: renews tokens that expire before the next sweep, so syncs never wait on a
//! refresh. A step that tests drive ([`RefreshSweep::step`]) and a loop around it
//! ([`RefreshSweep::run`]).

use crate::tokens::Tokens;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use patchbay_store::CredentialStore;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rows read per batch.
const BATCH: u32 = 500;
/// Batches per step at most, so a provider outage cannot pin the loop.
const MAX_BATCHES_PER_STEP: usize = 100;
/// Refreshes in flight at once.
const CONCURRENCY: usize = 32;

/// What one step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub refreshed: usize,
    pub failed: usize,
}

/// Renews every active token that expires within `horizon` of now.
pub struct RefreshSweep {
    store: Arc<dyn CredentialStore>,
    tokens: Arc<Tokens>,
    horizon: chrono::Duration,
}

impl RefreshSweep {
    /// `horizon`: how far ahead of expiry a token is renewed (the refresh margin plus the time
    /// until the next step).
    pub fn new(store: Arc<dyn CredentialStore>, tokens: Arc<Tokens>, horizon: chrono::Duration) -> Self {
        Self { store, tokens, horizon }
    }

    /// One sweep: works through everything due in batches (a fleet whose tokens were issued
    /// together expires together). Stops early on any failure: failing rows sort first and
    /// would be retried at once; the next step, or the first use, takes them again.
    pub async fn step(&self, now: DateTime<Utc>) -> SweepReport {
        let mut report = SweepReport::default();
        // Due means expiring before this instant, for listing and renewing alike:
        // `fresh_access_token` would renew only within the refresh margin of the wall clock,
        // leaving every token due between the margin and the horizon (and any step dated
        // ahead) untouched while counting it as refreshed.
        let before = now + self.horizon;
        // A token whose new lifetime is shorter than the horizon is listed again: renew each
        // row at most once per step.
        let mut seen = HashSet::new();
        for _ in 0..MAX_BATCHES_PER_STEP {
            let due = match self.store.credentials_expiring(before, BATCH).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "refresh sweep could not list expiring credentials");
                    return report;
                }
            };
            let full = due.len() == BATCH as usize;
            let due: Vec<_> = due.into_iter().filter(|(_, id)| seen.insert(*id)).collect();
            if due.is_empty() {
                break;
            }
            let (refreshed, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
            futures::stream::iter(due)
                .for_each_concurrent(CONCURRENCY, |(scope, id)| {
                    let (refreshed, failed) = (&refreshed, &failed);
                    async move {
                        match self.tokens.refresh_if_expiring(scope, id, before).await {
                            Ok(true) => {
                                refreshed.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(false) => {}
                            Err(e) => {
                                tracing::warn!(connection = %id, error = %e, "refresh sweep: refresh failed");
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
                .await;
            report.refreshed += refreshed.into_inner();
            report.failed += failed.load(Ordering::Relaxed);
            if !full || report.failed > 0 {
                break;
            }
        }
        report
    }

    /// Steps every `every` until `stop` is cancelled.
    pub async fn run(self, every: Duration, stop: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.step(Utc::now()).await;
        }
    }
}
