//! Connections: a user's link to one provider account, its lifecycle states, and the one
//! rule that says which status change announces which event.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

crate::text_enum! {
    /// A connection's lifecycle state (architecture §3).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ConnectionStatus as "connection status" {
        Active = "active",
        InsufficientScope = "insufficient_scope",
        NeedsReauth = "needs_reauth",
        Revoked = "revoked",
        Disconnecting = "disconnecting",
    }
}

/// The one rule for which lifecycle change announces which event (architecture §3), used by both
/// backends. `previous` is `None` for a connection that did not exist; a tombstone is announced
/// by [`EventType::ConnectionDeleted`] from the disconnect itself.
///
/// - a new connection: `connection.created` (whatever its first status);
/// - no change, or entering `disconnecting`: nothing;
/// - to `active` from a status that needed the user: `connection.recovered`;
/// - to `revoked`: `connection.revoked`;
/// - to `needs_reauth` or `insufficient_scope`: `connection.needs_reauth`.
pub fn transition_event(previous: Option<ConnectionStatus>, next: ConnectionStatus) -> Option<EventType> {
    use ConnectionStatus::*;
    let Some(previous) = previous else {
        return Some(EventType::ConnectionCreated);
    };
    match (previous, next) {
        (p, n) if p == n => None,
        (_, Disconnecting) => None,
        // A hidden connection never comes back through a status change.
        (Disconnecting, _) => None,
        (_, Active) => Some(EventType::ConnectionRecovered),
        (_, Revoked) => Some(EventType::ConnectionRevoked),
        (_, NeedsReauth | InsufficientScope) => Some(EventType::ConnectionNeedsReauth),
    }
}

/// A user's link to one provider account. Never carries a token: credentials live in their
/// own table, encrypted, and are read only by the token vault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub provider: ProviderId,
    pub provider_account_id: String,
    pub provider_user_id: Option<String>,
    pub account_name: Option<String>,
    pub account_email: Option<String>,
    pub scopes: Vec<String>,
    pub status: ConnectionStatus,
    pub status_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub last_sync_at: Option<DateTime<Utc>>,
}

/// Input for [`crate::ConnectionStore::create_connection`].
#[derive(Clone, Debug)]
pub struct NewConnection {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub provider: ProviderId,
    pub provider_account_id: String,
    pub provider_user_id: Option<String>,
    pub account_name: Option<String>,
    pub account_email: Option<String>,
    pub scopes: Vec<String>,
    pub status: ConnectionStatus,
    pub status_reason: Option<String>,
}

/// Narrows a connection listing.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnectionFilter {
    /// Only this user's connections (end users see their own).
    pub user_id: Option<UserId>,
}

/// Connections (the rows the Connect flow creates) and their outbox events.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Creates a connection and writes `connection.created` to the outbox in the same transaction.
    async fn create_connection(&self, new: NewConnection) -> StoreResult<Connection>;
    /// One connection of the tenant (hidden states such as `disconnecting` and tombstones are
    /// not returned).
    async fn get_connection(&self, scope: TenantScope, id: ConnectionId) -> StoreResult<Connection>;
    /// The tenant's visible connections, optionally only one user's.
    async fn list_connections(
        &self,
        scope: TenantScope,
        filter: ConnectionFilter,
        page: Page,
    ) -> StoreResult<Paged<Connection>>;
    /// Operator view: every tenant's visible connections.
    async fn list_all_connections(&self, page: Page) -> StoreResult<Paged<Connection>>;
}
