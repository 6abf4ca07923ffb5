//! The read API over synced records (architecture §5.3): Monday boards and items, Google
//! calendars and events, and each provider's change feed. Records are stored sealed; a handler
//! opens each one it answers with the vault ([`Sealer::open_as`]) straight into a typed view.
//!
//! Decisions a client can rely on:
//! - A record that cannot be opened (a missing vault key, a corrupt row) is logged by id and
//!   kind only and answered with its clear fields and `unreadable: true` — never skipped, so
//!   pages and change feeds stay complete, and never a 500 for the whole page.
//! - Tombstones (in change feeds) carry their ids, `change_seq` and `deleted: true`, not fields.
//! - A route of the other provider (monday routes on a Google connection) answers 404, like
//!   another tenant's or another user's connection.

pub mod cache;
pub mod changes;
mod expand;
pub mod google;
pub mod monday;
pub mod views;

use super::problem::{ApiError, ProblemCode};
use crate::auth::Principal;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use patchbay_store::{Connection, ConnectionId, ProviderId, Record};
use patchbay_sync::seal::Sealer;
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;

/// Every record route.
pub fn router() -> OpenApiRouter<AppState> {
    monday::router().merge(google::router()).merge(changes::router())
}

/// The caller's connection of `provider`: 404 for another tenant's, another user's (for end
/// users) or the other provider's.
pub async fn connection_of(
    state: &AppState,
    principal: &Principal,
    id: ConnectionId,
    provider: ProviderId,
) -> Result<Connection, ApiError> {
    let connection = state.store.get_connection(principal.scope(), id).await?;
    if principal.own_user().is_some_and(|me| me != connection.user_id) || connection.provider != provider {
        return Err(ApiError::not_found());
    }
    Ok(connection)
}

/// The sealer for this request (the vault is shared; the hash key is not needed to open).
pub fn sealer(state: &AppState) -> Sealer {
    Sealer::new(state.tokens.vault().clone())
}

/// Opens a record into `T`; `None` when it cannot be opened (already logged by the sealer).
pub fn open<T: DeserializeOwned>(sealer: &Sealer, record: &Record) -> Option<T> {
    sealer.open_as(record).ok()
}

/// Parses an RFC 3339 query parameter, naming it in the 400 (never echoing the value).
pub fn parse_time(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    DateTime::parse_from_rfc3339(value).map(|at| Some(at.with_timezone(&Utc))).map_err(|_| {
        ApiError::new(
            ProblemCode::InvalidQuery,
            format!("`{name}` must be an RFC 3339 time, e.g. 2026-03-01T00:00:00Z"),
        )
    })
}
