//! Canary test: no `Debug` or `Display` in this crate shows key bytes, key text or plaintext.

use crate::support::{key_bytes, ring_text, row, vault};
use patchbay_token_vault::{KeyRing, KeyRingError, Purpose, VaultError};
use secrecy::SecretString;

const CANARY: &str = "canary-refresh-token-4f1b";

#[test]
fn no_debug_or_display_contains_key_bytes_or_plaintext() {
    let vault = vault(&[1, 2]);
    let aad = row(Purpose::RefreshToken, 1, 1);
    let blob = vault.encrypt(CANARY.as_bytes(), &aad);
    let secret = vault.decrypt_string(&blob, &aad).unwrap();
    let ring = KeyRing::parse(&SecretString::from(ring_text(&[1, 2]))).unwrap();
    let (generated, generated_text) = KeyRing::generate();

    let mut shown = vec![
        format!("{vault:?}"),
        format!("{vault:#?}"),
        format!("{ring:?}"),
        format!("{generated:?}"),
        format!("{generated_text:?}"),
        format!("{secret:?}"),
        format!("{:?}", vault.decrypt(&blob, &aad).unwrap()),
    ];
    let errors = [
        VaultError::Truncated,
        VaultError::UnknownFormat(9),
        VaultError::UnknownKey(3),
        VaultError::Authentication,
        VaultError::NotText,
    ];
    shown.extend(errors.iter().map(|e| format!("{e} {e:?}")));
    let bad_rings = [
        (format!("{},4:{CANARY}", ring_text(&[1])), KeyRingError::NotBase64 { position: 2, id: 4 }),
        (format!("{},{}", ring_text(&[1]), ring_text(&[1])), KeyRingError::DuplicateId { position: 2, id: 1 }),
    ];
    for (text, expected) in bad_rings {
        let err = KeyRing::parse(&SecretString::from(text)).unwrap_err();
        assert_eq!(err, expected);
        shown.push(format!("{err} {err:?}"));
    }

    let key_texts = [ring_text(&[1]), ring_text(&[2])];
    for text in &shown {
        assert!(!text.contains(CANARY), "plaintext in {text}");
        for key in &key_texts {
            let encoded = key.split_once(':').unwrap().1;
            assert!(!text.contains(encoded), "key text in {text}");
        }
        // Bytes 0x5A print as 90 in an array Debug; the test keys are mostly 0x5A.
        assert!(!text.contains("90, 90"), "key bytes in {text}");
        assert!(!text.contains(&format!("{:?}", &key_bytes(1)[..4])), "key bytes in {text}");
    }
    assert!(format!("{secret:?}").contains("REDACTED"));
    assert!(format!("{generated_text:?}").contains("REDACTED"));
}
