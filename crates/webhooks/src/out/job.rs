//! `events.deliver`: one round of dispatch and sending, then the next round queued (a
//! singleton: its dedup key keeps one queued across instances).

use super::EventsOut;
use async_trait::async_trait;
use patchbay_store::{Clock, EventsDeliverPayload, Job, JobContext, JobError, JobHandler, JobPayload, JobStore};
use std::sync::Arc;
use std::time::Duration;

/// Runs `events.deliver`.
#[derive(Clone)]
pub struct EventsDeliverJob {
    pub out: EventsOut,
    pub jobs: Arc<dyn JobStore>,
    pub clock: Arc<dyn Clock>,
    /// The pause between rounds.
    pub every: Duration,
}

#[async_trait]
impl JobHandler for EventsDeliverJob {
    async fn run(&self, _job: &Job, _ctx: JobContext) -> Result<(), JobError> {
        let now = self.clock.now();
        let result = self.out.run_once(now).await;
        // Queue the next round whatever this one did, so a store hiccup does not stop delivery.
        let mut next = EventsDeliverPayload {}.job(now);
        next.run_at = now + chrono::Duration::from_std(self.every).unwrap_or_default();
        self.jobs.enqueue(next, now).await.map_err(|e| JobError::Retry(e.to_string()))?;
        // A failed round is not retried on its own: the next round (queued above) picks up
        // where it stopped, since every step is durable in the store.
        match result {
            Ok(report) if report.attempted > 0 || report.dispatched_events > 0 => {
                tracing::debug!(?report, "events-out round");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "an events-out round failed"),
        }
        Ok(())
    }
}
