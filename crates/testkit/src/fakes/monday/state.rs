//! Fake monday's state: the app (client), accounts and users, pending consents, codes, grants
//! (legacy and new-flow) with their tokens, switches and counters.

use super::api_state::ApiState;
use crate::fakes::common::{
    AuthorizeRecord, Challenge, Clock, FailNext, IssMode, RefreshHold, Revocation, RevokeBehaviour, TokenKind,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;
use url::Url;

pub(super) struct Client {
    pub secret: String,
    pub redirect_uris: Vec<String>,
    /// The scopes configured for the app version.
    pub scopes: Vec<String>,
}

pub(super) struct Account {
    pub id: u64,
    pub slug: String,
    pub name: String,
    /// Whether an admin installed the app on this account.
    pub installed: bool,
}

pub(super) struct User {
    pub id: u64,
    pub account_id: u64,
    pub name: String,
    pub email: String,
}

/// A validated authorization request waiting for Approve or Deny.
#[derive(Clone)]
pub(super) struct AuthRequest {
    pub client_id: String,
    /// The URI redirected to: the one sent, or the only registered one.
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub challenge: Option<Challenge>,
    /// `subdomain=<slug>` pins the account.
    pub subdomain: Option<String>,
}

#[derive(Clone)]
pub(super) struct Code {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub user_id: u64,
    pub account_id: u64,
    pub scopes: Vec<String>,
    pub challenge: Option<Challenge>,
    pub expires_at: SystemTime,
    pub used: bool,
}

/// One authorization of the app by a user: a legacy token, or a new-flow token family.
pub(super) struct Grant {
    pub client_id: String,
    pub user_id: u64,
    pub account_id: u64,
    pub scopes: Vec<String>,
    pub legacy: bool,
    pub alive: bool,
    /// New flow: the refresh token that is currently valid.
    pub current_refresh: Option<String>,
}

pub(super) struct Access {
    pub grant_id: u64,
    /// Unix seconds; `None` for legacy tokens, which never expire.
    pub exp: Option<u64>,
}

pub(super) struct Refresh {
    pub grant_id: u64,
    /// Already exchanged for a newer one; presenting it again is reuse.
    pub rotated: bool,
}

pub(super) struct Switches {
    pub issuer: String,
    pub iss: IssMode,
    pub access_denied: bool,
    pub sever_opener: bool,
    pub fail_token: FailNext,
    pub access_lifetime: u64,
    pub migrate_throttled: bool,
    pub revoke: RevokeBehaviour,
    /// While set (and not released), refresh calls wait at the new-flow token endpoint.
    pub refresh_hold: Option<Arc<RefreshHold>>,
}

#[derive(Default)]
pub(super) struct Counters {
    pub token_calls: HashMap<String, usize>,
    pub presented_refresh_tokens: Vec<String>,
    pub revoked: Vec<String>,
    pub revocations: Vec<Revocation>,
    pub migrate_calls: usize,
    pub graphql_calls: usize,
    pub authorize: Vec<AuthorizeRecord>,
}

pub(super) struct MondayState {
    pub base: Option<Url>,
    pub clock: Clock,
    pub jwt_key: Vec<u8>,
    pub clients: HashMap<String, Client>,
    pub accounts: Vec<Account>,
    pub users: Vec<User>,
    pub pending: HashMap<String, AuthRequest>,
    pub codes: HashMap<String, Code>,
    pub grants: HashMap<u64, Grant>,
    pub next_id: u64,
    pub access_tokens: HashMap<String, Access>,
    pub refresh_tokens: HashMap<String, Refresh>,
    /// Legacy token → the new-flow grant it was migrated to.
    pub migrations: HashMap<String, u64>,
    pub switches: Switches,
    pub counters: Counters,
    /// Boards, items, cursors, limits and switches of `/v2`.
    pub api: ApiState,
    /// Board webhooks and the signing secret.
    pub hooks: super::webhooks::Hooks,
}

impl MondayState {
    pub fn new(jwt_key: Vec<u8>) -> Self {
        MondayState {
            base: None,
            clock: Clock::default(),
            jwt_key,
            clients: HashMap::new(),
            accounts: Vec::new(),
            users: Vec::new(),
            pending: HashMap::new(),
            codes: HashMap::new(),
            grants: HashMap::new(),
            next_id: 1,
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            migrations: HashMap::new(),
            switches: Switches {
                issuer: "https://auth.monday.com".to_owned(),
                iss: IssMode::Missing,
                access_denied: false,
                sever_opener: false,
                fail_token: FailNext::default(),
                access_lifetime: 3600,
                migrate_throttled: false,
                revoke: RevokeBehaviour::Normal,
                refresh_hold: None,
            },
            counters: Counters::default(),
            api: ApiState::default(),
            hooks: super::webhooks::Hooks::default(),
        }
    }

    /// A user by id or email.
    pub fn user(&self, who: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id.to_string() == who || u.email.eq_ignore_ascii_case(who))
    }

    pub fn account(&self, id: u64) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }

    /// The grant behind an access token that is alive and unexpired.
    pub fn live_access(&self, token: &str) -> Option<(u64, &Grant)> {
        let now = self.clock.unix();
        let access = self.access_tokens.get(token).filter(|a| a.exp.is_none_or(|exp| exp > now))?;
        let grant = self.grants.get(&access.grant_id).filter(|g| g.alive)?;
        Some((access.grant_id, grant))
    }

    /// What `token` is, live or not.
    pub fn token_kind(&self, token: &str) -> TokenKind {
        if self.access_tokens.contains_key(token) {
            TokenKind::Access
        } else if self.refresh_tokens.contains_key(token) {
            TokenKind::Refresh
        } else {
            TokenKind::Unknown
        }
    }

    /// Whether `token` still works: a live access token, or the current refresh token of a live
    /// grant (a rotated one no longer refreshes).
    pub fn token_alive(&self, token: &str) -> bool {
        self.live_access(token).is_some()
            || self
                .refresh_tokens
                .get(token)
                .is_some_and(|r| !r.rotated && self.grants.get(&r.grant_id).is_some_and(|g| g.alive))
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Ends a grant: every access and refresh token of it stops working.
    pub fn kill_grant(&mut self, grant_id: u64) {
        if let Some(grant) = self.grants.get_mut(&grant_id) {
            grant.alive = false;
            grant.current_refresh = None;
        }
    }
}
