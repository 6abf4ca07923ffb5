//! Monday board webhooks (architecture §3, §4.4, §4.6): one per (Monday account, board, event),
//! owned by one connection and shared by every connection of that account syncing the board.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A Monday board webhook as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MondayWebhook {
    /// Patchbay's id: the delivery URL is `{PUBLIC_URL}/webhooks/monday/{id}`.
    pub id: uuid::Uuid,
    /// Monday's webhook id; `None` until `create_webhook` has answered.
    pub monday_webhook_id: Option<String>,
    pub account_id: String,
    pub board_id: String,
    /// Monday's `WebhookEventType` (`create_item`, `change_column_value`, …).
    pub event: String,
    pub owner_tenant_id: TenantId,
    pub owner_connection_id: ConnectionId,
    pub created_at: DateTime<Utc>,
}

/// Input for [`MondayWebhookStore::claim_monday_webhook`].
#[derive(Clone, Debug)]
pub struct NewMondayWebhook {
    pub id: uuid::Uuid,
    pub account_id: String,
    pub board_id: String,
    pub event: String,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub now: DateTime<Utc>,
}

/// What claiming a (account, board, event) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MondayWebhookClaim {
    /// A new row owned by the caller: it must now create the webhook at Monday.
    Created(MondayWebhook),
    /// The account already has this webhook (the caller joined its users).
    Existing(MondayWebhook),
}

/// What [`MondayWebhookStore::leave_monday_webhook`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MondayWebhookLeave {
    /// The connection did not use the webhook (or it is gone).
    NotAUser,
    /// The connection left; it was not the owner, so nothing else changed.
    Left,
    /// Another user remains; ownership is (now) that connection's.
    HandedOver { tenant_id: TenantId, connection_id: ConnectionId },
    /// The connection was the last user: the row is kept (owned by it) so the caller can
    /// delete the webhook at Monday, then call [`MondayWebhookStore::delete_unused_monday_webhook`].
    Last(MondayWebhook),
}

/// Monday board webhooks and the connections that use them.
#[async_trait]
pub trait MondayWebhookStore: Send + Sync {
    /// In one transaction: the webhook for (account, board, event) is created owned by the
    /// connection unless it exists; either way the connection is one of its users.
    async fn claim_monday_webhook(&self, new: NewMondayWebhook) -> StoreResult<MondayWebhookClaim>;
    /// Records Monday's id once `create_webhook` succeeded.
    async fn set_monday_webhook_remote_id(&self, id: uuid::Uuid, monday_webhook_id: &str) -> StoreResult<()>;
    /// A webhook by Patchbay id (ingestion knows only the URL's id).
    async fn find_monday_webhook(&self, id: uuid::Uuid) -> StoreResult<MondayWebhook>;
    /// The webhooks the connection uses (owned or shared), by id.
    async fn monday_webhooks_of_connection(&self, connection: ConnectionId) -> StoreResult<Vec<MondayWebhook>>;
    /// The connections (tenant, connection) using the webhook, oldest first.
    async fn monday_webhook_users(&self, id: uuid::Uuid) -> StoreResult<Vec<(TenantId, ConnectionId)>>;
    /// In one transaction: the connection stops using the webhook; if it owned it, ownership
    /// passes to the oldest remaining user.
    async fn leave_monday_webhook(&self, id: uuid::Uuid, connection: ConnectionId) -> StoreResult<MondayWebhookLeave>;
    /// Every visible Monday connection of the account, in every tenant (lifecycle `uninstall`).
    async fn monday_account_connections(&self, account_id: &str) -> StoreResult<Vec<(TenantId, ConnectionId)>>;
    /// Deletes the row unless a connection uses it again (one claimed it after the last user
    /// left); says whether it was deleted.
    async fn delete_unused_monday_webhook(&self, id: uuid::Uuid) -> StoreResult<bool>;
}

/// The job kind that registers a connection's board webhooks after its initial sync.
pub const MONDAY_WEBHOOKS_REGISTER: &str = "monday.webhooks.register";
/// The job kind that hands over or deletes a disconnecting connection's board webhooks.
pub const MONDAY_WEBHOOKS_RELEASE: &str = "monday.webhooks.release";

/// Payload of the two Monday webhook jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MondayWebhooksPayload {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
}

impl MondayWebhooksPayload {
    /// The job of `kind` ([`MONDAY_WEBHOOKS_REGISTER`] or [`MONDAY_WEBHOOKS_RELEASE`]), one
    /// queued per connection and kind, due at `now`.
    pub fn job(&self, kind: &str, now: DateTime<Utc>) -> NewJob {
        let mut job = NewJob::new(kind, serde_json::json!(self), now);
        job.dedup_key = Some(format!("{kind}:{}", self.connection_id));
        job
    }

    /// Reads a stored job's payload.
    pub fn from_job(job: &Job) -> Result<Self, String> {
        serde_json::from_value(job.payload.clone()).map_err(|e| format!("bad {} payload: {e}", job.kind))
    }
}
