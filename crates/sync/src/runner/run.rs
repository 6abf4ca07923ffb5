//! `sync.run`: executes one queued run. It starts the run (a job that yielded for budget or
//! waits for a retry resumes the run it already started), decides from the parts' states whether
//! anything can have changed ([`plan`]), and either finishes `skipped` without a provider call or
//! hands a provider session to the engine. Every finished run (but one whose connection is no
//! longer active) queues its successor at the backstop interval.

use super::{is_item_part, list_part, store_retry};
use crate::call::Session;
use crate::engine::{self, Engine, Scope};
use crate::{google, monday, SyncDeps, SyncError, SyncSettings};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::{
    Connection, ConnectionStatus, Job, JobContext, JobError, JobHandler, JobPayload, LeaseRef, ProviderId, RunFinish,
    StoreError, SyncRequest, SyncRun, SyncRunPayload, SyncRunStatus, SyncState, SyncTrigger, TenantScope,
};

/// Runs `sync.run`.
#[derive(Clone, Debug)]
pub struct SyncRunJob {
    pub deps: SyncDeps,
}

/// What a run will do, decided before any provider call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Nothing can have changed since the last sync: finish `skipped` with no provider call.
    pub skip: bool,
    pub scope: Scope,
}

/// Decides a run from its trigger and the connection's part states.
///
/// A run is skipped only when it was not asked for by a person or a first connect (trigger
/// `schedule`, or `webhook` with nothing dirty), every part has synced before, nothing is dirty,
/// every item/event part's change signal is healthy (so a change would have marked it dirty),
/// and the container list (which no signal watches) is not due for its own poll.
pub fn plan(
    trigger: SyncTrigger,
    provider: ProviderId,
    states: &[SyncState],
    settings: &SyncSettings,
    now: DateTime<Utc>,
) -> Plan {
    let signalled = signals_healthy(states, now);
    let dirty = states.iter().any(|s| s.dirty);
    let list = states.iter().find(|s| s.part == list_part(provider));
    let all_synced = list.is_some() && states.iter().all(|s| s.last_success_at.is_some());
    let quiet_trigger = match trigger {
        SyncTrigger::Schedule | SyncTrigger::Webhook => true,
        SyncTrigger::Initial | SyncTrigger::Manual => false,
    };
    let skip = quiet_trigger && all_synced && !dirty && signalled && !engine::list_due(list, settings, now);
    let scope = match trigger {
        SyncTrigger::Initial | SyncTrigger::Manual => Scope::Everything,
        _ if signalled => Scope::DirtyOnly,
        _ => Scope::Everything,
    };
    Plan { skip, scope }
}

/// Whether the connection has item/event parts and every one has a change signal healthy at
/// `now`. Without any such part there is nothing a signal could vouch for.
pub fn signals_healthy(states: &[SyncState], now: DateTime<Utc>) -> bool {
    let mut items = states.iter().filter(|s| is_item_part(&s.part)).peekable();
    items.peek().is_some() && items.all(|s| s.signal_healthy_until.is_some_and(|until| until > now))
}

/// What a run did, for its finish.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    api_calls: i64,
    upserted: i64,
    deleted: i64,
}

