#![forbid(unsafe_code)]
//! Patchbay's storage contract: the traits every backend implements, the models they return,
//! one small error type, and the job-queue runner that sits on top of [`JobStore`].
//!
//! Backends (`patchbay-store-postgres`, `patchbay-store-sqlite`) implement these traits and own
//! their migrations; the API crate picks one from the database URL scheme in exactly one place.
//! Every read of tenant data takes a [`TenantScope`]: an id that belongs to another tenant
//! answers [`StoreError::NotFound`], never a different error, so ids leak nothing.

pub mod connect;
mod error;
mod ids;
pub mod models;
pub mod queue;

pub use connect::*;
pub use error::{StoreError, StoreResult};
pub use ids::*;
pub use models::*;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Tenants, users and API keys.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Returns the tenant with this external key, creating it if missing. Idempotent under races.
    async fn upsert_tenant(&self, external_key: &str) -> StoreResult<Tenant>;
    /// Looks a tenant up by its external key (operator-level: no scope).
    async fn find_tenant(&self, external_key: &str) -> StoreResult<Option<Tenant>>;
    /// Returns the user (tenant, issuer, subject), creating it if missing. Idempotent under races.
    async fn upsert_user(&self, scope: TenantScope, issuer: &str, subject: &str) -> StoreResult<AppUser>;
    /// One user of the tenant.
    async fn get_user(&self, scope: TenantScope, id: UserId) -> StoreResult<AppUser>;
    /// Stores a new API key (only its hash and prefix).
    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKey>;
    /// Finds a key by the SHA-256 of its full text, with no tenant filter (this is how a key
    /// proves its tenant). Revoked and expired keys are returned too; the caller decides.
    async fn find_api_key_by_hash(&self, sha256: &[u8; 32]) -> StoreResult<Option<ApiKey>>;
    /// One key of the tenant.
    async fn get_api_key(&self, scope: TenantScope, id: ApiKeyId) -> StoreResult<ApiKey>;
    /// The tenant's keys, oldest first.
    async fn list_api_keys(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<ApiKey>>;
    /// Revokes a key of the tenant (idempotent: revoking twice keeps the first time).
    async fn revoke_api_key(&self, scope: TenantScope, id: ApiKeyId, at: DateTime<Utc>) -> StoreResult<ApiKey>;
    /// Records use of a key, at most once per `debounce`: returns whether a write happened.
    async fn touch_api_key(&self, id: ApiKeyId, at: DateTime<Utc>, debounce: chrono::Duration) -> StoreResult<bool>;
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

/// Connect sessions and OAuth states: the short-lived rows of a browser connect.
#[async_trait]
pub trait ConnectStore: Send + Sync {
    async fn create_connect_session(&self, new: NewConnectSession) -> StoreResult<ConnectSession>;
    /// One session of the tenant (the app polls it).
    async fn get_connect_session(&self, scope: TenantScope, id: ConnectSessionId) -> StoreResult<ConnectSession>;
    /// The unconsumed, unexpired session with this token hash, without consuming it (the GET
    /// page, which link scanners may fetch).
    async fn peek_connect_session(
        &self,
        token_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ConnectSession>>;
    /// Consumes the session atomically: of concurrent callers at most one gets it; an
    /// expired or consumed session gives `None`.
    async fn consume_connect_session(
        &self,
        token_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ConnectSession>>;
    /// Records how the session ended (first outcome wins).
    async fn finish_connect_session(
        &self,
        id: ConnectSessionId,
        outcome: ConnectOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn create_oauth_state(&self, state: OAuthState) -> StoreResult<()>;
    /// Deletes and returns the state atomically: of concurrent callers at most one gets it;
    /// an expired state is deleted and gives `None`.
    async fn consume_oauth_state(&self, state_sha256: &[u8; 32], now: DateTime<Utc>)
        -> StoreResult<Option<OAuthState>>;
}

/// Credentials and the connection lifecycle around them.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// The visible connection of this user for this provider account, if any.
    async fn find_connection_by_account(
        &self,
        scope: TenantScope,
        user_id: UserId,
        provider: &str,
        provider_account_id: &str,
    ) -> StoreResult<Option<Connection>>;
    /// Saves a callback's result in ONE transaction: the connection (insert when `is_new`,
    /// else update the same tenant's row; a concurrent insert of the same account by the same
    /// user is a `Conflict` the caller retries as an update), its credential (version + 1), an
    /// outbox event (`connection.created`, `connection.recovered` when an inactive connection
    /// becomes active, `connection.needs_reauth` for `insufficient_scope`), the audit record
    /// and the initial job.
    async fn save_grant(&self, grant: SaveGrant) -> StoreResult<Connection>;
    /// The credential of a connection of the tenant.
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
    /// `Conflict`), bumps the version, clears the lease, sets `last_refresh_at`; and, when the
    /// connection was not active, makes it active with a `connection.recovered` event.
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
    /// Hides the connection (`disconnecting`) and enqueues its disconnect job, in one transaction.
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
    /// Destroys the credential, tombstones the connection and writes `connection.deleted`,
    /// in one transaction. Idempotent.
    async fn finish_disconnect(&self, scope: TenantScope, id: ConnectionId, now: DateTime<Utc>) -> StoreResult<()>;
    /// How many credentials each key id encrypts.
    async fn credential_key_usage(&self) -> StoreResult<Vec<KeyUsage>>;
    /// Up to `limit` credentials not under `primary_key_id` (for `vault rotate`), oldest first.
    async fn credentials_to_rewrap(&self, primary_key_id: u32, limit: u32) -> StoreResult<Vec<Credential>>;
    /// Up to `limit` credentials of visible connections stored under token `flow` (e.g. Monday
    /// `legacy`, for `patchbay monday migrate-tokens`), by connection id.
    async fn credentials_with_flow(&self, flow: &str, limit: u32) -> StoreResult<Vec<Credential>>;
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

/// The event outbox: written by whichever operation changes state, read by the dispatcher.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Appends an event on its own (operations that change state write theirs themselves).
    async fn append_event(&self, event: NewEvent) -> StoreResult<OutboxEvent>;
    /// The tenant's events after `after_position`, in position order.
    async fn list_events(&self, scope: TenantScope, after_position: i64, limit: u32) -> StoreResult<Vec<OutboxEvent>>;
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit(&self, event: NewAuditEvent) -> StoreResult<AuditEvent>;
    /// The tenant's audit events, oldest first.
    async fn list_audit_events(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<AuditEvent>>;
}

/// The durable job queue. Every rule of the queue lives in the backends' statements so that it
/// holds across instances: dedup merges, priority, concurrency keys, leases with fencing tokens,
/// attempts counted at claim, `dead` past `max_attempts`, reclaim after a lapsed lease.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Enqueues a job. A queued job with the same `dedup_key` absorbs it: its `run_at` moves
    /// earlier (never later) and its priority up (never down).
    async fn enqueue(&self, job: NewJob, now: DateTime<Utc>) -> StoreResult<EnqueueOutcome>;
    /// Leases the highest-priority due job (of `kinds`, or any when empty) whose concurrency key
    /// has no running job; a running job whose lease lapsed is due again. Counts the attempt.
    async fn claim(&self, claim: Claim<'_>) -> StoreResult<Option<LeasedJob>>;
    /// Extends a lease. Fails with `LeaseLost` if the job was re-leased or finished.
    async fn heartbeat(&self, lease: &LeaseRef, lease_until: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<()>;
    /// Marks a leased job succeeded (fenced by its lease token).
    async fn complete(&self, lease: &LeaseRef, now: DateTime<Utc>) -> StoreResult<()>;
    /// Records a failure: back to `queued` at `retry_at`, or `dead` when attempts are spent or
    /// `retry_at` is `None` (a permanent failure). Returns the new status.
    async fn fail(
        &self,
        lease: &LeaseRef,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<JobStatus>;
    /// Gives a lease back without spending an attempt (budget wait, shutdown).
    async fn release(&self, lease: &LeaseRef, run_at: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<()>;
    /// Gives back every lease an owner (an instance) still holds; used at shutdown.
    async fn release_owner(&self, owner: &str, now: DateTime<Utc>) -> StoreResult<u64>;
    /// One job (operator-level: jobs are not tenant-readable through the API).
    async fn get_job(&self, id: JobId) -> StoreResult<Job>;
    /// Job counts by kind and status, for metrics.
    async fn job_counts(&self) -> StoreResult<Vec<JobCount>>;
}

/// Instances of the fleet and the key ids each has loaded.
#[async_trait]
pub trait InstanceStore: Send + Sync {
    async fn register_instance(&self, instance: &Instance) -> StoreResult<()>;
    async fn heartbeat_instance(&self, id: InstanceId, at: DateTime<Utc>) -> StoreResult<()>;
    async fn deregister_instance(&self, id: InstanceId) -> StoreResult<()>;
    async fn list_instances(&self) -> StoreResult<Vec<Instance>>;
}

/// Health probes.
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// A round trip to the database; returns the server's version string.
    async fn ping(&self) -> StoreResult<String>;
    /// Which backend this is (`postgres` or `sqlite`).
    fn backend(&self) -> &'static str;
    /// Closes pools and releases locks (the SQLite lock file).
    async fn close(&self);
}

/// Everything a Patchbay store offers. Domain crates hold `Arc<dyn Store>` (or one of the
/// narrower traits it upcasts to).
pub trait Store:
    IdentityStore
    + ConnectionStore
    + ConnectStore
    + CredentialStore
    + OutboxStore
    + AuditStore
    + JobStore
    + InstanceStore
    + HealthStore
{
}

impl<T> Store for T where
    T: IdentityStore
        + ConnectionStore
        + ConnectStore
        + CredentialStore
        + OutboxStore
        + AuditStore
        + JobStore
        + InstanceStore
        + HealthStore
{
}
