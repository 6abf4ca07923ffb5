//! The job handlers this binary runs, registered on the worker in one place.

use crate::state::AppState;
use patchbay_connect::DisconnectJob;
use patchbay_store::{JobKind, WebhookSourceKind, Worker};
use patchbay_webhooks::{GoogleApplier, Processor, ReceivedApplier};
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
    let events = patchbay_webhooks::out::job::EventsDeliverJob {
        out: state.events_out.clone(),
        jobs: state.store.clone(),
        clock: state.clock.clone(),
        every: state.settings.events_out.poll,
    };
    let register = patchbay_webhooks::monday_register::MondayRegisterJob {
        deps: state.sync.clone(),
        public_url: state.settings.http.public_url.to_string(),
    };
    let release = patchbay_webhooks::monday_release::MondayReleaseJob { deps: state.sync.clone() };
    let retention = patchbay_webhooks::RetentionJob {
        store: state.store.clone(),
        jobs: state.store.clone(),
        clock: state.clock.clone(),
        settings: state.settings.retention.clone(),
    };
    worker
        .handle(JobKind::EventsDeliver.as_str(), Arc::new(events))
        .handle(patchbay_store::MONDAY_WEBHOOKS_REGISTER, Arc::new(register))
        .handle(patchbay_store::MONDAY_WEBHOOKS_RELEASE, Arc::new(release))
        .handle(JobKind::WebhookProcess.as_str(), Arc::new(webhook_processor(state)))
        .handle(JobKind::RetentionPrune.as_str(), Arc::new(retention))
}

/// The inbox processor with one applier per source kind. Kinds without an applier here end
/// `failed` ("no applier for source kind …") and can be reprocessed once one is added.
pub fn webhook_processor(state: &AppState) -> Processor {
    Processor::new(state.store.clone(), state.tokens.vault().clone(), state.clock.clone())
        .with_max_attempts(state.settings.webhooks.process_max_attempts)
        .with_applier(WebhookSourceKind::Source, Arc::new(ReceivedApplier::new(state.store.clone())))
        .with_applier(
            WebhookSourceKind::Google,
            Arc::new(GoogleApplier {
                store: state.store.clone(),
                clock: state.clock.clone(),
                coalesce: GOOGLE_PUSH_COALESCE,
            }),
        )
        .with_applier(
            WebhookSourceKind::Monday,
            Arc::new(patchbay_webhooks::monday_apply::MondayApplier {
                store: state.store.clone(),
                clock: state.clock.clone(),
                coalesce: MONDAY_HOOK_COALESCE,
            }),
        )
}

/// How long a Monday-webhook-triggered run waits for more events of the connection: a burst of
/// item changes makes one run (its dirty items re-read together, ≤ 100 per `items(ids:)`).
const MONDAY_HOOK_COALESCE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a push-triggered calendar sync waits for more notifications of the same calendar
/// before it starts: a burst of changes makes one run, and a change is still read within
/// about a second of its notification.
const GOOGLE_PUSH_COALESCE: std::time::Duration = std::time::Duration::from_secs(1);
