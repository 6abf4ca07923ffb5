//! The disconnect job (architecture §4.6): revoke at the provider where possible (a 503
//! retries the job), then — whatever the provider said — destroy the credential, tombstone the
//! connection and emit `connection.deleted`.

use crate::tokens::Tokens;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_oauth::{ErrorClass, OAuthClient, ProviderId, Registry, RevokeOutcome, TokenTypeHint};
use patchbay_store::queue::{JobContext, JobError, JobHandler};
use patchbay_store::{ConnectionId, Job, NewJob, Store, StoreError, TenantId, TenantScope};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The job kind.
pub const KIND: &str = "connection.disconnect";

#[derive(Serialize, Deserialize)]
struct Payload {
    tenant_id: TenantId,
    connection_id: ConnectionId,
}

/// The disconnect job for one connection.
pub fn job(tenant_id: TenantId, connection_id: ConnectionId, now: DateTime<Utc>) -> NewJob {
    let mut job = NewJob::new(KIND, serde_json::json!(Payload { tenant_id, connection_id }), now);
    job.priority = 10;
    job.max_attempts = 12;
    job.dedup_key = Some(format!("{KIND}:{connection_id}"));
    job.concurrency_key = Some(format!("connection:{connection_id}"));
    job
}

/// Runs disconnect jobs.
pub struct DisconnectHandler {
    pub store: Arc<dyn Store>,
    pub tokens: Arc<Tokens>,
    pub oauth: Arc<OAuthClient>,
    pub registry: Registry,
}

#[async_trait]
impl JobHandler for DisconnectHandler {
    async fn run(&self, job: &Job, _ctx: JobContext) -> Result<(), JobError> {
        let payload: Payload = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
        let scope = TenantScope::new(payload.tenant_id);
        let id = payload.connection_id;
        let connection = match self.store.connection_for_job(scope, id).await {
            Ok(connection) => connection,
            Err(StoreError::NotFound) => return Ok(()), // already gone
            Err(e) => return Err(JobError::Retry(e.to_string())),
        };
        if let Ok(credential) = self.store.get_credential(scope, id).await {
            match self.tokens.open(&credential) {
                Ok(tokens) => self.revoke(&connection.provider, tokens).await?,
                // Undecryptable: nothing to revoke with; local cleanup still happens.
                Err(e) => {
                    tracing::warn!(connection = %id, error = %e, "disconnect: credential unreadable; skipping revoke")
                }
            }
        }
        self.store.finish_disconnect(scope, id, Utc::now()).await.map_err(|e| JobError::Retry(e.to_string()))?;
        tracing::info!(connection = %id, "connection disconnected");
        Ok(())
    }
}

impl DisconnectHandler {
    /// Revokes the refresh token (which ends the grant where the provider supports it), else the
    /// access token. Only a transient provider failure fails the job (RFC 7009 §2.2.1: a 503
    /// means the token may still be valid).
    async fn revoke(&self, provider: &str, tokens: patchbay_oauth::TokenSet) -> Result<(), JobError> {
        let Some(config) = provider.parse::<ProviderId>().ok().and_then(|id| self.registry.get(id)) else {
            return Ok(());
        };
        let (token, hint) = match &tokens.refresh_token {
            Some(refresh) => (refresh, TokenTypeHint::RefreshToken),
            None => (&tokens.access_token, TokenTypeHint::AccessToken),
        };
        match self.oauth.revoke(config, token, Some(hint)).await {
            Ok(RevokeOutcome::Revoked) | Ok(RevokeOutcome::NotSupported) => Ok(()),
            Err(e) if matches!(e.class(), ErrorClass::Transient { .. } | ErrorClass::RateLimited { .. }) => {
                Err(JobError::Retry(format!("revocation failed: {}", e.reason())))
            }
            Err(e) => {
                tracing::warn!(provider, reason = e.reason(), "revocation refused; cleaning up locally");
                Ok(())
            }
        }
    }
}
