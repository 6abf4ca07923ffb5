//! Provider rate budgets and circuit breakers, shared by every instance through the store
//! (architecture §3, §4.3). The policy — what a bucket's rate is, when a breaker opens — lives in
//! `patchbay-sync`; the store only applies each step atomically.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Names one GCRA bucket: `(provider, key, bucket)`, e.g. `(monday, "account:42", "read")`,
/// `(google, "user:1234", "rpm")`, `(google, "project:client-id", "rpm")`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BucketKey {
    pub provider: ProviderId,
    pub key: String,
    pub bucket: String,
}

/// One step of a GCRA ("theoretical arrival time") bucket, in microseconds.
///
/// With `tat` the stored theoretical arrival time (`now` when missing), the step computes
/// `new = max(tat, now) + increment_us`. When `new - now <= capacity_us` the cost is admitted and
/// `tat` becomes `new`; otherwise nothing changes and the caller may retry at
/// `new - capacity_us`. A negative `increment_us` refunds (`tat` never goes below `now`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcraStep {
    /// cost × emission interval (the interval is the bucket's period ÷ its limit).
    pub increment_us: i64,
    /// The burst the bucket tolerates: limit × emission interval (one whole period).
    pub capacity_us: i64,
    /// Apply even when over capacity (reconciling an estimate with what the provider charged).
    pub force: bool,
}

/// What a [`GcraStep`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcraVerdict {
    pub admitted: bool,
    /// When refused: the earliest time the same step would be admitted. When admitted: `now`.
    pub retry_at: DateTime<Utc>,
    /// The bucket's theoretical arrival time after the step.
    pub tat: DateTime<Utc>,
}

crate::text_enum! {
    /// A circuit breaker's state.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum BreakerState as "breaker state" {
        Closed = "closed",
        Open = "open",
        /// The cooldown passed; the next call is a probe.
        HalfOpen = "half_open",
    }
}

/// A breaker's row. Missing rows are closed with no failures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breaker {
    /// `connection:{id}` or `provider:{provider}`.
    pub key: String,
    pub state: BreakerState,
    pub consecutive_failures: i32,
    pub opened_at: Option<DateTime<Utc>>,
    /// When an open breaker lets a probe through.
    pub next_probe_at: Option<DateTime<Utc>>,
    /// The current cooldown; doubles at every failed probe.
    pub cooldown_ms: i64,
    pub updated_at: DateTime<Utc>,
}

/// The thresholds a failure is judged by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive transient failures that open a closed breaker.
    pub failure_threshold: i32,
    pub base_cooldown_ms: i64,
    pub max_cooldown_ms: i64,
}

/// Rate buckets, concurrency slots and breakers.
#[async_trait]
pub trait BudgetStore: Send + Sync {
    /// Applies one GCRA step to a bucket in one atomic statement (no lock held across calls).
    async fn gcra(&self, key: &BucketKey, step: GcraStep, now: DateTime<Utc>) -> StoreResult<GcraVerdict>;
    /// Takes one of `slots` concurrency slots of `key` for `holder` until `until`; a slot whose
    /// lease lapsed is free. Returns whether a slot was taken.
    async fn acquire_slot(
        &self,
        key: &BucketKey,
        slots: u32,
        holder: uuid::Uuid,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Gives a slot back (no-op when `holder` holds none).
    async fn release_slot(&self, key: &BucketKey, holder: uuid::Uuid) -> StoreResult<()>;

    /// A breaker's row, if it has one.
    async fn breaker(&self, key: &str) -> StoreResult<Option<Breaker>>;
    /// Counts a transient failure: a closed breaker opens at the threshold, a half-open (or
    /// open, past its probe time) breaker reopens with a doubled cooldown. Atomic.
    async fn breaker_failure(&self, key: &str, policy: BreakerPolicy, now: DateTime<Utc>) -> StoreResult<Breaker>;
    /// An open breaker whose probe time has come turns half-open for exactly one caller:
    /// returns whether this caller is the probe.
    async fn breaker_try_probe(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    /// A success closes the breaker; writes only when it was not already closed with no failures.
    async fn breaker_success(&self, key: &str, now: DateTime<Utc>) -> StoreResult<()>;
}

/// What [`IdempotencyStore::begin_idempotent`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key is new: it is now held for this request; call `finish_idempotent`.
    Started,
    /// The same key and body already answered: replay this (sealed by the caller).
    Replay { status: u16, response: Vec<u8> },
    /// The same key came with another body.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
}

/// Patchbay-side idempotency keys for write-back (architecture §4.3).
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for `(tenant, connection)` with the request's hash. A key whose first request
    /// never finished is taken over after `stale_after`.
    #[allow(clippy::too_many_arguments)] // each is one column of the key's row
    async fn begin_idempotent(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        key: &str,
        request_hash: &[u8],
        expires_at: DateTime<Utc>,
        stale_after: chrono::Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyBegin>;
    /// Stores the answer of a started key (`response` is sealed by the caller).
    async fn finish_idempotent(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        key: &str,
        status: u16,
        response: Vec<u8>,
    ) -> StoreResult<()>;
    /// Forgets a started key whose request failed before reaching the provider, so a retry can run.
    async fn abandon_idempotent(&self, scope: TenantScope, connection: ConnectionId, key: &str) -> StoreResult<()>;
}
