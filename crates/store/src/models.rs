//! The rows the store hands out, and the inputs it takes.

use crate::ids::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A tenant: an organisation (claim mode) or a single user (per-user mode).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    /// `org:<claim value>` or `user:<iss>|<sub>`; the prefixes keep the two modes apart.
    pub external_key: String,
    pub created_at: DateTime<Utc>,
}

/// A person within one tenant (one person in two orgs is two users).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppUser {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub issuer: String,
    pub subject: String,
    pub created_at: DateTime<Utc>,
}

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyScope {
    Read,
    Connect,
    Write,
    Admin,
}

impl ApiKeyScope {
    pub const ALL: [ApiKeyScope; 4] = [Self::Read, Self::Connect, Self::Write, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Connect => "connect",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

impl FromStr for ApiKeyScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("unknown scope `{s}` (expected read, connect, write or admin)"))
    }
}

/// Encodes scopes for storage: a sorted, comma-separated list.
pub fn encode_scopes(scopes: &[ApiKeyScope]) -> String {
    let mut sorted = scopes.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

/// Decodes scopes written by [`encode_scopes`].
pub fn decode_scopes(text: &str) -> Result<Vec<ApiKeyScope>, String> {
    text.split(',').filter(|s| !s.is_empty()).map(str::parse).collect()
}

/// An API key as stored: a display prefix and the SHA-256 of the whole key, never the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<ApiKeyScope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key may be used at `now`.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|exp| exp > now)
    }
}

/// Input for [`crate::IdentityStore::create_api_key`].
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub tenant_id: TenantId,
    pub name: String,
    pub prefix: String,
    pub sha256: [u8; 32],
    pub scopes: Vec<ApiKeyScope>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A connection's lifecycle state (architecture §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Active,
    InsufficientScope,
    NeedsReauth,
    Revoked,
    Disconnecting,
}

impl ConnectionStatus {
    pub const ALL: [ConnectionStatus; 5] =
        [Self::Active, Self::InsufficientScope, Self::NeedsReauth, Self::Revoked, Self::Disconnecting];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::InsufficientScope => "insufficient_scope",
            Self::NeedsReauth => "needs_reauth",
            Self::Revoked => "revoked",
            Self::Disconnecting => "disconnecting",
        }
    }
}

impl fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConnectionStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| format!("unknown connection status `{s}`"))
    }
}

/// A user's link to one provider account. Never carries a token: credentials live in their
/// own table, encrypted, and are read only by the token vault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub provider: String,
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
    pub provider: String,
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

/// Keyset pagination input: rows after `after` (an id), at most `limit`.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub limit: u32,
    pub after: Option<uuid::Uuid>,
}

impl Page {
    /// The largest page any list returns.
    pub const MAX_LIMIT: u32 = 500;
    /// The page size when the caller names none.
    pub const DEFAULT_LIMIT: u32 = 100;

    /// A page, with `limit` clamped to 1..=500.
    pub fn new(limit: Option<u32>, after: Option<uuid::Uuid>) -> Self {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT).clamp(1, Self::MAX_LIMIT);
        Self { limit, after }
    }

    /// The first page of the default size.
    pub fn first() -> Self {
        Self::new(None, None)
    }
}

/// One page of results and the cursor for the next (`None` at the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<uuid::Uuid>,
}

impl<T> Paged<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only proves there is more.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, id_of: impl Fn(&T) -> uuid::Uuid) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&id_of)
        } else {
            None
        };
        Self { items: rows, next_cursor }
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
    pub event_type: String,
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
    pub event_type: String,
    pub payload: serde_json::Value,
}

/// An audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub tenant_id: Option<TenantId>,
    /// Who acted: `user:<id>`, `api_key:<id>`, `operator:<token fingerprint>`, `cli`, `system`.
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub at: DateTime<Utc>,
}

/// Input for [`crate::AuditStore::record_audit`].
#[derive(Clone, Debug)]
pub struct NewAuditEvent {
    pub tenant_id: Option<TenantId>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Dead,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [Self::Queued, Self::Running, Self::Succeeded, Self::Failed, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| format!("unknown job status `{s}`"))
    }
}

/// Input for [`crate::JobStore::enqueue`].
#[derive(Clone, Debug)]
pub struct NewJob {
    pub kind: String,
    pub payload: serde_json::Value,
    /// Higher runs first.
    pub priority: i32,
    pub run_at: DateTime<Utc>,
    /// A queued job with the same key absorbs this one.
    pub dedup_key: Option<String>,
    /// No two running jobs share one.
    pub concurrency_key: Option<String>,
    pub max_attempts: i32,
}

impl NewJob {
    /// A job of `kind` due now with default priority (0) and 5 attempts.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value, now: DateTime<Utc>) -> Self {
        Self {
            kind: kind.into(),
            payload,
            priority: 0,
            run_at: now,
            dedup_key: None,
            concurrency_key: None,
            max_attempts: 5,
        }
    }
}

/// What [`crate::JobStore::enqueue`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// A new job row.
    Created(JobId),
    /// Merged into this already-queued job.
    Merged(JobId),
}

impl EnqueueOutcome {
    pub fn job_id(self) -> JobId {
        match self {
            Self::Created(id) | Self::Merged(id) => id,
        }
    }
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub payload: serde_json::Value,
    pub priority: i32,
    pub run_at: DateTime<Utc>,
    pub dedup_key: Option<String>,
    pub concurrency_key: Option<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub status: JobStatus,
    pub lease_owner: Option<String>,
    pub lease_token: Option<uuid::Uuid>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Input for [`crate::JobStore::claim`].
#[derive(Clone, Copy, Debug)]
pub struct Claim<'a> {
    /// Who takes the lease (the instance id and worker slot).
    pub owner: &'a str,
    /// Kinds this worker can run; empty means any.
    pub kinds: &'a [&'a str],
    pub lease: chrono::Duration,
    pub now: DateTime<Utc>,
}

/// The fencing pair every worker write carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRef {
    pub job_id: JobId,
    pub token: uuid::Uuid,
}

/// A claimed job and its lease.
#[derive(Clone, Debug)]
pub struct LeasedJob {
    pub job: Job,
    pub lease: LeaseRef,
}

/// A count of jobs of one kind in one status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobCount {
    pub kind: String,
    pub status: JobStatus,
    pub count: i64,
}

/// A running Patchbay process, as the fleet sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Instance {
    pub id: InstanceId,
    /// Vault key ids this instance can decrypt with.
    pub key_ids: Vec<u32>,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}
