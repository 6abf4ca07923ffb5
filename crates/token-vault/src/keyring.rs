//! The key ring from `PATCHBAY_VAULT_KEYS=<id>:<base64 of 32 bytes>,…`: the first key encrypts,
//! every key decrypts. Key bytes live in zeroizing `SecretBox`es and never appear in `Debug` or errors.

use crate::KeyRingError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The environment variable the key ring is read from.
pub const ENV_VAR: &str = "PATCHBAY_VAULT_KEYS";

/// Length of every vault key in bytes.
pub const KEY_LEN: usize = 32;

/// One key and its id. Deliberately neither `Debug` nor `Clone`: the ring shares keys through an `Arc`.
pub(crate) struct VaultKey {
    pub(crate) id: u32,
    pub(crate) material: SecretBox<[u8; KEY_LEN]>,
}

impl VaultKey {
    fn from_slice(id: u32, bytes: &[u8; KEY_LEN]) -> Self {
        Self { id, material: SecretBox::init_with_mut(|k: &mut [u8; KEY_LEN]| k.copy_from_slice(bytes)) }
    }
}

/// The ordered key ring: the first key (primary) encrypts, every key decrypts. Cheap to clone.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<[VaultKey]>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").field("ids", &self.ids()).field("primary", &self.primary_id()).finish()
    }
}

impl KeyRing {
    /// Parses `<id>:<base64 of exactly 32 bytes>,…` (spaces around entries are ignored).
    /// Errors name the entry position and key id, never key text or bytes.
    pub fn parse(value: &SecretString) -> Result<Self, KeyRingError> {
        let text = value.expose_secret().trim();
        if text.is_empty() {
            return Err(KeyRingError::Empty);
        }
        let mut keys: Vec<VaultKey> = Vec::new();
        for (index, entry) in text.split(',').map(str::trim).enumerate() {
            let key = parse_entry(index + 1, entry)?;
            if keys.iter().any(|k| k.id == key.id) {
                return Err(KeyRingError::DuplicateId { position: index + 1, id: key.id });
            }
            keys.push(key);
        }
        Ok(Self { keys: keys.into() })
    }

    /// A fresh single-key ring (id 1) for the development fallback, and its text form for the key file.
    pub fn generate() -> (Self, SecretString) {
        let key = VaultKey {
            id: 1,
            material: SecretBox::init_with_mut(|k: &mut [u8; KEY_LEN]| {
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, k)
            }),
        };
        let encoded = Zeroizing::new(STANDARD.encode(key.material.expose_secret()));
        // Sized up front so the text never reallocates and leaves stray copies of the key behind.
        let mut text = String::with_capacity(2 + encoded.len());
        text.push_str("1:");
        text.push_str(&encoded);
        (Self { keys: Arc::new([key]) }, SecretString::from(text))
    }

    /// The id of the primary key, which seals every new envelope.
    pub fn primary_id(&self) -> u32 {
        self.primary().id
    }

    /// All key ids, primary first.
    pub fn ids(&self) -> Vec<u32> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// Whether a key with this id is loaded.
    pub fn contains(&self, id: u32) -> bool {
        self.get(id).is_some()
    }

    pub(crate) fn primary(&self) -> &VaultKey {
        // `parse` and `generate` are the only constructors and both refuse an empty ring.
        &self.keys[0]
    }

    pub(crate) fn get(&self, id: u32) -> Option<&VaultKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    #[cfg(test)]
    pub(crate) fn from_keys(keys: &[(u32, [u8; KEY_LEN])]) -> Self {
        assert!(!keys.is_empty(), "a key ring needs a primary key");
        Self { keys: keys.iter().map(|(id, bytes)| VaultKey::from_slice(*id, bytes)).collect() }
    }
}

