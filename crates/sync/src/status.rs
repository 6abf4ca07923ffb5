//! How a connection's sync stands, for the connection API (architecture §4.3, §5.3): its
//! circuit breaker and its provider's, its last finished run, and each part's last success.
//! Read-only; the caller has already checked that the connection is the caller's.

use crate::breaker::{connection_key, provider_key};
use chrono::{DateTime, Utc};
use patchbay_store::{
    Breaker, BreakerState, BudgetStore, Connection, Page, StoreResult, SyncRun, SyncStore, TenantScope,
};

/// A breaker as the API shows it. A breaker with no row is closed with no failures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerStatus {
    pub state: BreakerState,
    /// Transient failures in a row (0 once a call succeeds).
    pub consecutive_failures: i32,
    pub opened_at: Option<DateTime<Utc>>,
    /// When an open breaker lets its next probe through.
    pub next_probe_at: Option<DateTime<Utc>>,
}

impl BreakerStatus {
    fn of(row: Option<Breaker>) -> Self {
        match row {
            Some(b) => Self {
                state: b.state,
                consecutive_failures: b.consecutive_failures,
                opened_at: b.opened_at.filter(|_| b.state != BreakerState::Closed),
                next_probe_at: b.next_probe_at.filter(|_| b.state != BreakerState::Closed),
            },
            None => Self { state: BreakerState::Closed, consecutive_failures: 0, opened_at: None, next_probe_at: None },
        }
    }
}

/// One part of a connection's sync (`calendars`, `events:{calendar}`, `boards`,
/// `items:{board}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartStatus {
    pub part: String,
    /// When a sync last finished this part successfully.
    pub last_success_at: Option<DateTime<Utc>>,
    /// A change signal said the part changed after its last sync.
    pub dirty: bool,
}

/// A connection's sync at a glance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionSync {
    /// The connection's own breaker.
    pub breaker: BreakerStatus,
    /// The provider-wide breaker (shared by every connection of the provider).
    pub provider_breaker: BreakerStatus,
    /// The latest run that ended (succeeded, failed or skipped); a queued or running successor
    /// is not it.
    pub last_run: Option<SyncRun>,
    /// Every part the connection has synced, by name.
    pub parts: Vec<PartStatus>,
}

/// Loads `connection`'s sync status. `scope` must be the connection's tenant.
pub async fn connection_sync<S>(store: &S, scope: TenantScope, connection: &Connection) -> StoreResult<ConnectionSync>
where
    S: BudgetStore + SyncStore + ?Sized,
{
    let breaker = BreakerStatus::of(store.breaker(&connection_key(connection.id)).await?);
    let provider_breaker = BreakerStatus::of(store.breaker(&provider_key(connection.provider)).await?);
    // A connection has at most one pending (queued or running) run, so the latest ended run is
    // among the two most recent.
    let recent = store.list_sync_runs(scope, connection.id, Page::new(Some(2), None)).await?;
    let last_run = recent.items.into_iter().find(|run| run.status.is_final());
    let mut parts: Vec<PartStatus> = store
        .sync_states(connection.id)
        .await?
        .into_iter()
        // One part per item a Monday webhook named: bookkeeping, not a part of the sync.
        .filter(|s| crate::monday::dirty::parse(&s.part).is_none())
        .map(|s| PartStatus { part: s.part, last_success_at: s.last_success_at, dirty: s.dirty })
        .collect();
    parts.sort_by(|a, b| a.part.cmp(&b.part));
    Ok(ConnectionSync { breaker, provider_breaker, last_run, parts })
}
