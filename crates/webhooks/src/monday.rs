//! Monday board webhooks in (architecture §4.4): `/webhooks/monday/{id}` and
//! `/webhooks/monday/lifecycle`, after the HTTP layer has enforced the size limit and read the
//! raw bytes. A board delivery is a challenge (echoed, nothing stored) or a JWT-verified event
//! committed to the inbox once per (webhook, `triggerUuid`); the lifecycle `uninstall` revokes
//! every connection of the account in every tenant.
//!
//! `{id}` is Patchbay's id of the webhook row, not Monday's: Monday posts its challenge to the
//! URL before `create_webhook` answers with its id, so the URL must exist first (the row is
//! written, then the webhook created, then Monday's id recorded).

use crate::batcher::Batcher;
use crate::inbox::body_aad;
use crate::monday_jwt::{self, JwtRejection};
use patchbay_store::{
    Clock, ConnectionStatus, NewWebhookEvent, StatusChange, Store, StoreError, TenantScope, WebhookEventId,
    WebhookInsert, WebhookSourceKind,
};
use patchbay_token_vault::Vault;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// What a board delivery came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MondayIngested {
    /// A URL-verification challenge: answer 200 with these bytes (the body, unchanged).
    Challenge(Vec<u8>),
    /// Newly stored in the inbox.
    Stored(WebhookEventId),
    /// A redelivery of a stored event (same webhook, same `triggerUuid`).
    Duplicate,
}

/// What a lifecycle delivery did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MondayLifecycle {
    /// `uninstall`: this many connections were revoked.
    Uninstalled { revoked: usize },
    /// Another lifecycle event: acknowledged, nothing done.
    Ignored,
}

/// Why a delivery was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum MondayIngestError {
    /// 401 with an empty body; the reason is for the log only.
    #[error("refused: {0}")]
    Refused(String),
    /// 503: the store could not answer or commit.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<JwtRejection> for MondayIngestError {
    fn from(rejection: JwtRejection) -> Self {
        Self::Refused(rejection.to_string())
    }
}

/// The secrets and URL Monday's deliveries are checked against.
#[derive(Clone)]
pub struct MondaySecrets {
    /// `PATCHBAY_PUBLIC_URL`, the root the webhook URLs are built from.
    pub public_url: String,
    /// `PATCHBAY_MONDAY_SIGNING_SECRET`: board webhooks.
    pub signing_secret: Option<SecretString>,
    /// `PATCHBAY_MONDAY_CLIENT_SECRET`: lifecycle webhooks.
    pub client_secret: Option<SecretString>,
}

/// Board webhook URLs and ingestion.
#[derive(Clone)]
pub struct MondayHooks {
    store: Arc<dyn Store>,
    vault: Vault,
    batcher: Batcher,
    clock: Arc<dyn Clock>,
    secrets: MondaySecrets,
}

impl std::fmt::Debug for MondayHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MondayHooks").field("public_url", &self.secrets.public_url).finish_non_exhaustive()
    }
}

/// `{public_url}/webhooks/monday/{id}`: where Monday posts a board webhook's events.
pub fn board_url(public_url: &str, id: uuid::Uuid) -> String {
    format!("{}/webhooks/monday/{id}", public_url.trim_end_matches('/'))
}

/// `{public_url}/webhooks/monday/lifecycle`.
pub fn lifecycle_url(public_url: &str) -> String {
    format!("{}/webhooks/monday/lifecycle", public_url.trim_end_matches('/'))
}

/// A `{"challenge": "<string>"}` body and nothing else.
fn is_challenge(body: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map.len() == 1 && map.get("challenge").is_some_and(Value::is_string),
        _ => false,
    }
}

fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

impl MondayHooks {
    pub fn new(
        store: Arc<dyn Store>,
        vault: Vault,
        batcher: Batcher,
        clock: Arc<dyn Clock>,
        secrets: MondaySecrets,
    ) -> Self {
        Self { store, vault, batcher, clock, secrets }
    }

    /// The URL of the webhook row `id`.
    pub fn board_url(&self, id: uuid::Uuid) -> String {
        board_url(&self.secrets.public_url, id)
    }

