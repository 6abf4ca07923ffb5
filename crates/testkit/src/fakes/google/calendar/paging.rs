//! Page and sync tokens — opaque random strings the fake maps to where a listing stands — and the
//! cutting of one page: `nextPageToken` while more may follow, `nextSyncToken` on the last page
//! only, never both.
//!
//! A listing is a snapshot in the change log: its first page records the log's head, later pages
//! continue after the last item shown (in creation order), and the last page's sync token points
//! at that head, so whatever changed while the client paged comes back in the next incremental.

use super::errors::{api_error, bad_param, ApiError};
use super::state::CalendarState;
use crate::fakes::common::Params;
use serde_json::Value;

/// What a token lists: a user's calendar list or one calendar's events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Listing {
    CalendarList,
    Events(String),
}

/// Where a sync token points: a listing at a change-log position, valid while its epoch is.
#[derive(Clone, Debug)]
pub(crate) struct SyncPoint {
    pub sub: String,
    pub listing: Listing,
    pub epoch: u64,
    pub seq: u64,
}

/// Where a page token continues a listing.
#[derive(Clone, Debug)]
pub(crate) struct Cursor {
    pub sub: String,
    pub listing: Listing,
    /// The request's parameters except `pageToken` and `maxResults`: a page token only
    /// continues the identical request.
    fingerprint: String,
    /// The change-log head when the first page was served.
    pub snapshot: u64,
    /// The creation order of the last item shown.
    pub after: u64,
    page: usize,
}

/// An item a listing may show, with the creation order it is paged by.
pub(crate) struct Candidate {
    pub order: u64,
    pub item: Value,
}

/// One page of a listing.
pub(crate) struct Page {
    pub items: Vec<Value>,
    pub next_page_token: Option<String>,
    pub next_sync_token: Option<String>,
}

/// The cursor a request continues (its `pageToken`'s) or starts; 400 for a page token that is
/// unknown or belongs to another request.
pub(crate) fn start(st: &CalendarState, params: &Params, sub: &str, listing: &Listing) -> Result<Cursor, ApiError> {
    let mut pairs: Vec<&(String, String)> =
        params.0.iter().filter(|(k, _)| k != "pageToken" && k != "maxResults").collect();
    pairs.sort();
    let fingerprint = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let Some(token) = params.non_empty("pageToken") else {
        return Ok(Cursor {
            sub: sub.to_owned(),
            listing: listing.clone(),
            fingerprint,
            snapshot: st.seq,
            after: 0,
            page: 0,
        });
    };
    match st.cursors.get(token) {
        Some(c) if c.sub == sub && &c.listing == listing && c.fingerprint == fingerprint => Ok(c.clone()),
        _ => Err(bad_param("invalid", "Invalid page token value.", "pageToken")),
    }
}

/// What a sync token points at; 410 `fullSyncRequired` when it is unknown (or corrupted), for
/// another user or listing, or invalidated since (the listing's epoch moved).
pub(crate) fn sync_point(
    st: &CalendarState,
    token: &str,
    sub: &str,
    listing: &Listing,
    epoch: u64,
) -> Result<SyncPoint, ApiError> {
    match st.sync_tokens.get(token) {
        Some(point) if point.sub == sub && &point.listing == listing && point.epoch == epoch => Ok(point.clone()),
        _ => Err(full_sync_required()),
    }
}

/// Google's 410 for a dead sync token (providers.md B6.2, exact body).
pub(crate) fn full_sync_required() -> ApiError {
    let message = "Sync token is no longer valid, a full sync is required.";
    api_error(410, "calendar", "fullSyncRequired", message, Some(("parameter", "syncToken")))
}

/// `maxResults` with its default and silent cap; 400 for a value that is not a positive number.
pub(crate) fn max_results(params: &Params, default: usize, cap: usize) -> Result<usize, ApiError> {
    match params.get("maxResults") {
        None => Ok(default),
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(cap)),
            _ => Err(bad_param(
                "invalid",
                &format!("Invalid value '{raw}'. Values must be within the range: [1, {cap}]"),
                "maxResults",
            )),
        },
    }
}

/// Cuts the next page from `candidates` (sorted by order, all after `cursor.after`), honouring
/// the page plan, and issues the page or sync token that goes with it.
pub(crate) fn cut(
    st: &mut CalendarState,
    mut cursor: Cursor,
    mut candidates: Vec<Candidate>,
    max: usize,
    epoch: u64,
) -> Page {
    let planned = st.switches.page_plan.get(cursor.page).copied();
    let limit = planned.map_or(max, |n| n.min(max));
    // A planned empty page claims more is coming, as Google's empty pages do.
    let more = planned == Some(0) || candidates.len() > limit;
    candidates.truncate(limit);
    if let Some(last) = candidates.last() {
        cursor.after = last.order;
    }
    let items = candidates.into_iter().map(|c| c.item).collect();
    if more {
        cursor.page += 1;
        let token = st.issue_cursor(cursor);
        return Page { items, next_page_token: Some(token), next_sync_token: None };
    }
    let point = SyncPoint { sub: cursor.sub, listing: cursor.listing, epoch, seq: cursor.snapshot };
    Page { items, next_page_token: None, next_sync_token: Some(st.issue_sync_token(point)) }
}

impl Page {
    /// Puts items and the token into a response envelope.
    pub fn into_body(self, mut envelope: Value) -> Value {
        envelope["items"] = self.items.into();
        if let Some(token) = self.next_page_token {
            envelope["nextPageToken"] = token.into();
        }
        if let Some(token) = self.next_sync_token {
            envelope["nextSyncToken"] = token.into();
        }
        envelope
    }
}
