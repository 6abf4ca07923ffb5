//! The disconnect job (architecture §4.6). Revocation is best effort; the rest is not: whatever
//! the provider says, the credential is destroyed, the tombstone written, `connection.deleted`
//! emitted, and the audit record says what became of the provider grant.

use async_trait::async_trait;
use chrono::Utc;
use patchbay_oauth::{OAuthClient, Registry, RevokeVerdict};
use patchbay_store::{
    ConnectionId, DisconnectPayload, Job, JobContext, JobError, JobHandler, JobPayload, NewAuditEvent, Store,
    StoreError, SyncPurgePayload, TenantScope, WatchStopPayload,
};
use patchbay_token_vault::{revoke_grant, Tokens};
use std::sync::Arc;
use std::time::Duration;

/// How long the job holds the credential's refresh lease (longer than a revocation takes).
const LEASE: Duration = Duration::from_secs(60);
/// How long it waits for a refresh in flight before trying again later.
const REFRESH_WAIT: Duration = Duration::from_secs(20);
/// How long the job waits for its Monday board webhooks to be released before going on.
const RELEASE_WAIT: Duration = Duration::from_secs(600);

/// Runs `connection.disconnect` jobs.
pub struct DisconnectJob {
    pub store: Arc<dyn Store>,
    pub tokens: Arc<Tokens>,
    pub oauth: Arc<OAuthClient>,
    pub registry: Registry,
    /// Attempts after which a revocation that keeps failing transiently is given up (the
    /// cleanup then happens anyway). Should be below the job's `max_attempts`.
    pub revoke_attempts: i32,
}

/// What became of the grant, as the audit record says it.
fn audit_action(revocation: &Option<RevokeVerdict>) -> &'static str {
    match revocation {
        Some(RevokeVerdict::Revoked) => "connection.disconnected",
        None => "connection.disconnected.grant_shared",
        Some(_) => "connection.disconnected.grant_may_be_live",
    }
}

#[async_trait]
impl JobHandler for DisconnectJob {
    async fn run(&self, job: &Job, ctx: JobContext) -> Result<(), JobError> {
        let payload = DisconnectPayload::from_job(job).map_err(JobError::Permanent)?;
        let scope = TenantScope::new(payload.tenant_id);
        let id = payload.connection_id;
        let connection = match self.store.connection_for_job(scope, id).await {
            Ok(connection) => connection,
            // Already gone: an earlier attempt finished the cleanup; make sure its purge is queued.
            Err(StoreError::NotFound) => return self.queue_purge(payload).await,
            Err(e) => return Err(JobError::Retry(e.to_string())),
        };
        if let Some(wait) = self.monday_webhooks_released(&connection, job).await? {
            return Err(wait);
        }
        let owner = format!("disconnect:{}", job.id);
        self.hold_refresh_lease(scope, id, &owner).await?;
        // Google push channels are stopped first, by their own job (patchbay-sync), while the
        // stored access token still works; this job waits (without spending an attempt) until
        // that job has stopped them (at Google, or locally when it could not).
        if !self.store.open_watch_channels(id).await.map_err(|e| JobError::Retry(e.to_string()))?.is_empty() {
            let stop = WatchStopPayload { tenant_id: payload.tenant_id, connection_id: id };
            self.store.enqueue(stop.job(Utc::now()), Utc::now()).await.map_err(|e| JobError::Retry(e.to_string()))?;
            let _ = self.store.release_refresh_lease(id, &owner).await;
            return Err(JobError::Yield(Utc::now() + chrono::Duration::seconds(1)));
        }
        let revocation = match self.revoke(scope, &connection).await {
            Some(RevokeVerdict::Retry { reason, .. }) if ctx.attempt < self.revoke_attempts => {
                // RFC 7009 §2.2.1: the token may still be valid; try again later.
                let _ = self.store.release_refresh_lease(id, &owner).await;
                return Err(JobError::Retry(format!("revocation failed: {reason}")));
            }
            other => other,
        };
        if let Some(outcome) = revocation.as_ref().filter(|r| !r.is_revoked()) {
            tracing::warn!(connection = %id, outcome = ?outcome, "grant not revoked at the provider; cleaning up locally");
        }
        let audit = NewAuditEvent {
            tenant_id: Some(payload.tenant_id),
            actor: "system".into(),
            action: audit_action(&revocation).into(),
            target: Some(format!("connection:{id}")),
            request_id: None,
            ip: None,
        };
        self.store.finish_disconnect(scope, id, audit, Utc::now()).await.map_err(|e| JobError::Retry(e.to_string()))?;
        tracing::info!(connection = %id, "connection disconnected");
        self.queue_purge(payload).await
    }
}

