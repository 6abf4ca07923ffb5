//! Models of the Connect capability: connect sessions, OAuth states, credentials and the grant
//! a successful callback saves.

use crate::ids::*;
use crate::models::{ConnectionStatus, NewAuditEvent, NewJob};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How the app receives the outcome of a connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectMode {
    Redirect,
    Popup,
}

impl ConnectMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redirect => "redirect",
            Self::Popup => "popup",
        }
    }
}

impl FromStr for ConnectMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "redirect" => Ok(Self::Redirect),
            "popup" => Ok(Self::Popup),
            other => Err(format!("unknown connect mode `{other}`")),
        }
    }
}

impl fmt::Display for ConnectMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connect session: created by the app, consumed once by the browser. Only the SHA-256 of
/// its token is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectSession {
    pub id: ConnectSessionId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub provider: String,
    pub mode: ConnectMode,
    pub return_to: Option<String>,
    pub opener_origin: Option<String>,
    pub reconnect_connection_id: Option<ConnectionId>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
    /// `None` while pending; then `connected` or `error`.
    pub outcome: Option<ConnectOutcome>,
}

/// How a connect ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectOutcome {
    Connected(ConnectionId),
    /// A stable error code (`access_denied`, `account_mismatch`, `invalid_state`, …).
    Failed(String),
}

/// Input for [`crate::ConnectStore::create_connect_session`].
#[derive(Clone, Debug)]
pub struct NewConnectSession {
    pub token_sha256: [u8; 32],
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub provider: String,
    pub mode: ConnectMode,
    pub return_to: Option<String>,
    pub opener_origin: Option<String>,
    pub reconnect_connection_id: Option<ConnectionId>,
    pub expires_at: DateTime<Utc>,
}

/// A pending OAuth authorization: single use, short-lived, keyed by the SHA-256 of `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthState {
    pub state_sha256: [u8; 32],
    pub provider: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub session_id: ConnectSessionId,
    /// The PKCE verifier, encrypted by the vault (bound to this state); `None` without PKCE.
    pub pkce_verifier: Option<Vec<u8>>,
    /// SHA-256 of the random value in the browser's per-state cookie.
    pub binding_sha256: [u8; 32],
    pub redirect_uri: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A connection's encrypted token set. `version` guards every write (optimistic concurrency);
/// the refresh lease makes one instance the refresher.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub connection_id: ConnectionId,
    pub tenant_id: TenantId,
    /// `google`, `legacy` or `v2` (Monday's token flow).
    pub flow: String,
    pub key_id: u32,
    pub ciphertext: Vec<u8>,
    pub version: i64,
    /// When the access token expires (not secret; drives the refresh sweep). `None`: never.
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_lease_owner: Option<String>,
    pub refresh_lease_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("connection_id", &self.connection_id)
            .field("flow", &self.flow)
            .field("key_id", &self.key_id)
            .field("version", &self.version)
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

/// An encrypted token set to store.
#[derive(Clone, PartialEq, Eq)]
pub struct NewCredential {
    pub flow: String,
    pub key_id: u32,
    pub ciphertext: Vec<u8>,
    pub access_expires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewCredential").field("flow", &self.flow).field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// What a successful callback saves, in one transaction (architecture §4.1 step 3).
#[derive(Clone, Debug)]
pub struct SaveGrant {
    /// The id the credential's associated data was bound to: an existing connection of this
    /// user and provider account, or a fresh id for a new one.
    pub connection_id: ConnectionId,
    /// Whether `connection_id` is new (insert) or existing (update).
    pub is_new: bool,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub provider: String,
    pub provider_account_id: String,
    pub provider_user_id: Option<String>,
    pub account_name: Option<String>,
    pub account_email: Option<String>,
    pub scopes: Vec<String>,
    pub status: ConnectionStatus,
    pub status_reason: Option<String>,
    pub credential: NewCredential,
    /// The initial sync, enqueued in the same transaction (none for `insufficient_scope`).
    pub initial_job: Option<NewJob>,
    pub audit: NewAuditEvent,
    pub now: DateTime<Utc>,
}

/// A status change and what to tell the world about it, written in one transaction.
#[derive(Clone, Debug)]
pub struct StatusChange {
    pub status: ConnectionStatus,
    pub reason: Option<String>,
    /// The outbox event type (`connection.needs_reauth`, `connection.recovered`), if any.
    pub event_type: Option<String>,
    pub actor: String,
    pub now: DateTime<Utc>,
}

/// Ciphertexts per vault key id (for `patchbay vault status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUsage {
    pub key_id: u32,
    pub credentials: i64,
}
