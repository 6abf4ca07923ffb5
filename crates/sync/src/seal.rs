//! Sealed records (architecture §3): a record's provider JSON is encrypted with the vault under
//! purpose `record`, bound to (tenant, connection, table, record id), and fingerprinted with a
//! keyed hash so unchanged records are recognised without keeping anything guessable in clear.

use crate::SyncError;
use hmac::{Hmac, Mac};
use patchbay_store::{ConnectionId, Record, RecordId, RecordKind, Rewrap, TenantId};
use patchbay_token_vault::{Aad, Purpose, Vault, VaultError};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Seals, opens and hashes records. Cheap to clone.
#[derive(Clone)]
pub struct Sealer {
    vault: Vault,
    hash_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("vault", &self.vault).finish_non_exhaustive()
    }
}

/// A record's ciphertext, hash and key id, ready for [`patchbay_store::RecordFields`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub sealed: Vec<u8>,
    pub hash: Vec<u8>,
    pub key_id: u32,
}

/// The associated data of one record's ciphertext.
pub fn record_aad(tenant: TenantId, connection: ConnectionId, kind: RecordKind, id: RecordId) -> Aad {
    Aad::connection(Purpose::Record, tenant.0.as_bytes(), connection.0.as_bytes())
        .with("table", kind.as_str())
        .with("record", id.0.as_bytes())
}

impl Sealer {
    /// A sealer over `vault`; the hash key is derived from its primary key.
    pub fn new(vault: Vault) -> Self {
        let hash_key = vault.derive_subkey("record hash");
        Self { vault, hash_key }
    }

    /// The key id new seals (and rewraps) are under.
    pub fn primary_key_id(&self) -> u32 {
        self.vault.ring().primary_id()
    }

    /// The keyed hash of a record's canonical bytes (HMAC-SHA256 over kind and bytes).
    pub fn hash(&self, kind: RecordKind, bytes: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hash_key[..]).expect("HMAC takes keys of any length");
        mac.update(kind.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(bytes);
        mac.finalize().into_bytes().to_vec()
    }

    /// Seals `value` for the record `(tenant, connection, kind, id)`.
    pub fn seal(
        &self,
        tenant: TenantId,
        connection: ConnectionId,
        kind: RecordKind,
        id: RecordId,
        value: &serde_json::Value,
    ) -> Sealed {
        // serde_json writes object keys in a fixed order (sorted maps), so equal values hash equal.
        let bytes = Zeroizing::new(serde_json::to_vec(value).expect("a JSON value always serialises"));
        let hash = self.hash(kind, &bytes);
        let sealed = self.vault.encrypt(&bytes, &record_aad(tenant, connection, kind, id));
        Sealed { sealed, hash, key_id: self.vault.ring().primary_id() }
    }

    /// Opens a stored record's JSON.
    pub fn open(&self, record: &Record) -> Result<serde_json::Value, SyncError> {
        self.open_as(record)
    }

    /// Opens a stored record straight into `T`: a reader that wants a few typed fields skips
    /// building a whole `Value` (the read API opens a hundred records per page).
    pub fn open_as<T: serde::de::DeserializeOwned>(&self, record: &Record) -> Result<T, SyncError> {
        let aad = record_aad(record.tenant_id, record.connection_id, record.kind, record.id);
        let bytes = self.vault.decrypt(&record.fields.sealed, &aad).map_err(|e| {
            tracing::error!(record = %record.id, kind = %record.kind, error = %e, "a stored record cannot be decrypted");
            metrics::counter!("patchbay_record_decrypt_failures_total").increment(1);
            SyncError::Decrypt
        })?;
        serde_json::from_slice(&bytes).map_err(|_| {
            tracing::error!(record = %record.id, kind = %record.kind, "a stored record does not hold the expected JSON");
            SyncError::Decrypt
        })
    }

    /// Re-seals a record under the primary key with a hash under the current hash key.
    pub fn rewrap(&self, record: &Record) -> Result<Rewrap, VaultError> {
        let aad = record_aad(record.tenant_id, record.connection_id, record.kind, record.id);
        let bytes = self.vault.decrypt(&record.fields.sealed, &aad)?;
        Ok(Rewrap {
            key_id: self.vault.ring().primary_id(),
            hash: self.hash(record.kind, &bytes),
            sealed: self.vault.encrypt(&bytes, &aad),
        })
    }
}