#[async_trait]
impl JobHandler for SyncRunJob {
    async fn run(&self, job: &Job, ctx: JobContext) -> Result<(), JobError> {
        let payload = SyncRunPayload::from_job(job).map_err(JobError::Permanent)?;
        let deps = &self.deps;
        let now = deps.clock.now();
        let run = match deps.store.start_sync_run(&ctx.lease, payload.run_id, now).await {
            Ok(run) => run,
            // Finished by an earlier attempt whose completion was lost, or purged: nothing to do.
            Err(StoreError::NotFound | StoreError::Conflict(_)) => {
                tracing::warn!(run = %payload.run_id, "sync run not startable (gone or finished); job dropped");
                return Ok(());
            }
            Err(e) => return Err(store_retry(e)),
        };
        let scope = TenantScope::new(payload.tenant_id);
        let connection = match deps.store.connection_for_job(scope, payload.connection_id).await {
            Ok(connection) if connection.status == ConnectionStatus::Active => connection,
            Ok(_) | Err(StoreError::NotFound) => {
                self.finish_failed(&ctx.lease, &run, Counts::default(), &SyncError::Inactive).await?;
                return Ok(());
            }
            Err(e) => return Err(store_retry(e)),
        };
        let states = deps.store.sync_states(connection.id).await.map_err(store_retry)?;
        let plan = plan(run.trigger, connection.provider, &states, &deps.settings, now);
        if plan.skip {
            let finish = RunFinish {
                status: SyncRunStatus::Skipped,
                api_calls: 0,
                upserted: 0,
                deleted: 0,
                error_code: None,
                error_message: None,
            };
            self.finish(&ctx.lease, &run, finish).await?;
            tracing::debug!(connection = %connection.id, run = %run.id, "sync run skipped: nothing can have changed");
            self.successor(&run).await;
            return Ok(());
        }
        let (counts, result) = self.execute(&connection, &run, &ctx, plan.scope).await;
        match result {
            Ok(()) => {
                let finish = RunFinish {
                    status: SyncRunStatus::Succeeded,
                    api_calls: counts.api_calls,
                    upserted: counts.upserted,
                    deleted: counts.deleted,
                    error_code: None,
                    error_message: None,
                };
                self.finish(&ctx.lease, &run, finish).await?;
                tracing::info!(connection = %connection.id, run = %run.id, api_calls = counts.api_calls,
                    upserted = counts.upserted, deleted = counts.deleted, "sync run succeeded");
                self.successor(&run).await;
                if run.trigger == SyncTrigger::Initial && connection.provider == ProviderId::Monday {
                    self.register_board_webhooks(&run).await;
                }
                Ok(())
            }
            Err(error) => self.failed(job, &ctx, &run, counts, error).await,
        }
    }
}

impl SyncRunJob {
    /// Opens the provider session and runs the provider's engine over `scope`.
    async fn execute(
        &self,
        connection: &Connection,
        run: &SyncRun,
        ctx: &JobContext,
        scope: Scope,
    ) -> (Counts, Result<(), SyncError>) {
        let session = match Session::open(&self.deps, connection.clone()).await {
            Ok(session) => session,
            Err(e) => return (Counts::default(), Err(e)),
        };
        let sealer = self.deps.sealer();
        let engine = Engine::new(&session, &sealer, ctx.lease, run.id, ctx.cancel.clone(), scope);
        let result = match connection.provider {
            ProviderId::Google => google::run(&engine).await,
            ProviderId::Monday => monday::run(&engine).await,
        };
        let counts = Counts { api_calls: session.api_calls(), upserted: engine.upserted(), deleted: engine.deleted() };
        (counts, result)
    }

    /// Acts on an engine error: wait (yield), retry, or finish the run failed.
    async fn failed(
        &self,
        job: &Job,
        ctx: &JobContext,
        run: &SyncRun,
        counts: Counts,
        error: SyncError,
    ) -> Result<(), JobError> {
        let connection = run.connection_id;
        if let Some(at) = error.wait_until() {
            // Not a failure: the attempt is given back and the run resumes at `at`.
            tracing::info!(%connection, run = %run.id, code = error.code(), until = %at, "sync run waits");
            return Err(JobError::Yield(at));
        }
        match &error {
            SyncError::Store(StoreError::LeaseLost) => Err(JobError::Retry("lease lost".into())),
            SyncError::NeedsReauth(_) | SyncError::Inactive => {
                // The connection is not active any more: no successor (a reconnect brings one).
                tracing::warn!(%connection, run = %run.id, code = error.code(), "sync run failed");
                self.finish_failed(&ctx.lease, run, counts, &error).await
            }
            SyncError::Transient(_) | SyncError::Store(_) if ctx.attempt < job.max_attempts => {
                Err(JobError::Retry(format!("{}: {}", error.code(), public_message(&error))))
            }
            SyncError::Transient(_) | SyncError::Store(_) => {
                tracing::error!(%connection, run = %run.id, code = error.code(), error = %public_message(&error),
                    "sync run failed after its last attempt");
                self.finish_failed(&ctx.lease, run, counts, &error).await?;
                self.successor(run).await;
                Err(JobError::Permanent(error.code().into()))
            }
            _ => {
                tracing::warn!(%connection, run = %run.id, code = error.code(), error = %public_message(&error),
                    "sync run failed");
                self.finish_failed(&ctx.lease, run, counts, &error).await?;
                self.successor(run).await;
                Ok(())
            }
        }
    }

