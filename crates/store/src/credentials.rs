//! Credentials (a connection's sealed token set) and the connection lifecycle writes around
//! them: saving a grant, refresh leases, status changes, disconnect, key rotation.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;

/// A connection's encrypted token set. `version` guards every write (optimistic concurrency);
/// the refresh lease makes one instance the refresher.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub connection_id: ConnectionId,
    pub tenant_id: TenantId,
    /// The token flow the credential was issued under (names its provider).
    pub flow: TokenFlow,
    pub key_id: u32,
    pub ciphertext: Vec<u8>,
    pub version: i64,
    /// When the access token expires (not secret; drives the refresh sweep). `None`: never.
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_lease_owner: Option<String>,
    pub refresh_lease_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("connection_id", &self.connection_id)
            .field("flow", &self.flow)
            .field("key_id", &self.key_id)
            .field("version", &self.version)
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

/// An encrypted token set to store.
#[derive(Clone, PartialEq, Eq)]
pub struct NewCredential {
    pub flow: TokenFlow,
    pub key_id: u32,
    pub ciphertext: Vec<u8>,
    pub access_expires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewCredential").field("flow", &self.flow).field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// What a successful callback saves, in one transaction (architecture §4.1 step 3).
#[derive(Clone, Debug)]
pub struct SaveGrant {
    /// The id the credential's associated data was bound to: an existing connection of this
    /// user and provider account, or a fresh id for a new one.
    pub connection_id: ConnectionId,
    /// Whether `connection_id` is new (insert) or existing (update).
    pub is_new: bool,
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
    pub credential: NewCredential,
    /// The initial sync, enqueued in the same transaction (none for `insufficient_scope`).
    pub initial_job: Option<NewJob>,
    pub audit: NewAuditEvent,
    pub now: DateTime<Utc>,
}

/// A status change, written in one transaction with the event [`transition_event`] names and
/// an audit record. Entering `needs_reauth` or `revoked` destroys the credential (a dead grant's
/// ciphertext is not kept).
#[derive(Clone, Debug)]
pub struct StatusChange {
    pub status: ConnectionStatus,
    pub reason: Option<String>,
    pub actor: String,
    pub now: DateTime<Utc>,
}

/// Ciphertexts per vault key id (for `patchbay vault status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUsage {
    pub key_id: u32,
    pub credentials: i64,
}

/// Credentials and the connection lifecycle around them.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// The visible connection of this user for this provider account, if any.
    async fn find_connection_by_account(
        &self,
        scope: TenantScope,
        user_id: UserId,
        provider: ProviderId,
        provider_account_id: &str,
    ) -> StoreResult<Option<Connection>>;
    /// Saves a callback's result in ONE transaction: the connection (insert when `is_new`,
    /// else update the same tenant's row; a concurrent insert of the same account by the same
    /// user is a `Conflict` the caller retries as an update), its credential (version + 1), an
    /// outbox event (`connection.created`, `connection.recovered` when an inactive connection
    /// becomes active, `connection.needs_reauth` for `insufficient_scope`), the audit record
    /// and the initial job.
    async fn save_grant(&self, grant: SaveGrant) -> StoreResult<Connection>;
    /// The credential of a usable connection of the tenant: a connection being disconnected
    /// serves no token (`NotFound`).
    async fn get_credential(&self, scope: TenantScope, connection_id: ConnectionId) -> StoreResult<Credential>;
    /// Takes the refresh lease if it is free, lapsed, or already ours. One UPDATE, no
    /// transaction held. Returns whether we hold it.
    async fn try_lease_refresh(
        &self,
        connection_id: ConnectionId,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Writes a refreshed credential if its version is still `expected_version` (else
    /// `Conflict`), bumps the version, clears the lease and sets `last_refresh_at`. It changes no
    /// status: a dead grant has no credential left to refresh, and only a reconnect
    /// (`save_grant`) recovers it.
    async fn store_refreshed(
        &self,
        connection_id: ConnectionId,
        expected_version: i64,
        credential: NewCredential,
        now: DateTime<Utc>,
    ) -> StoreResult<Credential>;
    /// Gives the refresh lease back without writing (the refresh failed).
    async fn release_refresh_lease(&self, connection_id: ConnectionId, owner: &str) -> StoreResult<()>;
    /// Changes a connection's status with its outbox event and audit record in one transaction.
    /// A change to the status it already has writes nothing and returns it unchanged.
    async fn set_connection_status(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        change: StatusChange,
    ) -> StoreResult<Connection>;
    /// Connections whose access token expires before `before`, active, for the refresh sweep.
    async fn credentials_expiring(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(TenantScope, ConnectionId)>>;
    /// The credential of a connection being disconnected (for revoking it); `NotFound` once
    /// destroyed.
    async fn credential_for_disconnect(&self, scope: TenantScope, id: ConnectionId) -> StoreResult<Credential>;
    /// How many other live connections (any tenant; not deleted, not disconnecting, holding a
    /// credential) share this connection's provider grant: same provider, account and user.
    async fn grant_sharers(&self, connection: &Connection) -> StoreResult<u64>;
    /// Hides the connection (`disconnecting`) and enqueues its disconnect job, in one transaction.
    /// A connection already being disconnected is accepted again (its job is enqueued again,
    /// merging with a queued one), so a repeated `DELETE` is answered the same way.
    async fn begin_disconnect(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        job: NewJob,
        audit: NewAuditEvent,
    ) -> StoreResult<()>;
    /// A connection of the tenant in any state but deleted (including `disconnecting`), for
    /// system jobs whose payload carries the tenant.
    async fn connection_for_job(&self, scope: TenantScope, id: ConnectionId) -> StoreResult<Connection>;
    /// Destroys the credential, tombstones the connection and writes `connection.deleted` and
    /// the audit record (which says what became of the provider grant), in one transaction.
    /// Idempotent.
    async fn finish_disconnect(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        audit: NewAuditEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// How many credentials each key id encrypts.
    async fn credential_key_usage(&self) -> StoreResult<Vec<KeyUsage>>;
    /// Up to `limit` credentials not under `primary_key_id` (for `vault rotate`), oldest first.
    async fn credentials_to_rewrap(&self, primary_key_id: u32, limit: u32) -> StoreResult<Vec<Credential>>;
    /// Up to `limit` credentials of visible connections stored under token `flow` (e.g. Monday
    /// `legacy`, for `patchbay monday migrate-tokens`), by connection id.
    async fn credentials_with_flow(&self, flow: TokenFlow, limit: u32) -> StoreResult<Vec<Credential>>;
    /// Replaces a credential's ciphertext if its version is still `expected_version` and no
    /// refresh holds its lease; returns whether it did (a refresh in flight wins — its provider
    /// call may have rotated the refresh token — and rotate retries the row later).
    async fn rewrap_credential(
        &self,
        connection_id: ConnectionId,
        expected_version: i64,
        key_id: u32,
        ciphertext: Vec<u8>,
    ) -> StoreResult<bool>;
}
