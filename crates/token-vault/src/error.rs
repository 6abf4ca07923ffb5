//! The crate's two error enums. Neither ever holds key bytes, key text or plaintext: only entry
//! positions, key ids, lengths and format bytes.

/// Why `PATCHBAY_VAULT_KEYS` could not be parsed. Positions count entries from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    /// The value holds no entries at all.
    #[error("the key ring is empty: expected `<id>:<base64 of 32 bytes>,…`")]
    Empty,
    /// An entry lacks the `:` between id and key (this includes an empty entry).
    #[error("entry {position} is not `<id>:<base64 of 32 bytes>`")]
    MissingColon {
        /// 1-based entry position.
        position: usize,
    },
    /// The id part is not a decimal u32.
    #[error("entry {position}: the key id must be a decimal u32")]
    BadId {
        /// 1-based entry position.
        position: usize,
    },
    /// The key part is not standard base64 with padding.
    #[error("entry {position} (key id {id}): the key is not standard base64 with padding")]
    NotBase64 {
        /// 1-based entry position.
        position: usize,
        /// The entry's key id.
        id: u32,
    },
    /// The key decodes to the wrong number of bytes.
    #[error("entry {position} (key id {id}): the key is {len} bytes, it must be exactly 32")]
    WrongLength {
        /// 1-based entry position.
        position: usize,
        /// The entry's key id.
        id: u32,
        /// How many bytes the key decoded to.
        len: usize,
    },
    /// Two entries share one key id.
    #[error("entry {position}: key id {id} appears twice")]
    DuplicateId {
        /// 1-based position of the second occurrence.
        position: usize,
        /// The repeated key id.
        id: u32,
    },
}

/// Why a ciphertext could not be decrypted. Callers treat every variant as "this credential is
/// unreadable" (an internal error, counted and logged), never as a reason to show details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// Shorter than format byte, key id, nonce and tag together.
    #[error("the ciphertext is too short to be a vault envelope")]
    Truncated,
    /// The first byte names a format this build does not know.
    #[error("unknown vault envelope format version {0}")]
    UnknownFormat(u8),
    /// The envelope names a key id that is not in the loaded key ring.
    #[error("the ciphertext was sealed with key id {0}, which is not in the key ring")]
    UnknownKey(u32),
    /// Bad tag: the blob was tampered with, or belongs to another row, tenant or purpose.
    #[error("the ciphertext failed authentication (tampered, or bound to another row or purpose)")]
    Authentication,
    /// The plaintext authenticated but is not UTF-8, so it cannot be a text secret.
    #[error("the decrypted value is not UTF-8 text")]
    NotText,
}
