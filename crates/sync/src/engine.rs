//! What a provider engine ([`crate::google`], [`crate::monday`]) works with during one run:
//! the provider session, the sealer, the job's lease (every page write is fenced by it) and the
//! run's counters. Engines build [`RecordWrite`]s with [`Engine::record`] and write each page with
//! its checkpoint through [`Engine::write_page`].

use crate::call::Session;
use crate::seal::Sealer;
use crate::SyncError;
use chrono::{DateTime, Utc};
use patchbay_store::{
    LeaseRef, PageOutcome, PageWrite, RecordChange, RecordFields, RecordId, RecordKind, RecordWrite, StateWrite, Sweep,
    SyncRunId, SyncState,
};
use std::sync::atomic::{AtomicI64, Ordering};
use tokio_util::sync::CancellationToken;

/// The clear fields of a record besides ids (what queries filter on).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Clear {
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub series_id: Option<String>,
    pub status: Option<String>,
    pub provider_updated_at: Option<DateTime<Utc>>,
}

/// How much of a connection a run covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every part (initial, manual, and backstop runs without a healthy change signal).
    Everything,
    /// Only dirty parts, plus the list part (`calendars` / `boards`) when its own poll is due.
    DirtyOnly,
}

/// One run's working set.
pub struct Engine<'a> {
    pub session: &'a Session,
    pub sealer: &'a Sealer,
    pub lease: LeaseRef,
    pub run: SyncRunId,
    pub cancel: CancellationToken,
    pub scope: Scope,
    upserted: AtomicI64,
    deleted: AtomicI64,
}

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("run", &self.run).field("scope", &self.scope).finish_non_exhaustive()
    }
}

impl<'a> Engine<'a> {
    pub fn new(
        session: &'a Session,
        sealer: &'a Sealer,
        lease: LeaseRef,
        run: SyncRunId,
        cancel: CancellationToken,
        scope: Scope,
    ) -> Self {
        Self { session, sealer, lease, run, cancel, scope, upserted: AtomicI64::new(0), deleted: AtomicI64::new(0) }
    }

    /// Records created or changed so far in this run.
    pub fn upserted(&self) -> i64 {
        self.upserted.load(Ordering::Relaxed)
    }

    /// Records tombstoned so far in this run.
    pub fn deleted(&self) -> i64 {
        self.deleted.load(Ordering::Relaxed)
    }

    /// The record id of a provider object of this connection (not an event: see
    /// [`Engine::event_id`]).
    pub fn id_of(&self, kind: RecordKind, provider_id: &str) -> RecordId {
        RecordId::derive(self.session.connection().id, kind, provider_id)
    }

    /// The record id of a Google event of this connection: under its calendar, since an event
    /// id is unique only within one calendar.
    pub fn event_id(&self, calendar_provider_id: &str, event_provider_id: &str) -> RecordId {
        RecordId::derive_event(self.session.connection().id, calendar_provider_id, event_provider_id)
    }

    /// A sealed upsert of a provider object.
    pub fn record(
        &self,
        kind: RecordKind,
        provider_id: &str,
        parent_id: Option<RecordId>,
        value: &serde_json::Value,
        clear: Clear,
    ) -> RecordWrite {
        self.record_as(kind, self.id_of(kind, provider_id), provider_id, parent_id, value, clear)
    }

    /// A sealed upsert of a provider object under an id the caller derived (an event's).
    pub fn record_as(
        &self,
        kind: RecordKind,
        id: RecordId,
        provider_id: &str,
        parent_id: Option<RecordId>,
        value: &serde_json::Value,
        clear: Clear,
    ) -> RecordWrite {
        let connection = self.session.connection();
        let sealed = self.sealer.seal(connection.tenant_id, connection.id, kind, id, value);
        RecordWrite {
            kind,
            id,
            provider_id: provider_id.to_owned(),
            parent_id,
            change: RecordChange::Upsert(RecordFields {
                hash: sealed.hash,
                sealed: sealed.sealed,
                key_id: sealed.key_id,
                starts_at: clear.starts_at,
                ends_at: clear.ends_at,
                series_id: clear.series_id,
                status: clear.status,
                provider_updated_at: clear.provider_updated_at,
            }),
        }
    }

    /// A tombstone of a provider object.
    pub fn delete(&self, kind: RecordKind, provider_id: &str, parent_id: Option<RecordId>) -> RecordWrite {
        self.delete_as(kind, self.id_of(kind, provider_id), provider_id, parent_id)
    }

    /// A tombstone of a provider object under an id the caller derived (an event's).
    pub fn delete_as(
        &self,
        kind: RecordKind,
        id: RecordId,
        provider_id: &str,
        parent_id: Option<RecordId>,
    ) -> RecordWrite {
        RecordWrite { kind, id, provider_id: provider_id.to_owned(), parent_id, change: RecordChange::Delete }
    }

    /// A part's stored state (`None` before its first write).
    pub async fn state(&self, part: &str) -> Result<Option<SyncState>, SyncError> {
        Ok(self.session.deps().store.sync_state(self.session.connection().id, part).await?)
    }

    /// Writes one page: records, sweeps and the part's new state, in one fenced transaction.
    pub async fn write_page(
        &self,
        generation: i64,
        records: Vec<RecordWrite>,
        sweeps: Vec<Sweep>,
        state: StateWrite,
    ) -> Result<PageOutcome, SyncError> {
        if self.cancel.is_cancelled() {
            return Err(SyncError::Store(patchbay_store::StoreError::LeaseLost));
        }
        let connection = self.session.connection();
        let page = PageWrite {
            tenant_id: connection.tenant_id,
            connection_id: connection.id,
            lease: self.lease,
            generation,
            records,
            sweeps,
            state,
            now: self.session.deps().clock.now(),
        };
        let outcome = self.session.deps().store.apply_page(page).await?;
        self.upserted.fetch_add(outcome.upserted as i64, Ordering::Relaxed);
        self.deleted.fetch_add(outcome.deleted as i64, Ordering::Relaxed);
        Ok(outcome)
    }

    /// Writes a part's state alone (no records).
    pub async fn save_state(&self, state: StateWrite) -> Result<SyncState, SyncError> {
        let deps = self.session.deps();
        Ok(deps.store.save_sync_state(&self.lease, self.session.connection().id, state, deps.clock.now()).await?)
    }
}

/// Whether a list part (`calendars`, `boards`) is due for its own poll in a
/// [`Scope::DirtyOnly`] run: never synced, or last synced longer ago than the backstop used
/// with a healthy change signal. The runner's skip decision uses the same rule.
pub fn list_due(state: Option<&SyncState>, settings: &crate::SyncSettings, now: DateTime<Utc>) -> bool {
    let every = chrono::Duration::from_std(settings.backstop_with_signal).unwrap_or_default();
    state.and_then(|s| s.last_success_at).is_none_or(|at| now - at >= every)
}
