//! Connect sessions and OAuth states: the short-lived rows of a browser connect.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum ConnectMode as "connect mode" {
        Redirect = "redirect",
        Popup = "popup",
    }
}

/// A connect session: created by the app, consumed once by the browser. Only the SHA-256 of
/// its token is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectSession {
    pub id: ConnectSessionId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub provider: ProviderId,
    pub mode: ConnectMode,
    pub return_to: Option<String>,
    pub opener_origin: Option<String>,
    pub reconnect_connection_id: Option<ConnectionId>,
    /// Who the connect page says the account is connected for (the app supplies it).
    pub end_user: EndUser,
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
    /// A stable error code (`access_denied`, `account_mismatch`, `invalid_state`, …). A partial
    /// grant is `Connected`: the connection exists, and its status says `insufficient_scope`.
    Failed(String),
}

/// Input for [`crate::ConnectStore::create_connect_session`].
#[derive(Clone, Debug)]
pub struct NewConnectSession {
    pub token_sha256: [u8; 32],
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub provider: ProviderId,
    pub mode: ConnectMode,
    pub return_to: Option<String>,
    pub opener_origin: Option<String>,
    pub reconnect_connection_id: Option<ConnectionId>,
    pub end_user: EndUser,
    pub expires_at: DateTime<Utc>,
}

/// The person a connect is for, as the app describes them (shown on the confirmation page, so
/// someone sent another person's link sees whose it is).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndUser {
    pub display_name: Option<String>,
    pub email: Option<String>,
}

/// A pending OAuth authorization: single use, short-lived, keyed by the SHA-256 of `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthState {
    pub state_sha256: [u8; 32],
    pub provider: ProviderId,
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

/// Connect sessions and OAuth states: the short-lived rows of a browser connect.
#[async_trait]
pub trait ConnectStore: Send + Sync {
    async fn create_connect_session(&self, new: NewConnectSession) -> StoreResult<ConnectSession>;
    /// One session of the tenant (the app polls it).
    async fn get_connect_session(&self, scope: TenantScope, id: ConnectSessionId) -> StoreResult<ConnectSession>;
    /// The unconsumed, unexpired session with this token hash, without consuming it (the GET
    /// page, which link scanners may fetch).
    async fn peek_connect_session(
        &self,
        token_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ConnectSession>>;
    /// Consumes the session atomically: of concurrent callers at most one gets it; an
    /// expired or consumed session gives `None`.
    async fn consume_connect_session(
        &self,
        token_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ConnectSession>>;
    /// Records how the session ended (first outcome wins).
    async fn finish_connect_session(
        &self,
        id: ConnectSessionId,
        outcome: ConnectOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn create_oauth_state(&self, state: OAuthState) -> StoreResult<()>;
    /// Deletes and returns the state atomically: of concurrent callers at most one gets it;
    /// an expired state is deleted and gives `None`.
    /// The sealed PKCE verifiers of states not yet expired (`vault status` and `retire` count
    /// them: a connect in flight must not fail on a retired key).
    async fn unexpired_pkce_verifiers(&self, now: DateTime<Utc>) -> StoreResult<Vec<Vec<u8>>>;
    async fn consume_oauth_state(&self, state_sha256: &[u8; 32], now: DateTime<Utc>)
        -> StoreResult<Option<OAuthState>>;
}
