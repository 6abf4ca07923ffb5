//! `Vault`: seals values under the primary key with a fresh random nonce, opens them with whichever
//! ring key their envelope names, and rewraps old envelopes onto the primary key.

use crate::envelope::{self, NONCE_LEN};
use crate::{Aad, KeyRing, VaultError};
use rand::RngCore;
use secrecy::SecretString;
use zeroize::Zeroizing;

/// Encrypts and decrypts tokens at rest with a [`KeyRing`]. Cheap to clone; `Debug` shows key ids only.
#[derive(Clone, Debug)]
pub struct Vault {
    ring: KeyRing,
}

impl Vault {
    /// A vault over this key ring.
    pub fn new(ring: KeyRing) -> Self {
        Self { ring }
    }

    /// The key ring (for reporting loaded key ids).
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Seals `plaintext` under the primary key with a fresh 24-byte OsRng nonce, bound to `aad`.
    /// The result is `OVERHEAD + plaintext.len()` bytes.
    ///
    /// # Panics
    /// Only if `plaintext` exceeds the cipher's limit of about 256 GiB.
    pub fn encrypt(&self, plaintext: &[u8], aad: &Aad) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // 192-bit random nonces: collisions are negligible for any realistic number of writes per key.
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        envelope::seal(self.ring.primary(), &nonce, plaintext, aad)
    }

    /// Opens an envelope with the key it names. Fails, never panics, on any malformed input.
    pub fn decrypt(&self, blob: &[u8], aad: &Aad) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let parsed = envelope::parse(blob)?;
        let key = self.ring.get(parsed.key_id).ok_or(VaultError::UnknownKey(parsed.key_id))?;
        envelope::open(key, &parsed, aad)
    }

    /// Opens an envelope holding UTF-8 text (a token, a secret) as a [`SecretString`].
    pub fn decrypt_string(&self, blob: &[u8], aad: &Aad) -> Result<SecretString, VaultError> {
        let mut plaintext = self.decrypt(blob, aad)?;
        // Move the bytes out so the String reuses the zeroizing buffer's allocation rather than copying it.
        match String::from_utf8(std::mem::take(&mut *plaintext)) {
            Ok(text) => Ok(SecretString::from(text)),
            Err(err) => {
                drop(Zeroizing::new(err.into_bytes()));
                Err(VaultError::NotText)
            }
        }
    }

    /// A 32-byte key for `label` derived from the primary key (HMAC-SHA256 of the label under
    /// the key), for keyed hashes of sealed data: equal inputs hash equal under one primary key,
    /// and nobody without the key can test a guess. Changes when the primary key changes.
    pub fn derive_subkey(&self, label: &str) -> Zeroizing<[u8; 32]> {
        use hmac::{Hmac, Mac};
        use secrecy::ExposeSecret;
        let primary = self.ring.primary();
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(primary.material.expose_secret())
            .expect("HMAC takes keys of any length");
        mac.update(b"patchbay subkey\n");
        mac.update(label.as_bytes());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// The key id in an envelope's header, without decrypting (for `vault status` counts).
    pub fn key_id_of(blob: &[u8]) -> Result<u32, VaultError> {
        envelope::parse(blob).map(|parsed| parsed.key_id)
    }

    /// Whether a well-formed envelope was sealed under a key other than the primary.
    /// Malformed blobs answer `false`: rewrapping cannot help them and `decrypt` reports why.
    pub fn needs_rewrap(&self, blob: &[u8]) -> bool {
        matches!(Self::key_id_of(blob), Ok(id) if id != self.ring.primary_id())
    }

    /// Decrypts with the envelope's own key and seals again under the primary key with a fresh nonce.
    pub fn rewrap(&self, blob: &[u8], aad: &Aad) -> Result<Vec<u8>, VaultError> {
        let plaintext = self.decrypt(blob, aad)?;
        Ok(self.encrypt(&plaintext, aad))
    }
}
