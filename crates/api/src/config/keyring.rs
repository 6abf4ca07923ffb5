//! The vault key ring from `PATCHBAY_VAULT_KEYS=<id>:<base64 of 32 bytes>,…`: the first key
//! encrypts, every key decrypts. Key bytes never appear in `Debug` or in errors.

use super::ConfigError;
use base64::Engine;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::sync::Arc;

const VAR: &str = "PATCHBAY_VAULT_KEYS";

/// One 32-byte key and its id.
#[derive(Clone)]
pub struct VaultKey {
    pub id: u32,
    pub bytes: Arc<SecretBox<[u8; 32]>>,
}

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VaultKey({}, [redacted])", self.id)
    }
}

/// The ordered key ring (first = primary).
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: Vec<VaultKey>,
}

impl KeyRing {
    /// Parses the variable's value. Errors name the variable and the entry, never key bytes.
    pub fn parse(value: &SecretString) -> Result<Self, ConfigError> {
        let mut keys: Vec<VaultKey> = Vec::new();
        for (index, entry) in value.expose_secret().split(',').map(str::trim).enumerate() {
            let position = index + 1;
            let (id, material) = entry
                .split_once(':')
                .ok_or_else(|| ConfigError::new(VAR, format!("entry {position} is not `<id>:<base64 key>`")))?;
            let id: u32 = id
                .parse()
                .map_err(|_| ConfigError::new(VAR, format!("entry {position}: the key id must be a decimal u32")))?;
            let decoded = base64::engine::general_purpose::STANDARD.decode(material).map_err(|_| {
                ConfigError::new(VAR, format!("entry {position} (key id {id}): the key is not standard base64"))
            })?;
            let bytes: [u8; 32] = decoded.try_into().map_err(|d: Vec<u8>| {
                ConfigError::new(
                    VAR,
                    format!("entry {position} (key id {id}): the key is {} bytes, it must be exactly 32", d.len()),
                )
            })?;
            if keys.iter().any(|k| k.id == id) {
                return Err(ConfigError::new(VAR, format!("key id {id} appears twice")));
            }
            keys.push(VaultKey { id, bytes: Arc::new(SecretBox::new(Box::new(bytes))) });
        }
        Ok(Self { keys })
    }

    /// A fresh single-key ring (development fallback), and its text form for the key file.
    pub fn generate() -> (Self, SecretString) {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        let text = format!("1:{}", base64::engine::general_purpose::STANDARD.encode(bytes));
        let ring = Self { keys: vec![VaultKey { id: 1, bytes: Arc::new(SecretBox::new(Box::new(bytes))) }] };
        (ring, SecretString::from(text))
    }

    /// The key that encrypts.
    pub fn primary(&self) -> &VaultKey {
        &self.keys[0]
    }

    /// All key ids, primary first.
    pub fn ids(&self) -> Vec<u32> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// All keys, primary first.
    pub fn keys(&self) -> &[VaultKey] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KeyRing, ConfigError> {
        KeyRing::parse(&SecretString::from(text.to_string()))
    }

    #[test]
    fn key_ring_keeps_order_and_ids() {
        let k = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let ring = parse(&format!("2:{k},1:{k}")).unwrap();
        assert_eq!(ring.ids(), vec![2, 1]);
        assert_eq!(ring.primary().id, 2);
    }

    #[test]
    fn malformed_key_rings_are_refused_without_echoing_key_bytes() {
        let short = base64::engine::general_purpose::STANDARD.encode([9u8; 16]);
        let good = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let cases = [
            ("no colon", "abc".to_string()),
            ("bad id", format!("x:{good}")),
            ("not base64", "1:!!!".to_string()),
            ("16 bytes", format!("1:{short}")),
            ("duplicate id", format!("1:{good},1:{good}")),
        ];
        for (what, text) in cases {
            let err = parse(&text).expect_err(what);
            assert_eq!(err.variable, VAR, "{what}");
            assert!(!err.to_string().contains(&good) && !err.to_string().contains(&short), "{what}: {err}");
        }
    }
}
