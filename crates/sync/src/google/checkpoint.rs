//! A listing part's checkpoint (`calendars`, `events:{calendar id}`), stored as JSON in the
//! part's sync state after every page: which phase the part is in, the sync token it reads
//! changes from, the page token of the next page, and the `timeMin` a full sync was started with
//! (kept so a resumed full sync sends the identical query its page token belongs to).

use super::client::Query;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a part's listing stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Phase {
    /// A full listing (the first, or after a 410) is under way, or has to start.
    #[default]
    Full,
    /// The part holds a sync token from a finished full listing and reads changes.
    Incremental,
}

/// The stored position of a part.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub phase: Phase,
    /// Incremental: the token the current (or next) incremental listing starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_token: Option<String>,
    /// The next page of the listing under way; `None` between listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
    /// Full (events only): the lower bound the full listing was started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_min: Option<DateTime<Utc>>,
    /// When the listing under way fetched its first page: its success time, so a change signal
    /// that arrived while it paged keeps the part dirty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
}

impl Checkpoint {
    /// Reads a stored checkpoint; anything unreadable (a `null` from `mark_dirty`, an older
    /// shape) means "start with a full listing".
    pub fn read(value: &serde_json::Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a checkpoint always serialises")
    }

    /// A fresh full listing bounded at `time_min`.
    pub fn full(time_min: Option<DateTime<Utc>>) -> Self {
        Self { phase: Phase::Full, sync_token: None, page_token: None, time_min, started_at: None }
    }

    /// Whether the part has finished a full listing (holds a sync token) and is not mid-listing.
    pub fn is_settled(&self) -> bool {
        self.phase == Phase::Incremental && self.sync_token.is_some() && self.page_token.is_none()
    }

    /// Whether this is a full listing that has not fetched its first page yet.
    pub fn is_fresh_full(&self) -> bool {
        self.phase == Phase::Full && self.page_token.is_none()
    }

    /// The request for the next page.
    pub fn query(&self) -> Query<'_> {
        match (&self.phase, &self.sync_token) {
            (Phase::Incremental, Some(token)) => {
                Query::Since { sync_token: token, page_token: self.page_token.as_deref() }
            }
            _ => Query::Full { time_min: self.time_min, page_token: self.page_token.as_deref() },
        }
    }

    /// The checkpoint after a page that ended with `next_page_token` or `next_sync_token`; also
    /// whether that page finished the listing (and, for a full listing, the sweep is due).
    pub fn after_page(&self, next_page_token: Option<String>, next_sync_token: Option<String>) -> (Self, bool) {
        match (next_page_token, next_sync_token) {
            (Some(page), _) => (Self { page_token: Some(page), ..self.clone() }, false),
            (None, Some(sync)) => {
                let next = Self { phase: Phase::Incremental, sync_token: Some(sync), ..Self::default() };
                (next, true)
            }
            // Neither token: Google always sends one; keep the old sync token and start over
            // from it next time rather than lose the position.
            (None, None) => (Self { page_token: None, started_at: None, ..self.clone() }, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_or_foreign_checkpoint_means_a_full_listing() {
        assert_eq!(Checkpoint::read(&serde_json::Value::Null), Checkpoint::default());
        assert_eq!(Checkpoint::read(&serde_json::json!({"cursor": 3})), Checkpoint::default());
        assert!(Checkpoint::default().is_fresh_full());
    }

    #[test]
    fn a_full_listing_keeps_its_time_min_until_the_sync_token_arrives() {
        let at = Utc::now();
        let (mid, done) = Checkpoint::full(Some(at)).after_page(Some("p2".into()), None);
        assert!(!done);
        assert_eq!(mid.time_min, Some(at));
        assert_eq!(Checkpoint::read(&mid.to_json()), mid);
        let (end, done) = mid.after_page(None, Some("s1".into()));
        assert!(done && end.is_settled());
        assert_eq!(end.time_min, None);
    }

    #[test]
    fn an_incremental_page_repeats_its_sync_token() {
        let start = Checkpoint { phase: Phase::Incremental, sync_token: Some("s1".into()), ..Default::default() };
        let (mid, done) = start.after_page(Some("p2".into()), None);
        assert!(!done && !mid.is_settled());
        assert!(matches!(mid.query(), Query::Since { sync_token: "s1", page_token: Some("p2") }));
    }
}
