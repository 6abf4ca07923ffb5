//! Synced records (architecture §3): Monday boards, columns, groups and items, Google calendars
//! and events. The store keeps them sealed — the provider JSON and free text arrive as a vault
//! ciphertext — with the fields queries need in clear: ids, times, status, a keyed hash and the
//! per-connection `change_seq` that feeds the change feeds.
//!
//! A sync writes a page of records and its checkpoint in one transaction ([`PageWrite`]); an
//! unchanged record (same hash) is not rewritten and takes no new `change_seq`.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

crate::text_enum! {
    /// The kind (and table) of a synced record.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum RecordKind as "record kind" {
        MondayBoard = "monday_board",
        MondayColumn = "monday_column",
        MondayGroup = "monday_group",
        MondayItem = "monday_item",
        GoogleCalendar = "google_calendar",
        GoogleEvent = "google_event",
    }
}

impl RecordKind {
    /// Whether a record of this kind is identified by its parent and provider id together
    /// rather than by its provider id alone: Google event ids are unique only within a
    /// calendar. Writes of such a kind must name their parent (a write without one is refused),
    /// and their ids come from [`RecordId::derive_event`].
    pub fn keyed_by_parent(self) -> bool {
        matches!(self, RecordKind::GoogleEvent)
    }

    /// The kinds a provider's change feed carries.
    pub fn of_provider(provider: ProviderId) -> &'static [RecordKind] {
        match provider {
            ProviderId::Monday => {
                &[RecordKind::MondayBoard, RecordKind::MondayColumn, RecordKind::MondayGroup, RecordKind::MondayItem]
            }
            ProviderId::Google => &[RecordKind::GoogleCalendar, RecordKind::GoogleEvent],
        }
    }
}

/// The clear (queryable) fields of a record besides its ids. Everything else is in `sealed`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordFields {
    /// Keyed hash of the provider object (32 bytes): equal hash, unchanged record.
    pub hash: Vec<u8>,
    /// Vault ciphertext of the record's JSON (purpose `record`, bound to its row).
    pub sealed: Vec<u8>,
    /// The vault key id `sealed` is under (for rotation).
    pub key_id: u32,
    /// Events: start (all-day events at midnight UTC of their date). Recurring masters: the
    /// first occurrence's start.
    pub starts_at: Option<DateTime<Utc>>,
    /// Events: end. Recurring masters: the last occurrence's end, `None` when the series has
    /// no end.
    pub ends_at: Option<DateTime<Utc>>,
    /// Event exceptions: the master's provider id (`recurringEventId`).
    pub series_id: Option<String>,
    /// Provider status (`confirmed`, `tentative`, `cancelled`; Monday `active`, `archived`).
    pub status: Option<String>,
    /// When the provider last changed it (Monday `updated_at`, Google `updated`).
    pub provider_updated_at: Option<DateTime<Utc>>,
}

/// A synced record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub id: RecordId,
    pub kind: RecordKind,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub provider_id: String,
    /// The board (columns, groups, items) or calendar (events) it belongs to.
    pub parent_id: Option<RecordId>,
    pub fields: RecordFields,
    pub generation: i64,
    /// Per-connection, strictly increasing across all kinds; moved by every change.
    pub change_seq: i64,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One record in a [`PageWrite`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordWrite {
    pub kind: RecordKind,
    /// [`RecordId::derive`] of the connection, kind and provider id ([`RecordId::derive_event`]
    /// for an event: its calendar is part of its identity).
    pub id: RecordId,
    pub provider_id: String,
    /// The parent. For a kind [`RecordKind::keyed_by_parent`] (events) it is part of the key a
    /// write finds its row by, deletes included, and must be set.
    pub parent_id: Option<RecordId>,
    pub change: RecordChange,
}

/// What happens to one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordChange {
    /// Insert, update (when the hash differs or the row was tombstoned), or just mark seen in
    /// this generation (same hash).
    Upsert(RecordFields),
    /// Tombstone (no-op when missing or already tombstoned).
    Delete,
}

/// Tombstone every live record of `kind` under `parent` (or of the connection when `None`)
/// whose generation is below `generation`: the sweep after a full listing's last page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sweep {
    pub kind: RecordKind,
    pub parent_id: Option<RecordId>,
    pub generation: i64,
}

/// One page of a sync: its records, sweeps and the part's new checkpoint, written in one
/// transaction (or not at all). Fenced by the lease; refused with `Conflict` when the part's
/// version is not `state.expected_version` (a checkpoint never goes backwards).
#[derive(Clone, Debug)]
pub struct PageWrite {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub lease: LeaseRef,
    /// The generation written into every upserted or seen record.
    pub generation: i64,
    pub records: Vec<RecordWrite>,
    pub sweeps: Vec<Sweep>,
    pub state: StateWrite,
    pub now: DateTime<Utc>,
}

