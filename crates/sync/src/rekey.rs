//! `vault rotate` for synced records: every record not sealed under the primary key is
//! re-sealed under it, in batches, online and resumable (architecture §4.2, §3 "Synced
//! records"). The keyed hash is recomputed in the same write, under the hash key the primary
//! key derives, so once a record is rotated a sync that sees it unchanged finds the same hash and
//! does not rewrite it.
//!
//! Each write is guarded by the record's old ciphertext: a sync that rewrote the record
//! meanwhile (already under the primary key) wins, and the record drops out of the next batch.
//! Credentials are rotated by [`patchbay_token_vault::keys::rotate`]; counting and the retire
//! check cover both ([`patchbay_token_vault::keys::key_usage`]).

use crate::seal::Sealer;
use patchbay_store::{RecordId, RecordKind, RecordStore};
use patchbay_token_vault::keys::{KeyError, RotateProgress};
use patchbay_token_vault::VaultError;
use std::collections::BTreeSet;
use std::time::Duration;

/// One record [`rotate_records`] could not open.
#[derive(Debug)]
pub struct RecordFailure<'a> {
    pub kind: RecordKind,
    pub id: RecordId,
    pub error: &'a VaultError,
}

/// Re-seals every record not under the sealer's primary key; returns how many it moved.
/// `progress` is called after every record (with the failure, when it could not be opened).
/// Stopping half-way loses nothing: the next call takes the records still under another key.
/// Records that cannot be opened (their key is not loaded) are skipped and reported as
/// [`KeyError::UnreadableRecords`] once every other record has moved.
pub async fn rotate_records<S>(
    store: &S,
    sealer: &Sealer,
    batch: u32,
    mut progress: impl FnMut(RotateProgress, Option<RecordFailure<'_>>),
) -> Result<i64, KeyError>
where
    S: RecordStore + ?Sized,
{
    let primary = sealer.primary_key_id();
    let total: i64 = store.record_key_usage().await?.iter().filter(|u| u.key_id != primary).map(|u| u.records).sum();
    let mut state = RotateProgress { total, ..RotateProgress::default() };
    let mut failed: BTreeSet<RecordId> = BTreeSet::new();
    loop {
        let limit = batch.max(1).saturating_add(u32::try_from(failed.len()).unwrap_or(u32::MAX));
        let rows = store.records_to_rewrap(primary, limit).await?;
        let pending: Vec<_> = rows.into_iter().filter(|r| !failed.contains(&r.id)).collect();
        if pending.is_empty() {
            break;
        }
        let before = state.done;
        for record in pending {
            match sealer.rewrap(&record) {
                Ok(rewrapped) => {
                    if store.rewrap_record(record.kind, record.id, &record.fields.sealed, rewrapped).await? {
                        state.done += 1;
                    }
                    progress(state, None);
                }
                Err(error) => {
                    failed.insert(record.id);
                    state.failed = failed.len();
                    progress(state, Some(RecordFailure { kind: record.kind, id: record.id, error: &error }));
                }
            }
        }
        if state.done == before {
            // Every record of this pass was rewritten by a sync in between (under whatever key
            // that instance encrypts with): give it a moment, then take them again.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    if !failed.is_empty() {
        return Err(KeyError::UnreadableRecords(failed.len()));
    }
    Ok(state.done)
}
