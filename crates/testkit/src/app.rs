//! What every test Patchbay is configured with, for the suites that spawn one (in process in
//! `crates/api/tests`, the real binary in the top-level `tests/` package): the user-token secret,
//! a vault key ring, user tokens signed for it, and free loopback ports.
//!
//! Spawning the app itself stays with those suites: it needs `patchbay-api`, which this crate must
//! not depend on (`patchbay-api` dev-depends on it, and `patchbay demo` will use the fakes).

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Map, Value};

/// The HS256 secret every test app verifies user tokens with (`PATCHBAY_AUTH_JWT_SECRET`).
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789abcdef";
/// A valid one-key ring (`PATCHBAY_VAULT_KEYS`).
pub const VAULT_KEYS: &str = "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A free loopback port (bound and released; the app binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A user token signed with [`JWT_SECRET`]; `extra` claims are merged in (a `null` removes one).
pub fn token(sub: &str, extra: Value) -> String {
    sign(JWT_SECRET, sub, extra)
}

/// A user token for `sub` (issuer `https://idp.test`, valid for 10 minutes) signed with `secret`;
/// `extra` claims are merged in (a `null` removes one).
pub fn sign(secret: &str, sub: &str, extra: Value) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims: Map<String, Value> =
        json!({"sub": sub, "iss": "https://idp.test", "iat": now, "exp": now + 600}).as_object().unwrap().clone();
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        if v.is_null() {
            claims.remove(&k);
        } else {
            claims.insert(k, v);
        }
    }
    encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}
