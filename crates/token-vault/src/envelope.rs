//! The envelope layout `[version u8][key id u32 BE][nonce 24][ciphertext ‖ tag 16]`, and sealing and
//! opening one with a single known key. Parsing splits by checked chunks, so short input is an error.

use crate::keyring::VaultKey;
use crate::{Aad, VaultError};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{Key, KeyInit, Tag, XChaCha20Poly1305, XNonce};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

/// The only envelope format this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Nonce length in bytes (XChaCha20: 192-bit random nonces).
pub const NONCE_LEN: usize = 24;
/// Poly1305 tag length in bytes.
pub const TAG_LEN: usize = 16;
/// Bytes an envelope adds to its plaintext: version, key id, nonce and tag.
pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

const HEADER_LEN: usize = 1 + 4;

/// An envelope split into its parts; borrowing, nothing decrypted yet.
pub(crate) struct Parsed<'a> {
    pub(crate) key_id: u32,
    nonce: &'a [u8; NONCE_LEN],
    ciphertext: &'a [u8],
    tag: &'a [u8; TAG_LEN],
}

/// Splits `blob` into header, nonce, ciphertext and tag. A wrong first byte is `UnknownFormat`
/// (the layout after it is unknown); anything shorter than the overhead is `Truncated`.
pub(crate) fn parse(blob: &[u8]) -> Result<Parsed<'_>, VaultError> {
    let (&version, rest) = blob.split_first().ok_or(VaultError::Truncated)?;
    if version != FORMAT_VERSION {
        return Err(VaultError::UnknownFormat(version));
    }
    let (key_id, rest) = rest.split_first_chunk::<4>().ok_or(VaultError::Truncated)?;
    let (nonce, rest) = rest.split_first_chunk::<NONCE_LEN>().ok_or(VaultError::Truncated)?;
    let (ciphertext, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or(VaultError::Truncated)?;
    Ok(Parsed { key_id: u32::from_be_bytes(*key_id), nonce, ciphertext, tag })
}

/// Seals `plaintext` under `key` with the given nonce. The nonce must never repeat for a key:
/// production callers pass a fresh OsRng nonce (see `Vault::encrypt`).
///
/// # Panics
/// Only if `plaintext` exceeds the cipher's limit of about 256 GiB.
pub(crate) fn seal(key: &VaultKey, nonce: &[u8; NONCE_LEN], plaintext: &[u8], aad: &Aad) -> Vec<u8> {
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&key.id.to_be_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher(key)
        .encrypt_in_place_detached(XNonce::from_slice(nonce), &aad.encode(key.id), &mut out[HEADER_LEN + NONCE_LEN..])
        .expect("plaintext within XChaCha20-Poly1305 limits");
    out.extend_from_slice(&tag);
    out
}

/// Opens a parsed envelope with its key; any tag mismatch (tampering, other row, other purpose) is
/// `Authentication`. The plaintext buffer is zeroized on drop.
pub(crate) fn open(key: &VaultKey, parsed: &Parsed<'_>, aad: &Aad) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let mut buffer = Zeroizing::new(parsed.ciphertext.to_vec());
    cipher(key)
        .decrypt_in_place_detached(
            XNonce::from_slice(parsed.nonce),
            &aad.encode(key.id),
            &mut buffer,
            Tag::from_slice(parsed.tag),
        )
        .map_err(|_| VaultError::Authentication)?;
    Ok(buffer)
}

/// The cipher zeroizes its copy of the key on drop.
fn cipher(key: &VaultKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(Key::from_slice(key.material.expose_secret()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyRing, Purpose};
    use chacha20poly1305::aead::{Aead, Payload};

    // draft-irtf-cfrg-xchacha-03 A.3.1 (security.md R7).
    const KEY: &str = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
    const NONCE: &str = "404142434445464748494a4b4c4d4e4f5051525354555657";
    const AAD: &str = "50515253c0c1c2c3c4c5c6c7";
    const PLAINTEXT: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    const CIPHERTEXT: &str = "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb\
        731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452\
        2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9\
        21f9664c97637da9768812f615c68b13b52e";
    const TAG: &str = "c0875924c1c7987947deafd8780acf49";

    fn r7_key() -> [u8; 32] {
        hex::decode(KEY).unwrap().try_into().unwrap()
    }

    fn r7_nonce() -> [u8; NONCE_LEN] {
        hex::decode(NONCE).unwrap().try_into().unwrap()
    }

    #[test]
    fn xchacha20poly1305_matches_the_r7_known_answer() {
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&r7_key()));
        let aad = hex::decode(AAD).unwrap();
        let sealed = cipher.encrypt(XNonce::from_slice(&r7_nonce()), Payload { msg: PLAINTEXT, aad: &aad }).unwrap();
        assert_eq!(PLAINTEXT.len(), 114);
        assert_eq!(hex::encode(&sealed), format!("{CIPHERTEXT}{TAG}"));
        let opened = cipher.decrypt(XNonce::from_slice(&r7_nonce()), Payload { msg: &sealed, aad: &aad }).unwrap();
        assert_eq!(opened, PLAINTEXT);
    }

    #[test]
    fn envelope_built_from_the_r7_nonce_has_the_exact_layout_and_decrypts() {
        let ring = KeyRing::from_keys(&[(0x0102_0304, r7_key())]);
        let aad = Aad::connection(Purpose::AccessToken, "tenant-1", "connection-1");
        let blob = seal(ring.primary(), &r7_nonce(), PLAINTEXT, &aad);

        assert_eq!(blob.len(), OVERHEAD + PLAINTEXT.len());
        assert_eq!(blob[..5], [FORMAT_VERSION, 1, 2, 3, 4]);
        assert_eq!(hex::encode(&blob[5..29]), NONCE);
        // The keystream does not depend on associated data, so the body equals R7's ciphertext;
        // only the tag differs, because our associated data is the row binding, not R7's.
        assert_eq!(hex::encode(&blob[29..29 + PLAINTEXT.len()]), CIPHERTEXT);
        assert_ne!(hex::encode(&blob[29 + PLAINTEXT.len()..]), TAG);

        let parsed = parse(&blob).unwrap();
        assert_eq!(parsed.key_id, 0x0102_0304);
        assert_eq!(open(ring.primary(), &parsed, &aad).unwrap().as_slice(), PLAINTEXT);
    }

    #[test]
    fn parse_reads_the_smallest_envelope_and_refuses_anything_shorter() {
        let mut blob = vec![FORMAT_VERSION, 0, 0, 0, 9];
        blob.extend_from_slice(&[0; NONCE_LEN + TAG_LEN]);
        let parsed = parse(&blob).unwrap();
        assert_eq!((parsed.key_id, parsed.ciphertext.len()), (9, 0));
        for len in 0..blob.len() {
            assert_eq!(parse(&blob[..len]).err(), Some(VaultError::Truncated), "length {len}");
        }
        assert_eq!(parse(&[2]).err(), Some(VaultError::UnknownFormat(2)));
    }
}