fn parse_entry(position: usize, entry: &str) -> Result<VaultKey, KeyRingError> {
    let (id, material) = entry.split_once(':').ok_or(KeyRingError::MissingColon { position })?;
    // `u32::from_str` accepts a leading `+`; the format says decimal digits only.
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(KeyRingError::BadId { position });
    }
    let id: u32 = id.parse().map_err(|_| KeyRingError::BadId { position })?;
    let decoded = Zeroizing::new(STANDARD.decode(material).map_err(|_| KeyRingError::NotBase64 { position, id })?);
    let bytes: &[u8; KEY_LEN] =
        decoded.as_slice().try_into().map_err(|_| KeyRingError::WrongLength { position, id, len: decoded.len() })?;
    Ok(VaultKey::from_slice(id, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: [u8; KEY_LEN] = *b"canary-key-bytes-0123456789abcde";

    fn parse(text: &str) -> Result<KeyRing, KeyRingError> {
        KeyRing::parse(&SecretString::from(text.to_string()))
    }

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    #[test]
    fn valid_multi_key_ring_keeps_order_and_first_is_primary() {
        let ring = parse(&format!("7:{}, 3:{},12:{}", b64(&[1; 32]), b64(&[2; 32]), b64(&[3; 32]))).unwrap();
        assert_eq!(ring.ids(), vec![7, 3, 12]);
        assert_eq!(ring.primary_id(), 7);
        assert!(ring.contains(12) && !ring.contains(1));
    }

    #[test]
    fn malformed_key_rings_name_the_entry_and_never_echo_the_key() {
        let good = b64(&CANARY);
        let short = b64(&CANARY[..16]);
        let long = b64(&[CANARY.as_slice(), b"!"].concat());
        let unpadded = good.trim_end_matches('=').to_string();
        let cases = [
            ("empty string", String::new(), KeyRingError::Empty),
            ("only spaces", "  ".to_string(), KeyRingError::Empty),
            ("missing colon", format!("1:{good},{good}"), KeyRingError::MissingColon { position: 2 }),
            ("empty entry", format!("1:{good},,2:{good}"), KeyRingError::MissingColon { position: 2 }),
            ("bad id", format!("x{good}:{good}"), KeyRingError::BadId { position: 1 }),
            ("negative id", format!("-1:{good}"), KeyRingError::BadId { position: 1 }),
            ("plus-signed id", format!("+1:{good}"), KeyRingError::BadId { position: 1 }),
            ("id above u32", format!("4294967296:{good}"), KeyRingError::BadId { position: 1 }),
            ("non-base64", format!("1:{good},5:{good}!!"), KeyRingError::NotBase64 { position: 2, id: 5 }),
            ("missing padding", format!("1:{unpadded}"), KeyRingError::NotBase64 { position: 1, id: 1 }),
            ("16-byte key", format!("4:{short}"), KeyRingError::WrongLength { position: 1, id: 4, len: 16 }),
            ("33-byte key", format!("4:{long}"), KeyRingError::WrongLength { position: 1, id: 4, len: 33 }),
            ("duplicate id", format!("9:{good},2:{good},9:{good}"), KeyRingError::DuplicateId { position: 3, id: 9 }),
        ];
        for (what, text, expected) in cases {
            let err = parse(&text).expect_err(what);
            assert_eq!(err, expected, "{what}");
            let shown = format!("{err} {err:?}");
            for secret in [&good, &short, &long, &unpadded] {
                assert!(!shown.contains(secret.as_str()), "{what}: {shown}");
            }
            assert!(!shown.contains("canary"), "{what}: {shown}");
        }
    }

    #[test]
    fn generated_ring_parses_back_to_the_same_key() {
        let (ring, text) = KeyRing::generate();
        let parsed = KeyRing::parse(&text).unwrap();
        assert_eq!(ring.ids(), vec![1]);
        assert_eq!(parsed.primary().material.expose_secret(), ring.primary().material.expose_secret());
        assert_ne!(ring.primary().material.expose_secret(), &[0u8; KEY_LEN], "OsRng filled the key");
    }

    #[test]
    fn key_ring_debug_shows_ids_only() {
        let text = format!("5:{}", b64(&CANARY));
        let ring = parse(&text).unwrap();
        let shown = format!("{ring:?} {ring:#?}");
        assert_eq!(format!("{ring:?}"), "KeyRing { ids: [5], primary: 5 }");
        assert!(!shown.contains(&b64(&CANARY)) && !shown.contains("canary") && !shown.contains("99"), "{shown}");
        let (_, generated) = KeyRing::generate();
        assert!(format!("{generated:?}").contains("REDACTED"));
    }
}
