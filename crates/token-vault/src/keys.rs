//! The key ring's lifecycle over stored ciphertexts: which key encrypts what, online
//! re-encryption under the primary key (`vault rotate`), and the check before a key is retired.
//! Credentials are re-encrypted here; synced records are re-encrypted by
//! `patchbay_sync::rekey` (their keyed hash is the sync's), but they are counted here, so a key
//! that still seals a record is never retired.

use crate::tokens::token_set_aad;
use crate::{KeyRing, Vault};
use chrono::Utc;
use patchbay_store::{ConnectStore, CredentialStore, EventOutStore, RecordStore, StoreError, WebhookStore};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Ciphertexts under one key id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyCount {
    /// Sealed token sets.
    pub credentials: i64,
    /// Sealed PKCE verifiers of connects in flight (they expire within minutes).
    pub pending_verifiers: i64,
    /// Sealed synced records (boards, columns, groups, items, calendars, events).
    pub records: i64,
    /// Sealed webhook source secrets and inbox bodies (re-encrypted by `rotate`) and event
    /// endpoint secrets (not re-encrypted by `rotate` yet).
    pub webhooks: i64,
}

impl KeyCount {
    pub fn total(&self) -> i64 {
        self.credentials + self.pending_verifiers + self.records + self.webhooks
    }
}

/// Every ciphertext Patchbay holds, by key id.
pub async fn key_usage<S>(store: &S) -> Result<BTreeMap<u32, KeyCount>, StoreError>
where
    S: CredentialStore + ConnectStore + RecordStore + WebhookStore + EventOutStore + ?Sized,
{
    let mut usage: BTreeMap<u32, KeyCount> = BTreeMap::new();
    for u in store.credential_key_usage().await? {
        usage.entry(u.key_id).or_default().credentials += u.credentials;
    }
    for u in store.record_key_usage().await? {
        usage.entry(u.key_id).or_default().records += u.records;
    }
    for u in store.webhook_key_usage().await? {
        usage.entry(u.key_id).or_default().webhooks += u.ciphertexts;
    }
    for u in store.event_endpoint_key_usage().await? {
        usage.entry(u.key_id).or_default().webhooks += u.ciphertexts;
    }
    for blob in store.unexpired_pkce_verifiers(Utc::now()).await? {
        // An unreadable header is counted under no key: it cannot be decrypted anyway.
        if let Ok(id) = Vault::key_id_of(&blob) {
            usage.entry(id).or_default().pending_verifiers += 1;
        }
    }
    Ok(usage)
}

/// How far a rotation has got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotateProgress {
    pub done: i64,
    pub total: i64,
    pub failed: usize,
}

/// Why a rotation or a retirement stopped.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0} credentials could not be re-encrypted (their key is not loaded, or they are corrupt)")]
    Unreadable(usize),
    #[error("{0} synced records could not be re-encrypted (their key is not loaded, or they are corrupt): load their key and run `patchbay vault rotate` again, or disconnect their connections")]
    UnreadableRecords(usize),
    #[error("key {0} is the primary key: move another key first in PATCHBAY_VAULT_KEYS, deploy, and run `patchbay vault rotate`")]
    Primary(u32),
    #[error("key {id} still encrypts {credentials} credentials, {records} synced records, {pending} pending connects and {webhooks} webhook secrets, inbox bodies or event endpoint secrets: run `patchbay vault rotate` (and let pending connects finish or expire) first; event endpoint secrets are not re-encrypted by rotate yet, so rotate each endpoint's secret (docs/events-out.md)")]
    InUse { id: u32, credentials: i64, records: i64, pending: i64, webhooks: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Re-encrypts every credential not under the primary key, in batches, online; returns how many
/// it moved. Each write is guarded by the row's version, and a row whose refresh lease is held
/// is taken again after the refresh (its provider call may have rotated the refresh token).
/// `progress` is called after every row.
pub async fn rotate<S>(
    store: &S,
    vault: &Vault,
    batch: u32,
    mut progress: impl FnMut(RotateProgress, Option<(patchbay_store::ConnectionId, &crate::VaultError)>),
) -> Result<i64, KeyError>
where
    S: CredentialStore + ?Sized,
{
    let primary = vault.ring().primary_id();
    let total: i64 =
        store.credential_key_usage().await?.iter().filter(|u| u.key_id != primary).map(|u| u.credentials).sum();
    let mut state = RotateProgress { total, ..RotateProgress::default() };
    let mut failed = BTreeSet::new();
    loop {
        let rows = store.credentials_to_rewrap(primary, batch.max(1) + failed.len() as u32).await?;
        let pending: Vec<_> = rows.into_iter().filter(|c| !failed.contains(&c.connection_id)).collect();
        if pending.is_empty() {
            break;
        }
        let before = state.done;
        for credential in pending {
            let aad = token_set_aad(credential.tenant_id, credential.connection_id);
            match vault.rewrap(&credential.ciphertext, &aad) {
                // A concurrent refresh wins the version guard; its write is already under the
                // primary key, so the row simply drops out of the next batch.
                Ok(blob) => {
                    if store.rewrap_credential(credential.connection_id, credential.version, primary, blob).await? {
                        state.done += 1;
                    }
                    progress(state, None);
                }
                Err(e) => {
                    failed.insert(credential.connection_id);
                    state.failed = failed.len();
                    progress(state, Some((credential.connection_id, &e)));
                }
            }
        }
        if state.done == before {
            // Every row of this pass is being refreshed right now (its lease is held): let the
            // refresh finish, then take the row again.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    if !failed.is_empty() {
        return Err(KeyError::Unreadable(failed.len()));
    }
    Ok(state.done)
}

/// Checks that a key can be removed from the ring: not the primary, and no ciphertext —
/// credential, synced record or pending connect's PKCE verifier — still uses it.
pub async fn check_retire<S>(store: &S, ring: &KeyRing, id: u32) -> Result<(), KeyError>
where
    S: CredentialStore + ConnectStore + RecordStore + WebhookStore + EventOutStore + ?Sized,
{
    if id == ring.primary_id() {
        return Err(KeyError::Primary(id));
    }
    let count = key_usage(store).await?.get(&id).copied().unwrap_or_default();
    if count.total() > 0 {
        return Err(KeyError::InUse {
            id,
            credentials: count.credentials,
            records: count.records,
            pending: count.pending_verifiers,
            webhooks: count.webhooks,
        });
    }
    Ok(())
}
