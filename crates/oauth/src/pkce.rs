//! PKCE (RFC 7636, S256 only) and the `state` value of an authorization request.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use rand::{rngs::OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Random bytes behind a verifier and a state: 256 bits, 43 base64url characters.
const RANDOM_BYTES: usize = 32;

/// A fresh PKCE pair for one authorization request.
///
/// `Debug` prints the verifier as `[REDACTED]`; the challenge is public by design.
#[derive(Debug)]
pub struct Pkce {
    /// The code verifier, kept server-side with the state row and sent only to the token endpoint.
    pub verifier: SecretString,
    /// `BASE64URL-NOPAD(SHA-256(verifier))`, sent in the authorization URL.
    pub challenge: String,
}

impl Pkce {
    /// A new verifier from 32 OS CSPRNG bytes (43 characters) and its S256 challenge.
    pub fn generate() -> Self {
        let verifier = random_token();
        let challenge = pkce_challenge(&verifier);
        Self { verifier: SecretString::from(verifier), challenge }
    }

    /// The challenge of this pair's verifier, recomputed (equals `self.challenge`).
    pub fn recompute_challenge(&self) -> String {
        pkce_challenge(self.verifier.expose_secret())
    }
}

/// The S256 code challenge of `verifier`: `BASE64URL-NOPAD(SHA-256(ASCII(verifier)))`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A new opaque `state`: 32 OS CSPRNG bytes (256 bits), base64url without padding.
pub fn new_state() -> String {
    random_token()
}

fn random_token() -> String {
    let mut bytes = [0u8; RANDOM_BYTES];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn is_verifier_shaped(s: &str) -> bool {
        (43..=128).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    }

    #[test]
    fn challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn ten_thousand_verifiers_are_unique_well_formed_and_match_their_challenge() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let pkce = Pkce::generate();
            let verifier = pkce.verifier.expose_secret().to_owned();
            assert_eq!(verifier.len(), 43, "32 bytes encode to 43 characters");
            assert!(is_verifier_shaped(&verifier), "verifier {verifier:?} is outside RFC 7636's alphabet");
            assert_eq!(pkce.challenge.len(), 43);
            assert_eq!(pkce.challenge, pkce.recompute_challenge());
            assert!(seen.insert(verifier), "a verifier repeated");
        }
    }

    #[test]
    fn states_are_unique_and_carry_at_least_128_bits() {
        let states: HashSet<String> = (0..1_000).map(|_| new_state()).collect();
        assert_eq!(states.len(), 1_000);
        for state in &states {
            let decoded = URL_SAFE_NO_PAD.decode(state).expect("state is base64url");
            assert!(decoded.len() >= 16, "state decodes to {} bytes", decoded.len());
        }
    }

    #[test]
    fn verifier_debug_is_redacted() {
        let pkce = Pkce::generate();
        let debug = format!("{pkce:?}");
        assert!(!debug.contains(pkce.verifier.expose_secret()));
    }
}
