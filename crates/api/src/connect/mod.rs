//! The browser connect flow (architecture §4.1): connect sessions, the provider redirect with
//! state + PKCE + a per-state cookie, and the callback that stores the connection.

pub mod flow;
pub mod pages;
pub mod targets;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A random URL-safe token of 32 bytes and its SHA-256 (what the store keeps).
pub fn random_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let digest = sha256(&token);
    (token, digest)
}

/// SHA-256 of a token's text.
pub fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}
