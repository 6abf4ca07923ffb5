//! Events out (architecture §3, §4.5): a tenant's event endpoints with sealed rotating secrets,
//! and one delivery row per (outbox event, subscribed endpoint) carrying its retry state.
//!
//! Dispatch is durable per event, not by a position cursor: outbox positions are handed out
//! at insert, not at commit (see the `event_outbox` migration), so a cursor could step over an
//! event whose transaction commits late. Each outbox event is instead marked `dispatched_at` in
//! the same transaction that creates its deliveries, and `(endpoint, event)` is unique, so no
//! event is skipped or doubled across restarts or instances.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

crate::text_enum! {
    /// Where one event's delivery to one endpoint is.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum EventDeliveryStatus as "event delivery status" {
        /// Not yet answered with a 2xx; `next_attempt_at` says when it is tried next.
        Pending = "pending",
        /// The endpoint answered 2xx.
        Delivered = "delivered",
        /// Every attempt of the schedule failed (or the endpoint refused it for good).
        Exhausted = "exhausted",
    }
}

impl Serialize for EventDeliveryStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A tenant's endpoint with all its stored secrets (newest first; empty in lists).
#[derive(Clone, Debug, PartialEq)]
pub struct EventEndpoint {
    pub id: EventEndpointId,
    pub tenant_id: TenantId,
    pub url: String,
    /// The event types delivered to it (never empty).
    pub event_types: Vec<EventType>,
    pub created_at: DateTime<Utc>,
    /// Set when it was disabled for failing too long; no delivery is attempted meanwhile.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Since when every attempt failed (`None` after any success).
    pub failing_since: Option<DateTime<Utc>>,
    pub secrets: Vec<SealedWebhookSecret>,
}

/// Input for [`EventOutStore::create_event_endpoint`] (ids chosen by the caller so the secret
/// can be sealed bound to them).
#[derive(Clone, Debug)]
pub struct NewEventEndpoint {
    pub id: EventEndpointId,
    pub tenant_id: TenantId,
    pub url: String,
    pub event_types: Vec<EventType>,
    pub secret: SealedWebhookSecret,
}

/// One event's delivery to one endpoint.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventDelivery {
    pub id: EventDeliveryId,
    pub tenant_id: TenantId,
    pub endpoint_id: EventEndpointId,
    /// The outbox event (its id is the `webhook-id` of every attempt).
    pub event_id: EventId,
    pub event_type: EventType,
    pub status: EventDeliveryStatus,
    pub attempts: i32,
    /// When the next attempt is due (`None` once delivered or exhausted).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last HTTP status answered, if any.
    pub last_status: Option<i32>,
    /// The last failure, in words (never a secret or a URL's query).
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// What an attempt decided, for [`EventOutStore::record_delivery_attempt`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// 2xx.
    Delivered,
    /// Failed; try again at this time.
    Retry(DateTime<Utc>),
    /// Failed for good (schedule used up, or refused for good).
    Exhausted,
}

/// One attempt's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub status: Option<i32>,
    pub error: Option<String>,
    pub outcome: AttemptOutcome,
}

/// Filters of [`EventOutStore::list_event_deliveries`].
#[derive(Clone, Debug, Default)]
pub struct EventDeliveryFilter {
    pub status: Option<EventDeliveryStatus>,
}

/// What one [`EventOutStore::dispatch_events`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dispatched {
    /// Outbox events marked dispatched.
    pub events: u32,
    /// Deliveries created for them.
    pub deliveries: u32,
}

/// Event endpoints and deliveries.
#[async_trait]
pub trait EventOutStore: Send + Sync {
    /// Creates an endpoint with its first secret.
    async fn create_event_endpoint(&self, endpoint: NewEventEndpoint) -> StoreResult<EventEndpoint>;
    /// An endpoint of the tenant with its secrets (another tenant's id is `NotFound`).
    async fn get_event_endpoint(&self, scope: TenantScope, id: EventEndpointId) -> StoreResult<EventEndpoint>;
    /// The tenant's endpoints in creation order (no secrets).
    async fn list_event_endpoints(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<EventEndpoint>>;
    /// Deletes the endpoint, its secrets and its deliveries.
    async fn delete_event_endpoint(&self, scope: TenantScope, id: EventEndpointId) -> StoreResult<()>;
    /// In one transaction: secrets expired at `now` are deleted, the others end at
    /// `old_valid_until` at the latest, and `secret` is added.
    async fn rotate_event_endpoint_secret(
        &self,
        scope: TenantScope,
        id: EventEndpointId,
        secret: SealedWebhookSecret,
        old_valid_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<EventEndpoint>;
    /// Takes up to `limit` undispatched outbox events in position order and, in one
    /// transaction, creates one pending delivery (due at `now`) per enabled endpoint of the
    /// event's tenant that subscribes to its type and existed when it was written, and marks the
    /// events dispatched. Concurrent callers never take the same event.
    async fn dispatch_events(&self, limit: u32, now: DateTime<Utc>) -> StoreResult<Dispatched>;
    /// Up to `limit` pending deliveries due at `now` of enabled endpoints, oldest due first;
    /// each is leased by moving its `next_attempt_at` to `lease_until`, so a concurrent caller
    /// does not take it and a crashed sender's delivery comes back after the lease.
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<EventDelivery>>;
    /// Records an attempt (attempts + 1) and, on the endpoint, clears `failing_since` after a
    /// 2xx or sets it (when unset) after a failure. Answers the updated endpoint.
    async fn record_delivery_attempt(
        &self,
        id: EventDeliveryId,
        attempt: DeliveryAttempt,
        now: DateTime<Utc>,
    ) -> StoreResult<EventEndpoint>;
    /// Disables the endpoint (once) and, in the same transaction, appends `event` to the outbox
    /// (the final `endpoint.disabled` event). `false` when it was already disabled.
    async fn disable_event_endpoint(
        &self,
        id: EventEndpointId,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// The endpoint's deliveries, newest first.
    async fn list_event_deliveries(
        &self,
        scope: TenantScope,
        endpoint: EventEndpointId,
        filter: &EventDeliveryFilter,
        page: Page,
    ) -> StoreResult<Paged<EventDelivery>>;
    /// Makes a delivered or exhausted delivery pending again, due at `now`, with a fresh
    /// schedule (attempts 0), and enables its endpoint again if it was disabled. A pending one
    /// is `Conflict`.
    async fn redrive_event_delivery(
        &self,
        scope: TenantScope,
        endpoint: EventEndpointId,
        id: EventDeliveryId,
        now: DateTime<Utc>,
    ) -> StoreResult<EventDelivery>;
    /// Appends `event` (already dispatched, so no other endpoint gets it) and one pending
    /// delivery of it to `endpoint`, due at `now`, in one transaction.
    async fn create_test_delivery(
        &self,
        scope: TenantScope,
        endpoint: EventEndpointId,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<EventDelivery>;
    /// An outbox event by id, whatever its tenant (the sender reads the event it delivers).
    async fn find_outbox_event(&self, id: EventId) -> StoreResult<OutboxEvent>;
    /// An endpoint by id with its secrets, whatever its tenant (the sender's read).
    async fn find_event_endpoint(&self, id: EventEndpointId) -> StoreResult<EventEndpoint>;
    /// Sealed endpoint secrets per vault key id, so a key that still seals one is never retired.
    async fn event_endpoint_key_usage(&self) -> StoreResult<Vec<WebhookKeyUsage>>;
}
