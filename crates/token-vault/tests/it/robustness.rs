//! Hostile input: every truncation and random bytes give errors, never panics.

use crate::support::{row, token_set, vault};
use patchbay_token_vault::{Purpose, Vault, VaultError, OVERHEAD};
use rand::{Rng, RngCore, SeedableRng};

#[test]
fn every_length_below_the_overhead_is_truncated() {
    let vault = vault(&[1]);
    let aad = row(Purpose::AccessToken, 1, 1);
    let full = vault.encrypt(b"", &aad);
    assert_eq!(full.len(), OVERHEAD);
    for len in 0..OVERHEAD {
        assert_eq!(vault.decrypt(&full[..len], &aad).unwrap_err(), VaultError::Truncated, "length {len}");
        assert_eq!(Vault::key_id_of(&full[..len]), Err(VaultError::Truncated), "length {len}");
    }
    let zeros_after_format = [1u8; OVERHEAD - 1];
    assert_eq!(vault.decrypt(&zeros_after_format, &aad).unwrap_err(), VaultError::Truncated);
}

#[test]
fn every_truncation_of_a_real_blob_is_an_error() {
    let vault = vault(&[1]);
    let aad = row(Purpose::TokenSet, 1, 1);
    let blob = vault.encrypt(&token_set(), &aad);
    for len in 0..blob.len() {
        let expected = if len < OVERHEAD { VaultError::Truncated } else { VaultError::Authentication };
        assert_eq!(vault.decrypt(&blob[..len], &aad).unwrap_err(), expected, "length {len}");
    }
}

#[test]
fn ten_thousand_random_inputs_are_refused_without_panicking() {
    let vault = vault(&[1, 2]);
    let aad = row(Purpose::AccessToken, 1, 1);
    let seed: u64 = rand::thread_rng().gen();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for case in 0..10_000 {
        let len = rng.gen_range(0..200);
        let mut input = vec![0u8; len];
        rng.fill_bytes(&mut input);
        // Half the cases look like real headers so they reach key lookup and authentication.
        if case % 2 == 0 && len >= 5 {
            input[0] = 1;
            input[1..5].copy_from_slice(&rng.gen_range(1u32..=3).to_be_bytes());
        }
        let outcome = std::panic::catch_unwind(|| vault.decrypt(&input, &aad));
        let result = outcome.unwrap_or_else(|_| panic!("decrypt panicked on seed {seed} case {case}"));
        assert!(result.is_err(), "seed {seed} case {case}: random bytes authenticated");
    }
}