    async fn finish_failed(
        &self,
        lease: &LeaseRef,
        run: &SyncRun,
        counts: Counts,
        error: &SyncError,
    ) -> Result<(), JobError> {
        let finish = RunFinish {
            status: SyncRunStatus::Failed,
            api_calls: counts.api_calls,
            upserted: counts.upserted,
            deleted: counts.deleted,
            error_code: Some(error.code().into()),
            error_message: Some(public_message(error)),
        };
        self.finish(lease, run, finish).await
    }

    async fn finish(&self, lease: &LeaseRef, run: &SyncRun, finish: RunFinish) -> Result<(), JobError> {
        let now = self.deps.clock.now();
        self.deps.store.finish_sync_run(lease, run.id, finish, now).await.map(drop).map_err(store_retry)
    }

    /// After a Monday connection's initial sync: queues the registration of its board webhooks
    /// (`monday.webhooks.register`, run by the webhooks capability). Logged only on failure: a
    /// reconnect's initial sync queues it again.
    async fn register_board_webhooks(&self, run: &SyncRun) {
        let now = self.deps.clock.now();
        let payload =
            patchbay_store::MondayWebhooksPayload { tenant_id: run.tenant_id, connection_id: run.connection_id };
        let job = payload.job(patchbay_store::MONDAY_WEBHOOKS_REGISTER, now);
        if let Err(e) = self.deps.store.enqueue(job, now).await {
            tracing::warn!(connection = %run.connection_id, error = %e, "monday webhook registration not queued");
        }
    }

    /// Queues the next scheduled run at the backstop: longer when change signals watch every
    /// part. A failure here is logged only: the repair sweep queues a run for any active
    /// connection left without one.
    async fn successor(&self, run: &SyncRun) {
        let deps = &self.deps;
        let now = deps.clock.now();
        let states = match deps.store.sync_states(run.connection_id).await {
            Ok(states) => states,
            Err(e) => {
                tracing::warn!(connection = %run.connection_id, error = %e, "sync successor not queued");
                return;
            }
        };
        let backstop = if signals_healthy(&states, now) {
            deps.settings.backstop_with_signal
        } else {
            deps.settings.backstop_without_signal
        };
        let request = SyncRequest {
            tenant_id: run.tenant_id,
            connection_id: run.connection_id,
            resource: run.resource,
            trigger: SyncTrigger::Schedule,
            run_at: now + chrono::Duration::from_std(backstop).unwrap_or_default(),
            priority: SyncRequest::INCREMENTAL_PRIORITY,
        };
        match deps.store.request_sync(request, now).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                tracing::debug!(connection = %run.connection_id, "no successor: the connection is not active")
            }
            Err(e) => tracing::warn!(connection = %run.connection_id, error = %e, "sync successor not queued"),
        }
    }
}

/// Longest error message kept on a run.
const MESSAGE_MAX: usize = 200;

/// A failed run's message: the error's own text (which never holds provider bodies: transports
/// and verdicts are described by class), except store errors, which may quote SQL.
fn public_message(error: &SyncError) -> String {
    let text = match error {
        SyncError::Store(_) => "a store operation failed".to_owned(),
        other => other.to_string(),
    };
    match text.char_indices().nth(MESSAGE_MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests;
