//! The sync job handlers (architecture §4.3): `sync.initial` queues a connection's first run,
//! `sync.run` executes one run (or skips it when nothing can have changed), `sync.repair`
//! re-queues connections that lost their schedule, `sync.purge` deletes a disconnected
//! connection's records in batches.
//!
//! Every handler works on ids and counts only: nothing here logs record data, provider bodies or
//! tokens.

mod initial;
mod purge;
mod repair;
mod run;

pub use initial::SyncInitialJob;
pub use purge::SyncPurgeJob;
pub use repair::{SyncRepairJob, REPAIR_EVERY};
pub use run::{plan, Plan, SyncRunJob};

use crate::SyncDeps;
use patchbay_store::{JobHandler, JobKind, ProviderId, StoreError};
use std::sync::Arc;

/// The sync handlers (and the Google push channel jobs) with the job kind each runs, ready to
/// register on a worker.
pub fn handlers(deps: &SyncDeps) -> Vec<(JobKind, Arc<dyn JobHandler>)> {
    let mut handlers = vec![
        (JobKind::SyncInitial, Arc::new(SyncInitialJob { deps: deps.clone() }) as Arc<dyn JobHandler>),
        (JobKind::SyncRun, Arc::new(SyncRunJob { deps: deps.clone() })),
        (JobKind::SyncRepair, Arc::new(SyncRepairJob { deps: deps.clone() })),
        (JobKind::SyncPurge, Arc::new(SyncPurgeJob { deps: deps.clone() })),
    ];
    handlers.extend(crate::google::watch::handlers(deps));
    handlers
}

/// The part that lists a provider's containers: `calendars` or `boards`.
pub fn list_part(provider: ProviderId) -> &'static str {
    match provider {
        ProviderId::Google => "calendars",
        ProviderId::Monday => "boards",
    }
}

/// Whether `part` holds a container's contents (`events:…`, `items:…`): the parts a change
/// signal (push channel, board webhook) watches.
pub fn is_item_part(part: &str) -> bool {
    part.starts_with("events:") || part.starts_with("items:")
}

/// A store error as a job error: a lost lease or a passing failure is retried (a lost lease's
/// result is discarded by the worker anyway).
fn store_retry(error: StoreError) -> patchbay_store::JobError {
    patchbay_store::JobError::Retry(format!("store: {error}"))
}
