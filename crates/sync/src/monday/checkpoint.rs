//! Where an `items:{board}` part stands between pages and runs: the watermark (the newest
//! `updated_at` applied), what was applied at exactly that second, and an unfinished listing's
//! cursor and kind.

use super::errors::fold;
use crate::seal::Sealer;
use chrono::{DateTime, Utc};
use patchbay_store::RecordKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The checkpoint JSON of an items part.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ItemsCheckpoint {
    /// The newest `updated_at` applied. monday's times are whole seconds, so the next listing
    /// asks for `>=` it and skips what [`Self::at_watermark`] says it already has.
    pub watermark: Option<DateTime<Utc>>,
    /// Items applied with `updated_at == watermark`: id → fingerprint of the item as applied, so
    /// a second change within the same second is not mistaken for a repeat.
    pub at_watermark: BTreeMap<String, String>,
    /// The cursor of an unfinished listing (`None` between listings).
    pub cursor: Option<String>,
    /// The unfinished listing (or the next one) is a full reconciliation.
    pub full: bool,
    /// The board was tombstoned: whatever it comes back with must be listed in full.
    pub reset: bool,
}

impl ItemsCheckpoint {
    /// Reads a stored checkpoint; anything unreadable starts over (a full listing).
    pub fn read(value: &serde_json::Value) -> Self {
        if value.is_null() {
            return Self::default();
        }
        serde_json::from_value(value.clone()).unwrap_or_else(|_| Self { reset: true, ..Self::default() })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a checkpoint always serialises")
    }

    /// Whether an item read now was already applied as it is (only items at the watermark can be).
    pub fn already_applied(&self, id: &str, updated_at: Option<DateTime<Utc>>, fingerprint: &str) -> bool {
        updated_at.is_some()
            && updated_at == self.watermark
            && self.at_watermark.get(id).is_some_and(|f| f == fingerprint)
    }

    /// Moves the watermark past an applied item (items arrive oldest change first).
    pub fn applied(&mut self, id: &str, updated_at: Option<DateTime<Utc>>, fingerprint: String) {
        let Some(at) = updated_at else { return };
        match self.watermark {
            Some(mark) if at < mark => {}
            Some(mark) if at == mark => {
                self.at_watermark.insert(id.to_owned(), fingerprint);
            }
            _ => {
                self.watermark = Some(at);
                self.at_watermark = BTreeMap::from([(id.to_owned(), fingerprint)]);
            }
        }
    }
}

/// A short fingerprint of an item's canonical JSON under the record hash key (keyed, so the
/// checkpoint reveals nothing about the item).
pub(crate) fn fingerprint(sealer: &Sealer, bytes: &[u8]) -> String {
    hex::encode(&sealer.hash(RecordKind::MondayItem, bytes)[..12])
}

/// Whether a refusal means the stored cursor can no longer be used (expired or unknown).
pub(crate) fn cursor_dead(code: &str) -> bool {
    matches!(fold(code).as_str(), "cursorexpirederror" | "invalidcursorexception" | "cursorexception")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(1_800_000_000 + second, 0)
    }

    #[test]
    fn the_watermark_keeps_what_was_applied_at_its_second() {
        let mut cp = ItemsCheckpoint::default();
        cp.applied("1", at(0), "a".into());
        cp.applied("2", at(5), "b".into());
        cp.applied("3", at(5), "c".into());
        cp.applied("4", at(3), "d".into());
        assert_eq!(cp.watermark, at(5));
        assert_eq!(cp.at_watermark.keys().collect::<Vec<_>>(), ["2", "3"]);
        assert!(cp.already_applied("2", at(5), "b"));
        assert!(!cp.already_applied("2", at(5), "changed within the second"));
        assert!(!cp.already_applied("2", at(6), "b"));
        assert!(!cp.already_applied("1", at(5), "a"));
    }

    #[test]
    fn an_unreadable_checkpoint_asks_for_a_full_listing() {
        assert!(ItemsCheckpoint::read(&serde_json::json!("garbage")).reset);
        assert_eq!(ItemsCheckpoint::read(&serde_json::json!({})), ItemsCheckpoint::default());
        let cp = ItemsCheckpoint { cursor: Some("c".into()), full: true, ..ItemsCheckpoint::default() };
        assert_eq!(ItemsCheckpoint::read(&cp.to_json()), cp);
    }
}
