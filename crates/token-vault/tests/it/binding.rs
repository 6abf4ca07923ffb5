//! Associated data: a ciphertext moved to another row, tenant or column fails authentication.

use crate::support::{row, vault};
use patchbay_token_vault::{Aad, Purpose, VaultError};

#[test]
fn ciphertext_bound_elsewhere_fails_authentication() {
    let vault = vault(&[1]);
    let home = row(Purpose::RefreshToken, 1, 10);
    let blob = vault.encrypt(b"1//refresh-token", &home);
    let elsewhere = [
        ("another connection of the same tenant", row(Purpose::RefreshToken, 1, 11)),
        ("the same connection id under another tenant", row(Purpose::RefreshToken, 2, 10)),
        ("another tenant and connection", row(Purpose::RefreshToken, 2, 11)),
        ("the access-token column of the same row", row(Purpose::AccessToken, 1, 10)),
        ("the token-set column of the same row", row(Purpose::TokenSet, 1, 10)),
        ("a binding with an extra field", row(Purpose::RefreshToken, 1, 10).with("provider", "google")),
        ("a binding without the connection", Aad::new(Purpose::RefreshToken).with("tenant", [1u8; 16])),
    ];
    for (what, aad) in elsewhere {
        assert_eq!(vault.decrypt(&blob, &aad).unwrap_err(), VaultError::Authentication, "{what}");
    }
    assert!(vault.decrypt(&blob, &home).is_ok(), "the home row still reads it");
}

#[test]
fn swapping_access_and_refresh_columns_fails_both_ways() {
    let vault = vault(&[1]);
    let (access_row, refresh_row) = (row(Purpose::AccessToken, 1, 1), row(Purpose::RefreshToken, 1, 1));
    let access = vault.encrypt(b"access", &access_row);
    let refresh = vault.encrypt(b"refresh", &refresh_row);
    assert_eq!(vault.decrypt(&access, &refresh_row).unwrap_err(), VaultError::Authentication);
    assert_eq!(vault.decrypt(&refresh, &access_row).unwrap_err(), VaultError::Authentication);
}

#[test]
fn adjacent_ids_cannot_trade_bytes() {
    let vault = vault(&[1]);
    let blob = vault.encrypt(b"secret", &Aad::connection(Purpose::ChannelToken, "ab", "c"));
    let shifted = Aad::connection(Purpose::ChannelToken, "a", "bc");
    assert_eq!(vault.decrypt(&blob, &shifted).unwrap_err(), VaultError::Authentication);
}

#[test]
fn rewriting_the_key_id_in_the_header_fails_even_when_that_key_is_loaded() {
    // Both ring keys are present; relabelling the envelope to key 2 must not authenticate.
    let vault = vault(&[1, 2]);
    let aad = row(Purpose::EndpointSecret, 1, 1);
    let mut blob = vault.encrypt(b"whsec_endpoint", &aad);
    blob[1..5].copy_from_slice(&2u32.to_be_bytes());
    assert_eq!(vault.decrypt(&blob, &aad).unwrap_err(), VaultError::Authentication);
}

#[test]
fn every_flipped_bit_fails_authentication_or_is_refused() {
    let vault = vault(&[1]);
    let aad = row(Purpose::AccessToken, 1, 1);
    let blob = vault.encrypt(b"token", &aad);
    for bit in 0..blob.len() * 8 {
        let mut tampered = blob.clone();
        tampered[bit / 8] ^= 1 << (bit % 8);
        let refused = vault.decrypt(&tampered, &aad).expect_err("a flipped bit never decrypts");
        // The header is checked before authentication: a changed format byte or key id is named
        // as such; every other bit fails the tag.
        let expected = match bit / 8 {
            0 => matches!(refused, VaultError::UnknownFormat(_)),
            1..=4 => matches!(refused, VaultError::UnknownKey(_)),
            _ => matches!(refused, VaultError::Authentication),
        };
        assert!(expected, "bit {bit}: {refused:?}");
    }
}
