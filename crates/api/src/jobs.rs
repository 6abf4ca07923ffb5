//! The job handlers this binary runs, registered on the worker in one place.

use crate::state::AppState;
use patchbay_connect::DisconnectJob;
use patchbay_store::{JobKind, Worker};
use std::sync::Arc;

/// Revocation attempts before a disconnect gives the grant up and cleans up anyway (below the
/// job's `max_attempts`, so the job itself never ends dead for a provider's sake).
const REVOKE_ATTEMPTS: i32 = 8;

/// Registers every handler on `worker`.
pub fn register(worker: Worker, state: &AppState) -> Worker {
    let disconnect = DisconnectJob {
        store: state.store.clone(),
        tokens: state.tokens.clone(),
        oauth: state.oauth.clone(),
        registry: state.settings.providers.registry.clone(),
        revoke_attempts: REVOKE_ATTEMPTS,
    };
    let mut worker = worker.handle(JobKind::ConnectionDisconnect.as_str(), Arc::new(disconnect));
    for (kind, handler) in patchbay_sync::runner::handlers(&state.sync) {
        worker = worker.handle(kind.as_str(), handler);
    }
    let register = patchbay_webhooks::monday_register::MondayRegisterJob {
        deps: state.sync.clone(),
        public_url: state.settings.http.public_url.to_string(),
    };
    let release = patchbay_webhooks::monday_release::MondayReleaseJob { deps: state.sync.clone() };
    worker
        .handle(patchbay_store::MONDAY_WEBHOOKS_REGISTER, Arc::new(register))
        .handle(patchbay_store::MONDAY_WEBHOOKS_RELEASE, Arc::new(release))
}
