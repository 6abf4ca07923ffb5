//! Patchbay-side idempotency for write-back (architecture §4.3): an `Idempotency-Key` claims the
//! request's hash for 24 hours; the same key with the same body gets the first answer again, with
//! another body a refusal. The stored answer holds item data, so it is sealed with the vault,
//! bound to the tenant, the connection and the key.

use crate::SyncError;
use chrono::{DateTime, Utc};
use patchbay_store::{ConnectionId, IdempotencyBegin, IdempotencyStore, TenantId, TenantScope};
use patchbay_token_vault::{Aad, Purpose, Vault};
use sha2::{Digest, Sha256};

/// How long a key remembers its answer.
pub const KEY_TTL: chrono::Duration = chrono::Duration::hours(24);
/// A first request that has not finished after this long is presumed dead; its key is taken over.
pub const STALE_AFTER: chrono::Duration = chrono::Duration::seconds(60);

/// Whether `key` is an acceptable `Idempotency-Key`: 1–255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The hash a key is bound to: the request's target and its body in canonical form (object keys
/// sorted, no insignificant whitespace), so a re-serialised equal body matches.
pub fn request_hash(parts: &[&str], body: &serde_json::Value) -> Vec<u8> {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    // serde_json's maps are sorted (no `preserve_order`), so this is canonical.
    hash.update(serde_json::to_vec(body).expect("a JSON value always serialises"));
    hash.finalize().to_vec()
}

/// What claiming a key found, with a replayed answer already opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Run the request, then [`Keys::finish`] (or [`Keys::abandon`]).
    Started,
    Replay {
        status: u16,
        body: Vec<u8>,
    },
    Mismatch,
    InFlight,
}

/// The idempotency keys of one connection.
pub struct Keys<'a> {
    pub store: &'a dyn IdempotencyStore,
    pub vault: &'a Vault,
    pub tenant: TenantId,
    pub connection: ConnectionId,
}

impl std::fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("connection", &self.connection).finish_non_exhaustive()
    }
}

impl Keys<'_> {
    fn aad(&self, key: &str) -> Aad {
        Aad::connection(Purpose::Record, self.tenant.0.as_bytes(), self.connection.0.as_bytes())
            .with("table", "idempotency_key")
            .with("key", key.as_bytes())
    }

    fn scope(&self) -> TenantScope {
        TenantScope::new(self.tenant)
    }

    /// Claims `key` for a request with `hash`.
    pub async fn claim(&self, key: &str, hash: &[u8], now: DateTime<Utc>) -> Result<Claim, SyncError> {
        let begun = self
            .store
            .begin_idempotent(self.scope(), self.connection, key, hash, now + KEY_TTL, STALE_AFTER, now)
            .await?;
        Ok(match begun {
            IdempotencyBegin::Started => Claim::Started,
            IdempotencyBegin::Mismatch => Claim::Mismatch,
            IdempotencyBegin::InFlight => Claim::InFlight,
            IdempotencyBegin::Replay { status, response } => {
                let body = self.vault.decrypt(&response, &self.aad(key)).map_err(|e| {
                    tracing::error!(error = %e, "a stored idempotent answer cannot be decrypted");
                    SyncError::Decrypt
                })?;
                Claim::Replay { status, body: body.to_vec() }
            }
        })
    }

    /// Stores the answer of a started key, sealed.
    pub async fn finish(&self, key: &str, status: u16, body: &[u8]) -> Result<(), SyncError> {
        let sealed = self.vault.encrypt(body, &self.aad(key));
        Ok(self.store.finish_idempotent(self.scope(), self.connection, key, status, sealed).await?)
    }

    /// Forgets a started key whose request may be retried (nothing definitive happened).
    pub async fn abandon(&self, key: &str) -> Result<(), SyncError> {
        Ok(self.store.abandon_idempotent(self.scope(), self.connection, key).await?)
    }
}