    /// A board delivery to `/webhooks/monday/{id}`: unknown ids are refused; a challenge is
    /// echoed; anything else must carry a verifying JWT for this exact URL and the webhook's
    /// account, and is then committed once per (webhook, `triggerUuid`).
    #[tracing::instrument(skip_all, fields(webhook = %id))]
    pub async fn ingest_board(
        &self,
        id: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<MondayIngested, MondayIngestError> {
        let Ok(id) = id.parse::<uuid::Uuid>() else {
            return Err(MondayIngestError::Refused("malformed webhook id".into()));
        };
        let webhook = match self.store.find_monday_webhook(id).await {
            Ok(webhook) => webhook,
            Err(StoreError::NotFound) => return Err(MondayIngestError::Refused("unknown webhook".into())),
            Err(e) => return Err(MondayIngestError::Unavailable(e.to_string())),
        };
        // The challenge has no side effect, so it needs no signature (whether Monday signs it
        // is unconfirmed); it is only answered at a URL Patchbay registered.
        if is_challenge(body) {
            return Ok(MondayIngested::Challenge(body.to_vec()));
        }
        let secret = self
            .secrets
            .signing_secret
            .as_ref()
            .ok_or_else(|| MondayIngestError::Refused("PATCHBAY_MONDAY_SIGNING_SECRET is not configured".into()))?;
        let now = self.clock.now();
        let token = monday_jwt::token_of(authorization)?;
        let claims =
            monday_jwt::verify(token, secret.expose_secret().as_bytes(), &self.board_url(id), now.timestamp())?;
        if claims.account_id != webhook.account_id {
            return Err(JwtRejection::Account.into());
        }
        // Verified: now the body may be read, for its dedup key only.
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let dedup_key = parsed
            .as_ref()
            .and_then(|b| b.get("event"))
            .and_then(|e| e.get("triggerUuid"))
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty() && k.len() <= 255)
            .map_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(body))), str::to_owned);
        let event_id = WebhookEventId::new();
        // The event is the account's, shared by connections of several tenants: no tenant.
        let event = NewWebhookEvent {
            id: event_id,
            source_kind: WebhookSourceKind::Monday,
            source_id: id.to_string(),
            tenant_id: None,
            dedup_key,
            received_at: now,
            headers: serde_json::json!({ "account_id": claims.account_id }),
            key_id: self.vault.ring().primary_id(),
            body: self.vault.encrypt(body, &body_aad(None, event_id)),
        };
        match self.batcher.submit(event).await {
            Ok(WebhookInsert::Stored(id)) => Ok(MondayIngested::Stored(id)),
            Ok(WebhookInsert::Duplicate) => Ok(MondayIngested::Duplicate),
            Err(e) => Err(MondayIngestError::Unavailable(e.0)),
        }
    }

    /// A lifecycle delivery to `/webhooks/monday/lifecycle`, signed with the client secret.
    /// `uninstall` revokes every visible connection of the account in every tenant (each
    /// with its `connection.revoked` event, through the store's status change).
    #[tracing::instrument(skip_all)]
    pub async fn ingest_lifecycle(
        &self,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<MondayLifecycle, MondayIngestError> {
        let secret = self
            .secrets
            .client_secret
            .as_ref()
            .ok_or_else(|| MondayIngestError::Refused("PATCHBAY_MONDAY_CLIENT_SECRET is not configured".into()))?;
        let now = self.clock.now();
        let token = monday_jwt::token_of(authorization)?;
        let audience = lifecycle_url(&self.secrets.public_url);
        let claims = monday_jwt::verify(token, secret.expose_secret().as_bytes(), &audience, now.timestamp())?;
        let body: Value =
            serde_json::from_slice(body).map_err(|_| MondayIngestError::Refused("body is not JSON".into()))?;
        if body.get("type").and_then(Value::as_str) != Some("uninstall") {
            return Ok(MondayLifecycle::Ignored);
        }
        let account = id_text(body.get("data").and_then(|d| d.get("account_id")))
            .ok_or_else(|| MondayIngestError::Refused("uninstall without data.account_id".into()))?;
        if account != claims.account_id {
            return Err(JwtRejection::Account.into());
        }
        let connections = self
            .store
            .monday_account_connections(&account)
            .await
            .map_err(|e| MondayIngestError::Unavailable(e.to_string()))?;
        let mut revoked = 0;
        for (tenant, connection) in connections {
            let change = StatusChange {
                status: ConnectionStatus::Revoked,
                reason: Some("monday_uninstall".into()),
                actor: "monday".into(),
                now,
            };
            match self.store.set_connection_status(TenantScope::new(tenant), connection, change).await {
                Ok(_) => revoked += 1,
                // Disconnected meanwhile: nothing left to revoke.
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(MondayIngestError::Unavailable(e.to_string())),
            }
        }
        tracing::warn!(account = %account, revoked, "monday app uninstalled; the account's connections are revoked");
        Ok(MondayLifecycle::Uninstalled { revoked })
    }
}