/// What a [`PageWrite`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageOutcome {
    /// Records inserted, changed or restored.
    pub upserted: u64,
    /// Records with the same hash, only marked seen.
    pub unchanged: u64,
    /// Records tombstoned, by deletes and sweeps.
    pub deleted: u64,
    /// The part's state after the write.
    pub state_version: i64,
}

/// Filters of [`RecordStore::list_records`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordFilter {
    pub parent_id: Option<RecordId>,
    /// With `parent_id`: rows only while that parent, a record of this kind of the same
    /// connection, exists (tombstoned or not). A reader that needs the parent to exist checks it
    /// in the page's own statement and reads the parent separately only for an empty page.
    pub parent_must_exist: Option<RecordKind>,
    pub provider_id: Option<String>,
    pub series_id: Option<String>,
    /// Keep records whose `[starts_at, ends_at)` overlaps `[time_min, time_max)`; a missing
    /// `ends_at` is unbounded, a missing `starts_at` never matches a time filter.
    pub time_min: Option<DateTime<Utc>>,
    pub time_max: Option<DateTime<Utc>>,
    /// Tombstoned records too.
    pub include_deleted: bool,
}

/// One page of a change feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangePage {
    /// Records (tombstones included) with `after < change_seq <= high_water`, in `change_seq` order.
    pub records: Vec<Record>,
    /// Every change at or below this sequence is committed and visible: a reader that resumes
    /// from the last record's `change_seq` (or from this, when `records` is empty) misses nothing.
    pub high_water: i64,
}

/// A record's new ciphertext and hash under the primary key, for [`RecordStore::rewrap_record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrap {
    pub key_id: u32,
    pub sealed: Vec<u8>,
    pub hash: Vec<u8>,
}

/// A connection as the read API opens it, with the validator of its record pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadableConnection {
    /// What [`ConnectionStore::get_connection`] answers (visible connections only).
    pub connection: Connection,
    /// The connection's record high-water mark: the last `change_seq` any write of its records
    /// took, 0 before the first. Every write that changes what a record page answers moves it
    /// (upserts, tombstones, sweeps, write-back); a purge only follows a disconnect, which hides
    /// the connection first, and a rewrap changes the ciphertext, not the opened record.
    pub record_seq: i64,
}

/// How many record ciphertexts one key id encrypts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordKeyUsage {
    pub key_id: u32,
    pub records: i64,
}

/// Synced records, tenant-scoped on every read.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Writes a page (records, sweeps, checkpoint) in one transaction.
    async fn apply_page(&self, page: PageWrite) -> StoreResult<PageOutcome>;
    /// A write outside a sync (write-back): upserts records with fresh `change_seq`s, no
    /// checkpoint, no lease. Unchanged hashes are left alone.
    async fn upsert_records(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        records: Vec<RecordWrite>,
        now: DateTime<Utc>,
    ) -> StoreResult<PageOutcome>;
    /// The connection (visible only, as `get_connection`) and its record high-water mark, in
    /// one indexed query: what the read API checks its cached pages against on every request.
    async fn readable_connection(&self, scope: TenantScope, id: ConnectionId) -> StoreResult<ReadableConnection>;
    /// One record of the connection (tombstones included).
    async fn get_record(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        kind: RecordKind,
        id: RecordId,
    ) -> StoreResult<Record>;
    /// A connection's records of `kind`, keyset-paged by id.
    async fn list_records(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        kind: RecordKind,
        filter: &RecordFilter,
        page: Page,
    ) -> StoreResult<Paged<Record>>;
    /// Changes of `kinds` after `after` (a `change_seq`), at most `limit`, up to the safe high-water mark.
    async fn change_feed(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        kinds: &[RecordKind],
        after: i64,
        limit: u32,
    ) -> StoreResult<ChangePage>;
    /// Deletes up to `batch` of a connection's records and sync states; returns how many rows
    /// went (0 when nothing is left). Used by disconnect.
    async fn purge_connection_records(&self, connection: ConnectionId, batch: u32) -> StoreResult<u64>;
    /// Record ciphertexts per key id.
    async fn record_key_usage(&self) -> StoreResult<Vec<RecordKeyUsage>>;
    /// Up to `limit` records not under `primary_key_id`.
    async fn records_to_rewrap(&self, primary_key_id: u32, limit: u32) -> StoreResult<Vec<Record>>;
    /// Replaces a record's ciphertext and keyed hash (the hash key follows the primary vault
    /// key) if its ciphertext still is `old` (a sync may have rewritten it); returns whether it did.
    async fn rewrap_record(&self, kind: RecordKind, id: RecordId, old: &[u8], rewrapped: Rewrap) -> StoreResult<bool>;
}
