//! Fake Google's state: clients, users, pending consents, codes, grants, tokens, switches and
//! counters. One value behind one mutex per fake.

use super::calendar::{CalendarState, PushState};
use crate::fakes::common::{
    AuthorizeRecord, Challenge, Clock, FailNext, IssMode, RefreshHold, Revocation, RevokeBehaviour, TokenKind,
};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

pub(super) struct Client {
    pub secret: String,
    pub redirect_uris: Vec<String>,
}

#[derive(Clone)]
pub(super) struct User {
    pub sub: String,
    pub email: String,
    pub name: String,
}

/// A validated authorization request waiting for Approve or Deny.
#[derive(Clone)]
pub(super) struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub offline: bool,
    pub prompt_consent: bool,
    pub include_granted_scopes: bool,
    pub challenge: Option<Challenge>,
    pub login_hint: Option<String>,
}

pub(super) struct Code {
    pub client_id: String,
    pub redirect_uri: String,
    pub grant_id: u64,
    pub sub: String,
    pub scopes: BTreeSet<String>,
    pub challenge: Option<Challenge>,
    pub issue_refresh: bool,
    pub expires_at: SystemTime,
    pub used: bool,
}

/// The user's consent for one client; revoking any of its tokens ends it.
pub(super) struct Grant {
    pub id: u64,
    pub scopes: BTreeSet<String>,
}

pub(super) struct Token {
    pub grant_id: u64,
    pub sub: String,
    pub client_id: String,
    pub scopes: BTreeSet<String>,
    /// `None` for refresh tokens.
    pub expires_at: Option<SystemTime>,
    pub revoked: bool,
}

pub(super) struct Switches {
    pub dropped_scopes: HashSet<String>,
    pub access_denied: bool,
    pub sever_opener: bool,
    pub fail_token: FailNext,
    pub iss: IssMode,
    pub expires_in: u64,
    pub revoke: RevokeBehaviour,
    /// While set (and not released), refresh calls wait at `/token`.
    pub refresh_hold: Option<Arc<RefreshHold>>,
}

#[derive(Default)]
pub(super) struct Counters {
    pub token_calls: HashMap<String, usize>,
    pub refresh_calls: HashMap<String, usize>,
    pub revocations: Vec<Revocation>,
    pub userinfo_calls: usize,
    pub url_token_violations: Vec<String>,
    pub authorize: Vec<AuthorizeRecord>,
}

pub(super) struct GoogleState {
    pub clock: Clock,
    pub calendar: CalendarState,
    pub push: PushState,
    pub jwt_key: Vec<u8>,
    pub clients: HashMap<String, Client>,
    pub users: Vec<User>,
    pub pending: HashMap<String, AuthRequest>,
    pub codes: HashMap<String, Code>,
    /// Keyed by `(sub, client_id)`.
    pub grants: HashMap<(String, String), Grant>,
    pub next_grant_id: u64,
    pub access_tokens: HashMap<String, Token>,
    pub refresh_tokens: HashMap<String, Token>,
    pub switches: Switches,
    pub counters: Counters,
}

impl GoogleState {
    pub fn new(jwt_key: Vec<u8>) -> Self {
        GoogleState {
            clock: Clock::default(),
            calendar: CalendarState::default(),
            push: PushState::default(),
            jwt_key,
            clients: HashMap::new(),
            users: Vec::new(),
            pending: HashMap::new(),
            codes: HashMap::new(),
            grants: HashMap::new(),
            next_grant_id: 1,
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            switches: Switches {
                dropped_scopes: HashSet::new(),
                access_denied: false,
                sever_opener: false,
                fail_token: FailNext::default(),
                iss: IssMode::Correct,
                expires_in: 3599,
                revoke: RevokeBehaviour::Normal,
                refresh_hold: None,
            },
            counters: Counters::default(),
        }
    }

    /// A registered user by `sub` or email.
    pub fn user(&self, who: &str) -> Option<&User> {
        self.users.iter().find(|u| u.sub == who || u.email.eq_ignore_ascii_case(who))
    }

    /// A live access token (not revoked, not expired).
    pub fn live_access_token(&self, token: &str) -> Option<&Token> {
        let now = self.clock.now();
        self.access_tokens.get(token).filter(|t| !t.revoked && t.expires_at.is_some_and(|at| at > now))
    }

    /// Ends a grant: its consent is forgotten and every token of it dies.
    pub fn kill_grant(&mut self, grant_id: u64) {
        self.grants.retain(|_, grant| grant.id != grant_id);
        for token in self.access_tokens.values_mut().chain(self.refresh_tokens.values_mut()) {
            if token.grant_id == grant_id {
                token.revoked = true;
            }
        }
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

    /// Whether `token` still works: a live access token, or a refresh token that would refresh.
    pub fn token_alive(&self, token: &str) -> bool {
        self.live_access_token(token).is_some()
            || self.refresh_tokens.get(token).is_some_and(|t| !t.revoked && self.grant_alive(t.grant_id))
    }

    /// Whether the grant a code or token belongs to still exists.
    pub fn grant_alive(&self, grant_id: u64) -> bool {
        self.grants.values().any(|grant| grant.id == grant_id)
    }
}
