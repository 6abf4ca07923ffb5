//! Keyset pagination: `?limit=` (default 100, 1 to 500, larger values clamped) and an opaque
//! `?cursor=`; answers are `{data: […], next_cursor}`.
//!
//! A cursor is the base64url (no padding) of `<list>:<uuid>`: the list it came from and the id
//! of the last row of the page. It is opaque to clients; binding it to its list means a cursor
//! from one list is refused by another instead of silently paging it from an unrelated row.

use super::problem::{ApiError, ProblemCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use patchbay_store::{Page, Paged};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The lists that page, each with its own cursors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    /// `GET /v1/connections`
    Connections,
    /// `GET /v1/audit-events`
    AuditEvents,
    /// `GET /admin/v1/connections`
    AdminConnections,
    /// `GET /v1/connections/{id}/monday/boards`
    MondayBoards,
    /// `GET /v1/connections/{id}/monday/boards/{board}/items`
    MondayItems,
    /// `GET /v1/connections/{id}/google/calendars`
    GoogleCalendars,
    /// `GET /v1/connections/{id}/google/calendars/{calendar}/events`
    GoogleEvents,
    /// `GET /v1/connections/{id}/sync-runs`
    SyncRuns,
    /// `GET /v1/webhook-sources`
    WebhookSources,
    /// `GET /v1/webhook-events`
    WebhookEvents,
    /// `GET /v1/event-endpoints`
    EventEndpoints,
    /// `GET /v1/event-endpoints/{id}/deliveries`
    EventDeliveries,
}

impl List {
    /// The name a cursor carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connections => "connections",
            Self::AuditEvents => "audit-events",
            Self::AdminConnections => "admin-connections",
            Self::MondayBoards => "monday-boards",
            Self::MondayItems => "monday-items",
            Self::GoogleCalendars => "google-calendars",
            Self::GoogleEvents => "google-events",
            Self::SyncRuns => "sync-runs",
            Self::WebhookSources => "webhook-sources",
            Self::WebhookEvents => "webhook-events",
            Self::EventEndpoints => "event-endpoints",
            Self::EventDeliveries => "event-deliveries",
        }
    }

    /// The opaque cursor that continues this list after `last`.
    pub fn cursor(self, last: uuid::Uuid) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{last}", self.as_str()))
    }

    /// The row a cursor of this list continues after; `None` for a cursor of another list or
    /// one this API did not make.
    pub fn decode(self, cursor: &str) -> Option<uuid::Uuid> {
        let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let text = std::str::from_utf8(&raw).ok()?;
        let (list, id) = text.split_once(':')?;
        (list == self.as_str()).then(|| uuid::Uuid::parse_str(id).ok()).flatten()
    }

    /// The store page for a `limit` and a `cursor` of this list (400 for a limit of 0 or a
    /// cursor this list did not return).
    pub fn page(self, limit: Option<u32>, cursor: Option<&str>) -> Result<Page, ApiError> {
        if limit == Some(0) {
            return Err(ApiError::new(ProblemCode::InvalidQuery, "`limit` must be at least 1"));
        }
        let after = match cursor.filter(|c| !c.is_empty()) {
            Some(cursor) => Some(self.decode(cursor).ok_or_else(|| {
                ApiError::new(ProblemCode::InvalidQuery, "`cursor` is not a cursor this list returned")
            })?),
            None => None,
        };
        Ok(Page::new(limit, after))
    }
}

/// Query parameters of every list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size: at least 1 (0 is refused with 400); values over 500 are clamped to 500;
    /// default 100.
    #[param(minimum = 1, example = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page of the same list (a cursor from another list is
    /// refused with 400).
    #[param(pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The store page this query asks for in `list`.
    pub fn page(&self, list: List) -> Result<Page, ApiError> {
        list.page(self.limit, self.cursor.as_deref())
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListOut<T: ToSchema> {
    pub data: Vec<T>,
    /// Opaque; pass as `cursor` to the same list for the next page; `null` on the last page.
    #[schema(pattern = "^[A-Za-z0-9_-]+$")]
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> ListOut<T> {
    pub fn from_page<S>(list: List, page: Paged<S>, map: impl Fn(S) -> T) -> Self {
        Self { data: page.items.into_iter().map(map).collect(), next_cursor: page.next_cursor.map(|c| list.cursor(c)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_in_its_own_list_only() {
        let id = uuid::Uuid::now_v7();
        let cursor = List::Connections.cursor(id);
        assert!(cursor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{cursor}");
        assert_eq!(List::Connections.decode(&cursor), Some(id));
        assert_eq!(List::AuditEvents.decode(&cursor), None);
        assert_eq!(List::AdminConnections.decode(&cursor), None);
        assert_eq!(List::Connections.decode(&id.to_string()), None, "a bare id is not a cursor");
        assert_eq!(List::Connections.decode("zzz"), None);
    }

    #[test]
    fn limit_zero_is_refused_and_large_limits_are_clamped() {
        let zero = ListQuery { limit: Some(0), cursor: None };
        assert_eq!(zero.page(List::Connections).unwrap_err().code, ProblemCode::InvalidQuery);
        let huge = ListQuery { limit: Some(100_000), cursor: None };
        assert_eq!(huge.page(List::Connections).unwrap().limit, Page::MAX_LIMIT);
    }
}
