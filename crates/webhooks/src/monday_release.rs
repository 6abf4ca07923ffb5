//! Releasing a disconnecting connection's board webhooks (architecture §4.6): each webhook it
//! used passes to another connection of the account syncing the board, or — when it was the
//! last one — is deleted at Monday with the leaving connection's own token (the disconnect job
//! waits for this before it revokes and destroys that token) and then in the store.

use async_trait::async_trait;
use patchbay_store::{
    Job, JobContext, JobError, JobHandler, MondayWebhook, MondayWebhookLeave, MondayWebhooksPayload, StoreError,
    TenantScope,
};
use patchbay_sync::SyncDeps;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

/// Runs `monday.webhooks.release`.
#[derive(Clone, Debug)]
pub struct MondayReleaseJob {
    pub deps: SyncDeps,
}

const DELETE: &str = "mutation ($id: ID!) { delete_webhook(id: $id) { id board_id } }";

impl MondayReleaseJob {
    /// Deletes `webhook` at Monday with the leaving connection's token. A disconnecting
    /// connection serves no token through the vault's normal path (and opens no sync session),
    /// so the credential is opened directly, as the disconnect job does to revoke it. One
    /// call per deleted webhook, outside the rate budget. Best effort: `false` when it failed.
    async fn delete_remote(&self, payload: &MondayWebhooksPayload, webhook: &MondayWebhook, monday_id: &str) -> bool {
        let scope = TenantScope::new(payload.tenant_id);
        let credential = match self.deps.store.credential_for_disconnect(scope, payload.connection_id).await {
            Ok(credential) => credential,
            Err(e) => {
                tracing::warn!(webhook = %webhook.id, error = %e, "no credential to delete the monday webhook with");
                return false;
            }
        };
        let Ok(set) = self.deps.tokens.open(&credential) else { return false };
        let settings = &self.deps.settings;
        let answer = self
            .deps
            .http
            .post(settings.monday_api_url.clone())
            .header("authorization", set.access_token.expose_secret())
            .header("api-version", &settings.monday_api_version)
            .json(&json!({ "query": DELETE, "variables": { "id": monday_id } }))
            .send()
            .await;
        let body: Option<Value> = match answer {
            Ok(response) if response.status().is_success() => response.json().await.ok(),
            _ => None,
        };
        let deleted = body.as_ref().is_some_and(|b| {
            b.pointer("/data/delete_webhook/id").is_some()
                || b["errors"].as_array().is_some_and(|errors| {
                    errors.iter().any(|e| e.pointer("/extensions/code") == Some(&json!("ResourceNotFoundException")))
                })
        });
        if !deleted {
            tracing::warn!(webhook = %webhook.id, "the monday webhook could not be deleted at monday");
        }
        deleted
    }
}

#[async_trait]
impl JobHandler for MondayReleaseJob {
    async fn run(&self, job: &Job, _ctx: JobContext) -> Result<(), JobError> {
        let payload = MondayWebhooksPayload::from_job(job).map_err(JobError::Permanent)?;
        let store = &self.deps.store;
        let webhooks = store
            .monday_webhooks_of_connection(payload.connection_id)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        for webhook in webhooks {
            match store.leave_monday_webhook(webhook.id, payload.connection_id).await {
                Ok(MondayWebhookLeave::HandedOver { connection_id, .. }) => {
                    tracing::info!(webhook = %webhook.id, to = %connection_id, "monday webhook handed over");
                }
                Ok(MondayWebhookLeave::Last(webhook)) => {
                    if let Some(monday_id) = webhook.monday_webhook_id.clone() {
                        self.delete_remote(&payload, &webhook, &monday_id).await;
                    }
                    store.delete_unused_monday_webhook(webhook.id).await.map_err(|e| JobError::Retry(e.to_string()))?;
                    tracing::info!(webhook = %webhook.id, "monday webhook deleted: its last connection left");
                }
                Ok(MondayWebhookLeave::Left | MondayWebhookLeave::NotAUser) => {}
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(JobError::Retry(e.to_string())),
            }
        }
        Ok(())
    }
}
