//! Google Calendar push channels (architecture §3 `watch_channel`, §4.4): one row per channel,
//! written before `events.watch` is called, authenticated by the SHA-256 of its random token,
//! and kept after a stop until it expires so late messages are recognised.

use crate::{ConnectionId, JobKind, JobPayload, NewJob, StoreResult, TenantId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A push channel as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct WatchChannel {
    /// The channel id Google echoes in `X-Goog-Channel-ID` (a UUID we chose, ≤ 64 characters).
    pub id: String,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    /// The watched calendar's Google id.
    pub calendar_id: String,
    /// Google's `resourceId`: `None` until the watch response or the `sync` message gives it.
    pub resource_id: Option<String>,
    /// SHA-256 of the channel token (the token itself is never stored).
    pub token_sha256: [u8; 32],
    pub expires_at: DateTime<Utc>,
    /// The highest `X-Goog-Message-Number` accepted so far.
    pub last_message_number: Option<i64>,
    pub last_notification_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Set when Patchbay stopped (or gave up on) the channel; the row stays until expiry.
    pub stopped_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for WatchChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The calendar id is an email address: ids and times only.
        f.debug_struct("WatchChannel")
            .field("id", &self.id)
            .field("connection_id", &self.connection_id)
            .field("expires_at", &self.expires_at)
            .field("stopped_at", &self.stopped_at)
            .finish_non_exhaustive()
    }
}

impl WatchChannel {
    /// Whether the channel is neither stopped nor expired at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.stopped_at.is_none() && self.expires_at > now
    }
}

/// Input for [`WatchChannelStore::insert_watch_channel`].
#[derive(Clone)]
pub struct NewWatchChannel {
    pub id: String,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub calendar_id: String,
    pub token_sha256: [u8; 32],
    /// The expiry asked for; the watch response's (possibly earlier) one replaces it.
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// What [`WatchChannelStore::note_watch_message`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchMessage {
    /// The number is above every earlier one: recorded.
    Advanced,
    /// Not above the last accepted number (a redelivery or a reordering): nothing changed.
    Stale,
}

#[async_trait]
pub trait WatchChannelStore: Send + Sync {
    /// Inserts a channel (before `events.watch` is called). A duplicate id is `Conflict`.
    async fn insert_watch_channel(&self, channel: NewWatchChannel) -> StoreResult<WatchChannel>;
    /// A channel by id, stopped or not; `NotFound` when unknown (or already deleted).
    async fn find_watch_channel(&self, id: &str) -> StoreResult<WatchChannel>;
    /// Records Google's `resourceId` (when still unknown) and, when given, the effective
    /// expiry. A different resource id than the stored one is `Conflict` and changes nothing.
    async fn confirm_watch_channel(
        &self,
        id: &str,
        resource_id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> StoreResult<WatchChannel>;
    /// Raises the channel's last message number to `number` (and `last_notification_at` to
    /// `at`) when it is higher.
    async fn note_watch_message(&self, id: &str, number: i64, at: DateTime<Utc>) -> StoreResult<WatchMessage>;
    /// Marks a channel stopped at `at` (no-op when already stopped); `NotFound` when unknown.
    async fn stop_watch_channel(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// A connection's channels that are not stopped (expired or not), oldest first.
    async fn open_watch_channels(&self, connection: ConnectionId) -> StoreResult<Vec<WatchChannel>>;
    /// Deletes channels expired before `now` (stopped or not); returns how many.
    async fn delete_expired_watch_channels(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

/// Payload of [`JobKind::GoogleWatchStop`]: stop every open push channel of a connection
/// (queued by the disconnect job, run by `patchbay-sync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WatchStopPayload {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
}

impl JobPayload for WatchStopPayload {
    const KIND: JobKind = JobKind::GoogleWatchStop;

    fn job(&self, now: DateTime<Utc>) -> NewJob {
        let mut job = NewJob::new(Self::KIND.as_str(), serde_json::json!(self), now);
        // Ahead of other work when due together: the channels die with the grant.
        job.priority = 20;
        job.dedup_key = Some(format!("{}:{}", Self::KIND, self.connection_id));
        job.concurrency_key = Some(format!("watch:{}", self.connection_id));
        job
    }
}
