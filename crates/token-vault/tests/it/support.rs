//! Shared fixtures: key rings with chosen ids and fixed key bytes, and typical row bindings.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use patchbay_token_vault::{Aad, KeyRing, Purpose, Vault};
use secrecy::SecretString;

/// The key bytes used for key id `id` in these tests (distinct per id, recognisable in a dump).
pub fn key_bytes(id: u32) -> [u8; 32] {
    let mut key = [0x5A; 32];
    key[..4].copy_from_slice(&id.to_be_bytes());
    key
}

/// The `PATCHBAY_VAULT_KEYS` text for these ids, in order (first = primary).
pub fn ring_text(ids: &[u32]) -> String {
    ids.iter().map(|id| format!("{id}:{}", STANDARD.encode(key_bytes(*id)))).collect::<Vec<_>>().join(",")
}

/// A vault whose ring holds these ids, in order (first = primary).
pub fn vault(ids: &[u32]) -> Vault {
    Vault::new(KeyRing::parse(&SecretString::from(ring_text(ids))).expect("test ring parses"))
}

/// The binding of `purpose` on connection `connection` of tenant `tenant`, as uuid-sized bytes.
pub fn row(purpose: Purpose, tenant: u8, connection: u8) -> Aad {
    Aad::connection(purpose, [tenant; 16], [connection; 16])
}

/// A realistic token-set plaintext (~400 bytes of JSON).
pub fn token_set() -> Vec<u8> {
    let access = "ya29.".to_string() + &"a".repeat(160);
    let refresh = "1//0g".to_string() + &"r".repeat(98);
    format!(
        r#"{{"access_token":"{access}","refresh_token":"{refresh}","token_type":"Bearer","expires_at":"2030-01-01T00:00:00Z","scope":"openid email https://www.googleapis.com/auth/calendar.readonly"}}"#
    )
    .into_bytes()
}
