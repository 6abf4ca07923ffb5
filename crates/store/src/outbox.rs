//! The event outbox: written in the same transaction as the change it announces, read by the
//! dispatcher that delivers events out.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

crate::text_enum! {
    /// What an outbox event announces (architecture §4.5). Stored and sent as its dotted name.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum EventType as "event type" {
        /// A connect stored a new connection.
        ConnectionCreated = "connection.created",
        /// The connection cannot be used until its user reconnects (dead grant, missing scopes).
        ConnectionNeedsReauth = "connection.needs_reauth",
        /// The provider says the grant was revoked or the app uninstalled.
        ConnectionRevoked = "connection.revoked",
        /// A connection that needed its user works again.
        ConnectionRecovered = "connection.recovered",
        /// Disconnect finished: credential destroyed, tombstone written.
        ConnectionDeleted = "connection.deleted",
        /// A sync run finished.
        SyncCompleted = "sync.completed",
        /// A sync run failed.
        SyncFailed = "sync.failed",
        /// A third-party webhook was stored.
        WebhookReceived = "webhook.received",
        /// An event endpoint failed for too long and was disabled (sent to the tenant's other
        /// endpoints subscribed to it).
        EndpointDisabled = "endpoint.disabled",
        /// A test event asked for with `POST /v1/event-endpoints/{id}/test`: delivered to that
        /// endpoint only, never dispatched.
        EndpointTest = "endpoint.test",
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An event waiting in (or delivered from) the outbox.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxEvent {
    pub id: EventId,
    /// Store-wide insertion order (what the dispatcher and `list_events` page by).
    pub position: i64,
    pub tenant_id: TenantId,
    pub connection_id: Option<ConnectionId>,
    pub event_type: EventType,
    /// Per-connection sequence, so consumers can discard stale retries; `None` for events that
    /// belong to no connection.
    pub sequence: Option<i64>,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Input for [`crate::OutboxStore::append_event`].
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub tenant_id: TenantId,
    pub connection_id: Option<ConnectionId>,
    pub event_type: EventType,
    pub payload: serde_json::Value,
}

/// The event outbox: written by whichever operation changes state, read by the dispatcher.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Appends an event on its own (operations that change state write theirs themselves).
    async fn append_event(&self, event: NewEvent) -> StoreResult<OutboxEvent>;
    /// The tenant's events after `after_position`, in position order.
    async fn list_events(&self, scope: TenantScope, after_position: i64, limit: u32) -> StoreResult<Vec<OutboxEvent>>;
}
