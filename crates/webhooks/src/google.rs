//! Google Calendar push notifications in (architecture §4.4, providers.md B7, security.md O2–O4):
//! the ingest of `POST /webhooks/google/calendar` and the [`GoogleApplier`] that turns a stored
//! `exists` notification into a dirty calendar and a soon, coalesced incremental sync.
//!
//! Authentication: `X-Goog-Channel-ID` finds the channel row; the SHA-256 of
//! `X-Goog-Channel-Token` must equal the stored hash (compared in constant time); once the
//! resource id is known `X-Goog-Resource-ID` must equal it. Unknown, stopped and expired channels
//! are acknowledged and ignored (Google keeps delivering to a channel until it expires whatever we
//! answer). `X-Goog-Resource-URI` is never read.

use crate::apply::{Applier, ApplyError};
use crate::batcher::Batcher;
use crate::inbox::body_aad;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::{
    Clock, ConnectionId, NewWebhookEvent, Store, StoreError, SyncRequest, SyncResource, SyncTrigger, WatchChannel,
    WatchMessage, WebhookEvent, WebhookEventId, WebhookInsert, WebhookSourceKind,
};
use patchbay_store::{ProviderId, TenantId};
use patchbay_token_vault::Vault;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Why a notification was refused (answered 401 with an empty body; logged, never the token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GoogleRejection {
    #[error("missing or malformed header {0}")]
    Header(&'static str),
    #[error("channel token does not match")]
    Token,
    #[error("resource id does not match the channel's")]
    Resource,
}

/// What became of an accepted notification (every one is answered 200).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoogleOutcome {
    /// `sync`: the channel is confirmed (its resource id stored if it was not known yet).
    Confirmed,
    /// `exists`: newly stored in the inbox.
    Stored(WebhookEventId),
    /// `exists` with a message number already stored for this channel.
    Duplicate,
    /// Acknowledged and ignored: unknown, stopped or expired channel, or another state.
    Ignored(&'static str),
}

/// Why a notification was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    #[error("rejected: {0}")]
    Rejected(GoogleRejection),
    /// The store could not answer or commit (503; Google retries 5xx with backoff).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// What a stored Google notification holds (sealed like every inbox body; Google's own body
/// is empty): where the change is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GoogleNotice {
    pub connection_id: ConnectionId,
    pub calendar_id: String,
    pub channel_id: String,
    pub message_number: i64,
}

/// Receives Google push notifications.
#[derive(Clone)]
pub struct GooglePushIn {
    store: Arc<dyn Store>,
    vault: Vault,
    batcher: Batcher,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for GooglePushIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GooglePushIn").finish_non_exhaustive()
    }
}

fn header<'h>(headers: &'h http::HeaderMap, name: &'static str) -> Result<&'h str, GoogleError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .ok_or(GoogleError::Rejected(GoogleRejection::Header(name)))
}

