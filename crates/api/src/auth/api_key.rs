//! API keys: `pb_` followed by 43 base64url characters (32 random bytes). Shown once; stored
//! as a SHA-256 and a short display prefix.

use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Every key starts with this, so leaked keys are recognisable by scanners.
pub const KEY_PREFIX: &str = "pb_";
const DISPLAY_PREFIX_LEN: usize = 11;

/// A freshly generated key: the full text (show once) and what the store keeps.
pub struct GeneratedKey {
    pub key: SecretString,
    pub prefix: String,
    pub sha256: [u8; 32],
}

/// Makes a new random key.
pub fn generate() -> GeneratedKey {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = format!("{KEY_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let prefix = key[..DISPLAY_PREFIX_LEN].to_string();
    let sha256 = hash(&key);
    GeneratedKey { key: SecretString::from(key), prefix, sha256 }
}

/// The SHA-256 under which a key is stored and looked up.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether a bearer credential looks like an API key (rather than a JWT).
pub fn looks_like_key(credential: &SecretString) -> bool {
    let text = credential.expose_secret();
    text.starts_with(KEY_PREFIX) && text.len() == KEY_PREFIX.len() + 43
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_recognisable_unique_and_hash_to_what_is_stored() {
        let a = generate();
        let b = generate();
        assert!(looks_like_key(&a.key), "a generated key is recognised as one");
        assert_ne!(a.key.expose_secret(), b.key.expose_secret());
        assert_eq!(hash(a.key.expose_secret()), a.sha256);
        assert!(a.key.expose_secret().starts_with(&a.prefix));
        assert_eq!(a.prefix.len(), 11);
    }
}
