//! Key rotation as operators run it: add a key second, promote it, rewrap, retire the old key.

use crate::support::{row, vault};
use patchbay_token_vault::{Purpose, Vault, VaultError};

#[test]
fn rotation_from_k1_to_k2_keeps_every_row_readable_until_k1_is_retired() {
    let (k1, k2) = (1, 2);
    let rows: Vec<_> = (0..5u8).map(|c| (row(Purpose::RefreshToken, 1, c), format!("refresh-{c}"))).collect();

    // Ring {k1}: every write is sealed under k1.
    let only_k1 = vault(&[k1]);
    let mut stored: Vec<Vec<u8>> = rows.iter().map(|(aad, t)| only_k1.encrypt(t.as_bytes(), aad)).collect();
    assert!(stored.iter().all(|b| Vault::key_id_of(b) == Ok(k1)));

    // Deploy 1, ring {k1, k2}: k2 is loaded everywhere but writes still use k1.
    let k2_second = vault(&[k1, k2]);
    let (aad, text) = &rows[0];
    stored[0] = k2_second.encrypt(text.as_bytes(), aad);
    assert_eq!(Vault::key_id_of(&stored[0]), Ok(k1), "new writes stay on k1 while k2 is second");
    assert_all_read(&k2_second, &rows, &stored);
    assert!(stored.iter().all(|b| !k2_second.needs_rewrap(b)));

    // Deploy 2, ring {k2, k1}: writes move to k2, k1 rows still read and need rewrapping.
    let k2_first = vault(&[k2, k1]);
    let (aad, text) = &rows[1];
    stored[1] = k2_first.encrypt(text.as_bytes(), aad);
    assert_eq!(Vault::key_id_of(&stored[1]), Ok(k2));
    assert_all_read(&k2_first, &rows, &stored);
    assert!(!k2_first.needs_rewrap(&stored[1]));
    assert!(k2_first.needs_rewrap(&stored[0]) && k2_first.needs_rewrap(&stored[2]));

    // Rewrap every row but the last, which stays behind on k1.
    let leftover = stored[4].clone();
    for (blob, (aad, _)) in stored.iter_mut().zip(&rows).take(4) {
        if k2_first.needs_rewrap(blob) {
            *blob = k2_first.rewrap(blob, aad).unwrap();
        }
    }
    assert!(stored[..4].iter().all(|b| Vault::key_id_of(b) == Ok(k2)));

    // Ring {k2}: rewrapped rows read; the leftover k1 row is refused, not misread.
    let only_k2 = vault(&[k2]);
    assert_all_read(&only_k2, &rows[..4], &stored[..4]);
    assert_eq!(only_k2.decrypt(&leftover, &rows[4].0).unwrap_err(), VaultError::UnknownKey(k1));
}

#[test]
fn rewrap_checks_the_binding_before_moving_a_ciphertext() {
    let vault = vault(&[2, 1]);
    let blob = crate::support::vault(&[1]).encrypt(b"token", &row(Purpose::AccessToken, 1, 1));
    assert_eq!(vault.rewrap(&blob, &row(Purpose::AccessToken, 1, 2)).unwrap_err(), VaultError::Authentication);
}

#[test]
fn malformed_blobs_never_need_rewrap() {
    let vault = vault(&[2, 1]);
    for blob in [&[][..], &[1, 0, 0, 0, 1][..], &[9; 60][..]] {
        assert!(!vault.needs_rewrap(blob), "{blob:?}");
    }
}

fn assert_all_read(vault: &Vault, rows: &[(patchbay_token_vault::Aad, String)], stored: &[Vec<u8>]) {
    for ((aad, text), blob) in rows.iter().zip(stored) {
        assert_eq!(vault.decrypt(blob, aad).unwrap().as_slice(), text.as_bytes(), "{vault:?} reads {text}");
    }
}
