//! Fake Google Calendar API v3 (providers.md B6, B8, C2) under `/calendar/v3/`: the calendar
//! list and events listings with Google's paging and sync-token behaviour, authenticated with the
//! fake's own access tokens, plus failure injection and a per-user quota. Read-only over HTTP;
//! tests change calendars and events through [`FakeGoogle`](super::FakeGoogle).

mod control;
mod errors;
mod events;
mod gate;
mod list;
mod model;
mod paging;
mod push;
mod spec;
mod state;

pub use control::DIRECT_CLIENT;
pub use events::UPDATED_MIN_HORIZON;
pub use push::PushDelivery;
pub(crate) use push::PushState;
pub use spec::{EventSpec, EventTime};

pub(crate) use state::CalendarState;
pub use state::QuotaRecord;

use super::Shared;
use axum::routing::{get, post};
use axum::Router;

/// A failure the Calendar API answers with instead of serving a request
/// ([`FakeGoogle::fail_calendar_api`](super::FakeGoogle::fail_calendar_api)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiFailure {
    /// This 5xx status with Google's `backendError` body.
    Server(u16),
    /// 429 `rateLimitExceeded`, with `Retry-After: <seconds>` when set (Google documents none).
    TooManyRequests {
        /// The `Retry-After` header's seconds, if any.
        retry_after: Option<u64>,
    },
    /// 403 `rateLimitExceeded` "Rate Limit Exceeded".
    RateLimitExceeded,
    /// 403 `userRateLimitExceeded` "User Rate Limit Exceeded".
    UserRateLimitExceeded,
    /// 403 `quotaExceeded` "Calendar usage limits exceeded.".
    QuotaExceeded,
}

/// The Calendar routes, relative to the fake's base URL.
pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/calendar/v3/users/me/calendarList", get(list::calendar_list))
        .route("/calendar/v3/calendars/{calendar_id}/events", get(events::list_events))
        .route("/calendar/v3/calendars/{calendar_id}/events/watch", post(push::watch))
        .route("/calendar/v3/channels/stop", post(push::stop))
}