/// Equality of two hashes without an early exit.
fn same_hash(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unavailable(e: StoreError) -> GoogleError {
    GoogleError::Unavailable(e.to_string())
}

impl GooglePushIn {
    pub fn new(store: Arc<dyn Store>, vault: Vault, batcher: Batcher, clock: Arc<dyn Clock>) -> Self {
        Self { store, vault, batcher, clock }
    }

    /// Authenticates and handles one notification; `Ok` is answered 200.
    #[tracing::instrument(skip_all)]
    pub async fn ingest(&self, headers: &http::HeaderMap) -> Result<GoogleOutcome, GoogleError> {
        let channel_id = header(headers, "x-goog-channel-id")?;
        let channel = match self.store.find_watch_channel(channel_id).await {
            Ok(channel) => channel,
            Err(StoreError::NotFound) => return Ok(GoogleOutcome::Ignored("unknown channel")),
            Err(e) => return Err(unavailable(e)),
        };
        let token = header(headers, "x-goog-channel-token")?;
        let presented = patchbay_sync::google::watch::token_sha256(token);
        if !same_hash(&presented, &channel.token_sha256) {
            return Err(GoogleError::Rejected(GoogleRejection::Token));
        }
        let resource = header(headers, "x-goog-resource-id")?;
        if channel.resource_id.as_deref().is_some_and(|known| known != resource) {
            return Err(GoogleError::Rejected(GoogleRejection::Resource));
        }
        let now = self.clock.now();
        if !channel.is_live(now) {
            return Ok(GoogleOutcome::Ignored("stopped or expired channel"));
        }
        let state = header(headers, "x-goog-resource-state")?;
        match state {
            "sync" => {
                self.confirm(&channel, resource).await?;
                Ok(GoogleOutcome::Confirmed)
            }
            "exists" => {
                let number = header(headers, "x-goog-message-number")?
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(GoogleError::Rejected(GoogleRejection::Header("x-goog-message-number")))?;
                if channel.resource_id.is_none() {
                    self.confirm(&channel, resource).await?;
                }
                self.store_exists(&channel, number, now).await
            }
            _ => Ok(GoogleOutcome::Ignored("resource state without meaning for calendars")),
        }
    }

    async fn confirm(&self, channel: &WatchChannel, resource: &str) -> Result<(), GoogleError> {
        match self.store.confirm_watch_channel(&channel.id, resource, None).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(_)) => Err(GoogleError::Rejected(GoogleRejection::Resource)),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn store_exists(
        &self,
        channel: &WatchChannel,
        number: i64,
        now: DateTime<Utc>,
    ) -> Result<GoogleOutcome, GoogleError> {
        let notice = GoogleNotice {
            connection_id: channel.connection_id,
            calendar_id: channel.calendar_id.clone(),
            channel_id: channel.id.clone(),
            message_number: number,
        };
        let body = serde_json::to_vec(&notice).map_err(|e| GoogleError::Unavailable(e.to_string()))?;
        let id = WebhookEventId::new();
        let tenant = Some(channel.tenant_id);
        let event = NewWebhookEvent {
            id,
            source_kind: WebhookSourceKind::Google,
            source_id: channel.id.clone(),
            tenant_id: tenant,
            dedup_key: number.to_string(),
            received_at: now,
            headers: serde_json::json!({
                "x-goog-channel-id": channel.id,
                "x-goog-message-number": number.to_string(),
                "x-goog-resource-state": "exists",
            }),
            key_id: self.vault.ring().primary_id(),
            body: self.vault.encrypt(&body, &body_aad(tenant, id)),
        };
        let outcome = match self.batcher.submit(event).await {
            Ok(WebhookInsert::Stored(id)) => GoogleOutcome::Stored(id),
            Ok(WebhookInsert::Duplicate) => GoogleOutcome::Duplicate,
            Err(e) => return Err(GoogleError::Unavailable(e.0)),
        };
        // Bookkeeping only (the inbox row is the dedup): a failure here loses nothing.
        match self.store.note_watch_message(&channel.id, number, now).await {
            Ok(WatchMessage::Advanced | WatchMessage::Stale) => {}
            Err(e) => tracing::warn!(channel = %channel.id, error = %e, "last message number not recorded"),
        }
        Ok(outcome)
    }
}

/// Applies stored Google notifications: marks the calendar's events part dirty and asks for an
/// incremental run `coalesce` from now. Requests merge into the connection's pending run, so a
/// burst of notifications makes one run, not one each.
#[derive(Clone)]
pub struct GoogleApplier {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// How long a run waits for more notifications before it starts.
    pub coalesce: Duration,
}

impl std::fmt::Debug for GoogleApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleApplier").field("coalesce", &self.coalesce).finish_non_exhaustive()
    }
}

#[async_trait]
impl Applier for GoogleApplier {
    async fn apply(&self, event: &WebhookEvent, body: &[u8]) -> Result<(), ApplyError> {
        let notice: GoogleNotice = serde_json::from_slice(body)
            .map_err(|_| ApplyError::Permanent("not a stored Google notification".into()))?;
        let tenant: TenantId = event.tenant_id.ok_or_else(|| ApplyError::Permanent("no tenant".into()))?;
        let now = self.clock.now();
        let part = patchbay_sync::google::watch::events_part(&notice.calendar_id);
        match self.store.mark_dirty(notice.connection_id, &part, now).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(ApplyError::Transient(e.to_string())),
        }
        let request = SyncRequest {
            tenant_id: tenant,
            connection_id: notice.connection_id,
            resource: SyncResource::of(ProviderId::Google),
            trigger: SyncTrigger::Webhook,
            run_at: now + chrono::Duration::from_std(self.coalesce).unwrap_or_default(),
            priority: SyncRequest::INCREMENTAL_PRIORITY,
        };
        match self.store.request_sync(request, now).await {
            Ok(_) => Ok(()),
            // Not active any more: nothing to sync (a reconnect syncs everything).
            Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(ApplyError::Transient(e.to_string())),
        }
    }
}
