//! The two Calendar API v3 listings sync reads (providers.md B6.1, B6.2), made through the
//! connection's [`Session`] so every request passes the breaker, the budget and the token refresh.

use crate::call::{ApiRequest, Session};
use crate::SyncError;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

/// Largest `maxResults` Google accepts for `calendarList.list`.
const CALENDAR_LIST_MAX: u32 = 250;
/// Largest `maxResults` Google accepts for `events.list`.
const EVENTS_MAX: u32 = 2500;

/// One page of a listing: items as received, and EITHER a page token (more follows) OR a sync
/// token (the last page).
#[derive(Debug, Deserialize)]
pub(crate) struct Listing {
    #[serde(default)]
    pub items: Vec<Value>,
    #[serde(rename = "nextPageToken")]
    pub next_page_token: Option<String>,
    #[serde(rename = "nextSyncToken")]
    pub next_sync_token: Option<String>,
}

/// Where a listing request starts: a bounded full listing or an incremental one, optionally
/// continued at a page token. An incremental page repeats the identical request plus `pageToken`.
#[derive(Clone, Debug)]
pub(crate) enum Query<'a> {
    /// A full listing (`timeMin` is only used for events).
    Full { time_min: Option<DateTime<Utc>>, page_token: Option<&'a str> },
    /// Changes since `sync_token`.
    Since { sync_token: &'a str, page_token: Option<&'a str> },
}

/// The Calendar client of one session.
pub(crate) struct Client<'a> {
    session: &'a Session,
    root: Url,
}

impl<'a> Client<'a> {
    pub fn new(session: &'a Session) -> Self {
        Self { session, root: session.deps().settings.google_api_url.clone() }
    }

    /// `GET {root}/calendar/v3/users/me/calendarList`.
    pub async fn calendar_list(&self, query: &Query<'_>) -> Result<Listing, SyncError> {
        let mut url = self.url(&["users", "me", "calendarList"])?;
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("maxResults", &CALENDAR_LIST_MAX.to_string());
            append(&mut pairs, query);
        }
        self.get(url).await
    }

    /// `GET {root}/calendar/v3/calendars/{calendar_id}/events` with `singleEvents=false` and
    /// `showDeleted=true` (masters, exceptions and cancellations as Google stores them).
    pub async fn events(&self, calendar_id: &str, query: &Query<'_>) -> Result<Listing, SyncError> {
        let mut url = self.url(&["calendars", calendar_id, "events"])?;
        {
            let page_size = self.session.deps().settings.google_page_size.clamp(1, EVENTS_MAX);
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("maxResults", &page_size.to_string());
            pairs.append_pair("singleEvents", "false");
            pairs.append_pair("showDeleted", "true");
            append(&mut pairs, query);
        }
        self.get(url).await
    }

    /// `{root}/calendar/v3/` plus `segments`, each percent-encoded (calendar ids hold `@` and `#`).
    fn url(&self, segments: &[&str]) -> Result<Url, SyncError> {
        let mut url = self.root.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| SyncError::Protocol("the Google API root cannot take a path".into()))?;
            path.pop_if_empty().extend(["calendar", "v3"]).extend(segments);
        }
        Ok(url)
    }

    async fn get(&self, url: Url) -> Result<Listing, SyncError> {
        let request = ApiRequest {
            method: Method::GET,
            url,
            headers: Vec::new(),
            body: None,
            spend: self.session.google_spend(),
        };
        let response = self.session.call(&request).await?;
        serde_json::from_slice(&response.body)
            .map_err(|_| SyncError::Protocol("a Calendar listing that is not the documented JSON".into()))
    }
}

fn append(pairs: &mut url::form_urlencoded::Serializer<'_, url::UrlQuery<'_>>, query: &Query<'_>) {
    let page_token = match query {
        Query::Full { time_min, page_token } => {
            if let Some(at) = time_min {
                pairs.append_pair("timeMin", &at.to_rfc3339_opts(SecondsFormat::Secs, true));
            }
            page_token
        }
        Query::Since { sync_token, page_token } => {
            pairs.append_pair("syncToken", sync_token);
            page_token
        }
    };
    if let Some(token) = page_token {
        pairs.append_pair("pageToken", token);
    }
}

/// Whether Google said the sync token is dead (410 `fullSyncRequired` and its family): the part
/// needs a new full sync.
pub(crate) fn is_gone(error: &SyncError) -> bool {
    matches!(error, SyncError::Rejected { code, message }
        if code == "fullSyncRequired" || code == "updatedMinTooLongAgo" || message.starts_with("HTTP 410"))
}

/// Whether Google refused a page token (400 `invalid` on `pageToken`; page tokens can expire):
/// the listing restarts from its first page.
pub(crate) fn is_bad_page_token(error: &SyncError) -> bool {
    matches!(error, SyncError::Rejected { code, message } if code == "invalid" && message.starts_with("HTTP 400"))
}

/// Whether the calendar is gone (404): the next calendar-list sync tombstones it.
pub(crate) fn is_not_found(error: &SyncError) -> bool {
    matches!(error, SyncError::Rejected { code, message } if code == "notFound" || message.starts_with("HTTP 404"))
}
