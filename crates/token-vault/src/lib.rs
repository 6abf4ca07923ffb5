#![forbid(unsafe_code)]
//! Patchbay's token vault: the key ring from `PATCHBAY_VAULT_KEYS` and the envelope that encrypts
//! tokens and secrets at rest.
//!
//! An envelope is `[format version u8 = 1][key id u32 BE][24-byte random nonce][ciphertext ‖ 16-byte tag]`,
//! sealed with XChaCha20-Poly1305. The associated data ([`Aad`]) binds each ciphertext to its row
//! (tenant, connection, …), its [`Purpose`] and its key id, so a blob copied to another row, another
//! column or another tenant fails to decrypt. The first key of the [`KeyRing`] encrypts; every key
//! decrypts; [`Vault::rewrap`] moves old ciphertexts onto the primary key.
//!
//! On top of the envelope sits the token lifecycle ([`Tokens`]): sealing a connection's token
//! set, a fresh access token on demand with a single-flight refresh (in process and across
//! instances through the credential's lease), dead grants, the background [`RefreshSweep`],
//! revocation ([`revoke_grant`]), key rotation over stored ciphertexts ([`keys`]) and the
//! monday.com token migration ([`migrate`]).
//!
//! Nothing here prints key bytes or plaintext: [`KeyRing`]'s `Debug` shows ids only, errors carry
//! positions and ids, and decrypted values come back as [`zeroize::Zeroizing`] buffers or
//! [`secrecy::SecretString`]. Decryption checks every length before slicing and never panics.

mod aad;
mod envelope;
mod error;
mod keyring;
pub mod keys;
pub mod migrate;
mod revoke;
mod sweep;
mod tokens;
mod vault;

pub use aad::{Aad, Purpose};
pub use envelope::{FORMAT_VERSION, NONCE_LEN, OVERHEAD, TAG_LEN};
pub use error::{KeyRingError, VaultError};
pub use keyring::{KeyRing, ENV_VAR, KEY_LEN};
pub use patchbay_store::TokenFlow;
pub use revoke::revoke_grant;
pub use sweep::{RefreshSweep, SweepReport};
pub use tokens::{token_set_aad, TokenError, Tokens};
pub use vault::Vault;
