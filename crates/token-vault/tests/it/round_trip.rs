//! Sealing and opening: round trips, fresh nonces, exact sizes, header errors.

use crate::support::{row, token_set, vault};
use patchbay_token_vault::{Purpose, Vault, VaultError, FORMAT_VERSION, NONCE_LEN, OVERHEAD, TAG_LEN};
use secrecy::ExposeSecret;

#[test]
fn sealed_token_set_opens_to_the_same_bytes() {
    let vault = vault(&[1]);
    let aad = row(Purpose::TokenSet, 1, 1);
    let blob = vault.encrypt(&token_set(), &aad);
    assert_eq!(vault.decrypt(&blob, &aad).unwrap().as_slice(), token_set().as_slice());
}

#[test]
fn empty_plaintext_round_trips_in_an_envelope_of_exactly_the_overhead() {
    let vault = vault(&[1]);
    let aad = row(Purpose::PkceVerifier, 1, 1);
    let blob = vault.encrypt(b"", &aad);
    assert_eq!(blob.len(), OVERHEAD);
    assert!(vault.decrypt(&blob, &aad).unwrap().is_empty());
}

#[test]
fn decrypt_string_returns_the_text_as_a_secret() {
    let vault = vault(&[1]);
    let aad = row(Purpose::AccessToken, 1, 1);
    let blob = vault.encrypt("ya29.access-token".as_bytes(), &aad);
    assert_eq!(vault.decrypt_string(&blob, &aad).unwrap().expose_secret(), "ya29.access-token");
}

#[test]
fn decrypt_string_refuses_authentic_bytes_that_are_not_utf8() {
    let vault = vault(&[1]);
    let aad = row(Purpose::WebhookSecret, 1, 1);
    let blob = vault.encrypt(&[0xFF, 0xFE, 0x00], &aad);
    assert_eq!(vault.decrypt_string(&blob, &aad).unwrap_err(), VaultError::NotText);
}

#[test]
fn same_plaintext_twice_gets_different_nonces_and_ciphertexts() {
    let vault = vault(&[1]);
    let aad = row(Purpose::RefreshToken, 1, 1);
    let first = vault.encrypt(b"same refresh token", &aad);
    let second = vault.encrypt(b"same refresh token", &aad);
    assert_ne!(first[5..5 + NONCE_LEN], second[5..5 + NONCE_LEN], "nonces differ");
    assert_ne!(first[5 + NONCE_LEN..], second[5 + NONCE_LEN..], "ciphertexts differ");
}

#[test]
fn envelope_is_version_key_id_24_byte_nonce_ciphertext_and_16_byte_tag() {
    let vault = vault(&[0xA1B2_C3D4]);
    let plaintext = token_set();
    let blob = vault.encrypt(&plaintext, &row(Purpose::TokenSet, 1, 1));
    assert_eq!((NONCE_LEN, TAG_LEN, OVERHEAD), (24, 16, 45));
    assert_eq!(blob.len(), 1 + 4 + 24 + plaintext.len() + 16);
    assert_eq!(blob[..5], [FORMAT_VERSION, 0xA1, 0xB2, 0xC3, 0xD4]);
    assert_eq!(Vault::key_id_of(&blob), Ok(0xA1B2_C3D4));
    assert!(!blob.windows(16).any(|w| plaintext.windows(16).any(|p| p == w)), "no plaintext run survives");
}

#[test]
fn envelope_naming_a_key_outside_the_ring_is_unknown_key() {
    let blob = vault(&[7]).encrypt(b"token", &row(Purpose::AccessToken, 1, 1));
    let err = vault(&[1, 2]).decrypt(&blob, &row(Purpose::AccessToken, 1, 1)).unwrap_err();
    assert_eq!(err, VaultError::UnknownKey(7));
}

#[test]
fn envelope_with_an_unknown_format_byte_is_unknown_format() {
    let vault = vault(&[1]);
    let aad = row(Purpose::AccessToken, 1, 1);
    for format in [0u8, 2, 0x7F, 0xFF] {
        let mut blob = vault.encrypt(b"token", &aad);
        blob[0] = format;
        assert_eq!(vault.decrypt(&blob, &aad).unwrap_err(), VaultError::UnknownFormat(format), "format {format}");
        assert_eq!(Vault::key_id_of(&blob), Err(VaultError::UnknownFormat(format)));
    }
}