impl DisconnectJob {
    /// Queues the deletion of the connection's synced records (run by the sync capability's
    /// `sync.purge` handler, in batches); its dedup key keeps one per connection.
    async fn queue_purge(&self, payload: DisconnectPayload) -> Result<(), JobError> {
        let now = Utc::now();
        let purge = SyncPurgePayload { tenant_id: payload.tenant_id, connection_id: payload.connection_id };
        self.store.enqueue(purge.job(now), now).await.map_err(|e| JobError::Retry(e.to_string()))?;
        Ok(())
    }

    /// Monday board webhooks the connection uses are handed over or deleted first, by the
    /// webhooks capability's `monday.webhooks.release` job (with this connection's token, so
    /// before it is revoked): queued here, waited for a bounded time, then given up on.
    async fn monday_webhooks_released(
        &self,
        connection: &patchbay_store::Connection,
        job: &Job,
    ) -> Result<Option<JobError>, JobError> {
        if connection.provider != patchbay_store::ProviderId::Monday {
            return Ok(None);
        }
        let used = self
            .store
            .monday_webhooks_of_connection(connection.id)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        let now = Utc::now();
        if used.is_empty() || now - job.created_at > chrono::Duration::from_std(RELEASE_WAIT).unwrap_or_default() {
            return Ok(None);
        }
        let payload =
            patchbay_store::MondayWebhooksPayload { tenant_id: connection.tenant_id, connection_id: connection.id };
        let release = payload.job(patchbay_store::MONDAY_WEBHOOKS_RELEASE, now);
        self.store.enqueue(release, now).await.map_err(|e| JobError::Retry(e.to_string()))?;
        Ok(Some(JobError::Yield(now + chrono::Duration::seconds(1))))
    }

    /// Takes the credential's refresh lease, so no refresh starts from now on and one in flight
    /// finishes first (its rotated token is then what gets revoked).
    async fn hold_refresh_lease(&self, scope: TenantScope, id: ConnectionId, owner: &str) -> Result<(), JobError> {
        let deadline = tokio::time::Instant::now() + REFRESH_WAIT;
        loop {
            let now = Utc::now();
            let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
            match self.store.try_lease_refresh(id, owner, until, now).await {
                Ok(true) => return Ok(()),
                // No credential row (a dead grant already destroyed it): nothing to wait for.
                Ok(false) => {
                    if let Err(StoreError::NotFound) = self.store.credential_for_disconnect(scope, id).await {
                        return Ok(());
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(JobError::Retry("a token refresh is still in flight".into()));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(JobError::Retry(e.to_string())),
            }
        }
    }

    /// Revokes the grant unless another live connection shares it. `None`: skipped (shared).
    async fn revoke(&self, scope: TenantScope, connection: &patchbay_store::Connection) -> Option<RevokeVerdict> {
        let credential = match self.store.credential_for_disconnect(scope, connection.id).await {
            Ok(credential) => credential,
            Err(StoreError::NotFound) => return Some(failed("no_credential")),
            Err(e) => return Some(retry(e)),
        };
        match self.store.grant_sharers(connection).await {
            Ok(0) => {}
            Ok(sharers) => {
                tracing::info!(connection = %connection.id, sharers, "grant shared by another connection; not revoked");
                return None;
            }
            Err(e) => return Some(retry(e)),
        }
        let Some(config) = self.registry.get(connection.provider) else {
            return Some(failed("provider_not_configured"));
        };
        match self.tokens.open(&credential) {
            Ok(set) => Some(revoke_grant(&self.oauth, config, &set).await),
            // Undecryptable: nothing to revoke with; local cleanup still happens.
            Err(e) => {
                tracing::error!(connection = %connection.id, error = %e, "disconnect: credential unreadable; not revoked");
                Some(failed("credential_unreadable"))
            }
        }
    }
}

fn failed(reason: &str) -> RevokeVerdict {
    RevokeVerdict::Failed { reason: reason.into(), status: None }
}

fn retry(error: StoreError) -> RevokeVerdict {
    RevokeVerdict::Retry { reason: format!("store: {error}"), status: None, retry_after: None }
}
