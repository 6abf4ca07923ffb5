//! Typed ids: a `ConnectionId` cannot be passed where a `TenantId` is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id, so keyset pagination by id follows creation order.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    )*};
}

typed_id!(
    /// A tenant.
    TenantId,
    /// A user within a tenant.
    UserId,
    /// An API key.
    ApiKeyId,
    /// A provider connection.
    ConnectionId,
    /// A queued job.
    JobId,
    /// An outbox event.
    EventId,
    /// An audit record.
    AuditEventId,
    /// A running instance of Patchbay.
    InstanceId,
    /// A connect session (one browser connect attempt).
    ConnectSessionId,
    /// A sync run.
    SyncRunId,
    /// A synced record (board, column, group, item, calendar or event).
    RecordId,
    /// A third-party webhook source.
    WebhookSourceId,
    /// An event in the webhook inbox.
    WebhookEventId,
    /// A tenant's event endpoint (events out).
    EventEndpointId,
    /// One event's delivery to one endpoint.
    EventDeliveryId,
);

impl RecordId {
    /// The id of a connection's record of `kind` with `provider_id`: derived (UUID v5 under the
    /// connection's id), so a sync can seal a record bound to its id before the row exists, and
    /// the same provider object always maps to the same Patchbay id.
    pub fn derive(connection: ConnectionId, kind: crate::RecordKind, provider_id: &str) -> Self {
        let mut name = Vec::with_capacity(kind.as_str().len() + 1 + provider_id.len());
        name.extend_from_slice(kind.as_str().as_bytes());
        name.push(b'\n');
        name.extend_from_slice(provider_id.as_bytes());
        Self(Uuid::new_v5(&connection.0, &name))
    }

    /// The id of a Google event: Google's event ids are unique only within one calendar (the
    /// same meeting has the same id in the organiser's and an attendee's calendar of one user),
    /// so the calendar's provider id is part of the name. Derived like [`RecordId::derive`]:
    /// UUID v5 under the connection's id of `google_event`, the calendar id and the event id,
    /// each line-separated (neither id can hold a line break).
    pub fn derive_event(connection: ConnectionId, calendar_provider_id: &str, event_provider_id: &str) -> Self {
        let kind = crate::RecordKind::GoogleEvent.as_str();
        let mut name = Vec::with_capacity(kind.len() + 2 + calendar_provider_id.len() + event_provider_id.len());
        name.extend_from_slice(kind.as_bytes());
        name.push(b'\n');
        name.extend_from_slice(calendar_provider_id.as_bytes());
        name.push(b'\n');
        name.extend_from_slice(event_provider_id.as_bytes());
        Self(Uuid::new_v5(&connection.0, &name))
    }
}

/// Proof that a read is limited to one tenant. Handlers build it from an authenticated
/// principal; there is no way to read tenant data without one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantScope {
    tenant_id: TenantId,
}

impl TenantScope {
    /// Scope reads to one tenant.
    pub fn new(tenant_id: TenantId) -> Self {
        Self { tenant_id }
    }

    /// The tenant this scope allows.
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
}
