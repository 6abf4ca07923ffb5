//! Webhook secrets: generated here, shown once, sealed by the vault, turned into HMAC keys
//! per scheme (Standard Webhooks decodes `whsec_` base64; GitHub and generic use the UTF-8).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use patchbay_store::{TenantId, WebhookScheme, WebhookSourceId};
use patchbay_token_vault::{Aad, Purpose};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// Random bytes in a generated secret (Standard Webhooks allows 24 to 64).
const SECRET_BYTES: usize = 32;

/// The HMAC key bytes of one secret, wiped on drop; `Debug` shows nothing.
pub struct SigningKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

/// A secret is not usable as a key for its scheme.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a Standard Webhooks secret is `whsec_` followed by base64 of 24 to 64 bytes")]
    NotStandardWebhooks,
    #[error("a secret must not be empty")]
    Empty,
}

impl SigningKey {
    /// The key a `scheme` derives from `secret`: for Standard Webhooks the base64 after the
    /// optional `whsec_` prefix, decoded; otherwise the secret's UTF-8 bytes as they are.
    pub fn from_secret(scheme: WebhookScheme, secret: &SecretString) -> Result<Self, SecretError> {
        let text = secret.expose_secret();
        match scheme {
            WebhookScheme::StandardWebhooks => {
                let encoded = text.strip_prefix("whsec_").unwrap_or(text);
                let bytes = STANDARD
                    .decode(encoded)
                    .or_else(|_| STANDARD_NO_PAD.decode(encoded))
                    .map_err(|_| SecretError::NotStandardWebhooks)?;
                if bytes.is_empty() {
                    return Err(SecretError::NotStandardWebhooks);
                }
                Ok(Self(Zeroizing::new(bytes)))
            }
            WebhookScheme::Github | WebhookScheme::GenericHmac if text.is_empty() => Err(SecretError::Empty),
            WebhookScheme::Github | WebhookScheme::GenericHmac => Ok(Self(Zeroizing::new(text.as_bytes().to_vec()))),
        }
    }

    /// The raw key bytes (only for the MAC computation).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A new random secret in the scheme's usual form: `whsec_<base64>` for Standard Webhooks,
/// 64 hex characters for GitHub and generic senders (which take the text as the key).
pub fn generate(scheme: WebhookScheme) -> SecretString {
    let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    let text = match scheme {
        WebhookScheme::StandardWebhooks => format!("whsec_{}", STANDARD.encode(bytes.as_ref())),
        WebhookScheme::Github | WebhookScheme::GenericHmac => hex::encode(bytes.as_ref()),
    };
    SecretString::from(text)
}

/// What a source's secret is sealed bound to: its tenant, its source and its own id, so a
/// ciphertext copied to another row or source does not open.
pub fn secret_aad(tenant: TenantId, source: WebhookSourceId, secret_id: uuid::Uuid) -> Aad {
    Aad::new(Purpose::WebhookSecret)
        .with("tenant", tenant.0.as_bytes())
        .with("source", source.0.as_bytes())
        .with("secret", secret_id.as_bytes())
}
