//! Fake monday.com (providers.md A1, A2, A3, C1): authorize with a consent page, the legacy and
//! new-flow token endpoints, revoke, migrate, discovery, the GraphQL API `/v2` (identity, boards,
//! columns, groups, items with cursor paging, column-value writes, complexity and rate limits),
//! and the control handle tests drive it with.

mod api_state;
mod authorize;
mod boards;
mod control;
mod cost;
mod errors;
mod graphql;
mod items;
mod lifecycle;
mod limits;
mod meter;
mod mutation;
mod schema;
mod state;
mod token;
mod types;
mod webhooks;

pub use self::errors::ErrorShape;
pub use self::graphql::CURRENT_API_VERSION;
pub use self::limits::{ApiLimits, RefusalRecord, SpentWindow};
pub use self::webhooks::{MondayDelivery, RegisteredWebhook};
pub use crate::fakes::common::{AuthorizeRecord, IssMode, RefreshGate, Revocation, RevokeBehaviour, TokenKind};

use self::state::{Access, Account, Client, Grant, MondayState, User};
use crate::fakes::common::{random_key, serve, Params, RefreshHold, RequestLog, ServerGuard};
use axum::routing::{get, post};
use axum::Router;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

type Shared = Arc<Mutex<MondayState>>;

/// A running fake monday.com and its control handle. Clones share the server; it stops when
/// the last clone drops.
#[derive(Clone)]
pub struct FakeMonday {
    base: Url,
    state: Shared,
    log: RequestLog,
    _server: Arc<ServerGuard>,
}

impl std::fmt::Debug for FakeMonday {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMonday").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

impl FakeMonday {
    /// Starts a fake on `127.0.0.1:0` with no app, accounts or users.
    pub async fn start() -> FakeMonday {
        let state: Shared = Arc::new(Mutex::new(MondayState::new(random_key())));
        let router = Router::new()
            .route("/oauth2/authorize", get(authorize::authorize))
            .route("/oauth2/approve", post(authorize::approve_form))
            .route("/oauth2/deny", post(authorize::deny_form))
            .route("/oauth2/token", post(token::legacy_token))
            .route("/oauth_ms/oauth/token", post(token::v2_token))
            .route("/oauth_ms/oauth/revoke", post(lifecycle::revoke))
            .route("/oauth_ms/oauth/migrate", post(lifecycle::migrate))
            .route("/oauth_ms/.well-known/oauth-authorization-server", get(lifecycle::discovery))
            .route("/v2", post(graphql::graphql))
            .with_state(state.clone());
        let log = RequestLog::default();
        let (base, server) = serve(router, log.clone()).await;
        state.lock().unwrap().base = Some(base.clone());
        FakeMonday { base, state, log, _server: server }
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn base_url(&self) -> Url {
        self.base.clone()
    }

    /// Stands in for `https://auth.monday.com/oauth2/authorize`.
    pub fn auth_url(&self) -> Url {
        self.endpoint("oauth2/authorize")
    }

    /// Stands in for the legacy `https://auth.monday.com/oauth2/token`.
    pub fn legacy_token_url(&self) -> Url {
        self.endpoint("oauth2/token")
    }

    /// Stands in for the new-flow `https://auth.monday.com/oauth_ms/oauth/token`.
    pub fn token_url(&self) -> Url {
        self.endpoint("oauth_ms/oauth/token")
    }

    /// Stands in for `https://auth.monday.com/oauth_ms/oauth/revoke`.
    pub fn revoke_url(&self) -> Url {
        self.endpoint("oauth_ms/oauth/revoke")
    }

    /// Stands in for `https://auth.monday.com/oauth_ms/oauth/migrate`.
    pub fn migrate_url(&self) -> Url {
        self.endpoint("oauth_ms/oauth/migrate")
    }

    /// Stands in for `https://auth.monday.com/oauth_ms/.well-known/oauth-authorization-server`.
    pub fn metadata_url(&self) -> Url {
        self.endpoint("oauth_ms/.well-known/oauth-authorization-server")
    }

    /// Stands in for `https://api.monday.com/v2`.
    pub fn api_url(&self) -> Url {
        self.endpoint("v2")
    }

    /// The issuer in the discovery document and in `iss` (default `https://auth.monday.com`).
    pub fn issuer(&self) -> String {
        self.with(|st| st.switches.issuer.clone())
    }

    fn endpoint(&self, path: &str) -> Url {
        self.base.join(path).expect("a relative path joins the base URL")
    }

    fn with<T>(&self, f: impl FnOnce(&mut MondayState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Registers the app: its client credentials, redirect URIs (exact match) and the scopes
    /// configured for its version (the default when a request names none).
    pub fn register_client(&self, client_id: &str, client_secret: &str, redirect_uris: &[&str], scopes: &[&str]) {
        let client = Client {
            secret: client_secret.to_owned(),
            redirect_uris: redirect_uris.iter().map(|r| (*r).to_owned()).collect(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        };
        self.with(|st| st.clients.insert(client_id.to_owned(), client));
    }

    /// Registers an account, with the app installed on it.
    pub fn add_account(&self, id: u64, slug: &str, name: &str) {
        let account = Account { id, slug: slug.to_owned(), name: name.to_owned(), installed: true };
        self.with(|st| st.accounts.push(account));
    }

    /// Registers a user of an account.
    pub fn add_user(&self, id: u64, account_id: u64, name: &str, email: &str) {
        let user = User { id, account_id, name: name.to_owned(), email: email.to_owned() };
        self.with(|st| st.users.push(user));
    }

    /// Does in-process what loading `authorize_url` and pressing Approve as `user` (an id or an
    /// email) does, and returns the redirect (with a code, or an error when a switch or a bad
    /// parameter says so). Panics when monday would show an error page instead of redirecting.
    pub fn authorize_headless(&self, authorize_url: &Url, user: &str) -> Url {
        assert_eq!(authorize_url.path(), "/oauth2/authorize", "not a monday authorization URL: {authorize_url}");
        let target = format!("{}?{}", authorize_url.path(), authorize_url.query().unwrap_or_default());
        self.log.lock().unwrap().push(target);
        self.with(|st| {
            let outcome = authorize::validate(st, &Params::of_url(authorize_url))
                .and_then(|request| authorize::approve(st, &request, user));
            match outcome {
                Ok(url) | Err(authorize::Stop::Redirect(url)) => url,
                Err(authorize::Stop::Page(status, error, message)) => {
                    panic!("monday would show an error page instead of redirecting: {status} {error}: {message}")
                }
            }
        })
    }

    /// A legacy (permanent) token for a user, as if they had completed the legacy flow.
    pub fn issue_legacy_token(&self, client_id: &str, user_id: u64, scopes: &[&str]) -> String {
        self.with(|st| {
            let account_id = st.users.iter().find(|u| u.id == user_id).expect("a registered user").account_id;
            let grant = Grant {
                client_id: client_id.to_owned(),
                user_id,
                account_id,
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                legacy: true,
                alive: true,
                current_refresh: None,
            };
            let grant_id = st.next_id();
            st.grants.insert(grant_id, grant);
            let token = token::access_jwt(st, grant_id, None);
            st.access_tokens.insert(token.clone(), Access { grant_id, exp: None });
            token
        })
    }

    /// While on, Approve answers `error=access_denied` (state echoed).
    pub fn set_access_denied(&self, on: bool) {
        self.with(|st| st.switches.access_denied = on);
    }

    /// While on, the consent page carries `Cross-Origin-Opener-Policy: same-origin`.
    pub fn sever_opener(&self, on: bool) {
        self.with(|st| st.switches.sever_opener = on);
    }

    /// The next `times` calls to either token endpoint answer `status`.
    pub fn fail_token_endpoint(&self, status: u16, times: u32) {
        self.with(|st| st.switches.fail_token.set(status, times));
    }

    /// How `/oauth_ms/oauth/revoke` answers from now on (default [`RevokeBehaviour::Normal`]).
    /// Every call is still recorded in [`FakeMonday::revocations`]; a misbehaving endpoint
    /// revokes nothing.
    pub fn set_revoke_behaviour(&self, behaviour: RevokeBehaviour) {
        self.with(|st| st.switches.revoke = behaviour);
    }

    /// Holds refresh calls (`grant_type=refresh_token`) at the new-flow token endpoint until the
    /// returned gate is released or dropped; then they are answered as usual (rotation and reuse
    /// detection included, by the state at that moment). Await [`RefreshGate::arrived`] to know a
    /// refresh is being held. A new hold replaces the previous one for later calls.
    pub fn hold_refreshes(&self) -> RefreshGate {
        let hold = RefreshHold::new();
        self.with(|st| st.switches.refresh_hold = Some(hold.clone()));
        RefreshGate::new(hold)
    }

    /// What redirects carry in `iss` (default: [`IssMode::Missing`]).
    pub fn set_iss(&self, mode: IssMode) {
        self.with(|st| st.switches.iss = mode);
    }

    /// Installs or removes the app on an account; approval on an account without it redirects
    /// with `error=unauthorized_client`.
    pub fn set_installed(&self, account_id: u64, installed: bool) {
        self.with(|st| st.accounts.iter_mut().filter(|a| a.id == account_id).for_each(|a| a.installed = installed));
    }

    /// The account uninstalls the app: every token of that account dies (API calls 401,
    /// refreshes fail) and new authorizations are refused until it is installed again.
    pub fn uninstall(&self, account_id: u64) {
        self.set_installed(account_id, false);
        self.with(|st| {
            let grants: Vec<u64> =
                st.grants.iter().filter(|(_, g)| g.account_id == account_id).map(|(id, _)| *id).collect();
            grants.into_iter().for_each(|id| st.kill_grant(id));
        });
    }

    /// Lifetime of new-flow access tokens, in seconds (default 3600).
    pub fn set_access_token_lifetime(&self, seconds: u64) {
        self.with(|st| st.switches.access_lifetime = seconds);
    }

    /// While on, `/oauth_ms/oauth/migrate` answers 429 `too_many_requests`.
    pub fn throttle_migrate(&self, on: bool) {
        self.with(|st| st.switches.migrate_throttled = on);
    }

    /// Moves the fake's clock forward (codes and JWT `exp` are judged by it).
    pub fn advance_clock(&self, by: Duration) {
        self.with(|st| st.clock.advance(by));
    }

    /// Calls to the new token endpoint with this `grant_type`; `"legacy"` counts `/oauth2/token`.
    pub fn token_calls(&self, grant_type: &str) -> usize {
        self.with(|st| st.counters.token_calls.get(grant_type).copied().unwrap_or(0))
    }

    /// Refresh-grant calls so far.
    pub fn refresh_calls(&self) -> usize {
        self.token_calls("refresh_token")
    }

    /// Every refresh token presented to the refresh grant, in order.
    pub fn presented_refresh_tokens(&self) -> Vec<String> {
        self.with(|st| st.counters.presented_refresh_tokens.clone())
    }

    /// Every token sent to the revoke endpoint, in order.
    pub fn revoked_tokens(&self) -> Vec<String> {
        self.with(|st| st.counters.revoked.clone())
    }

    /// Every call to the revoke endpoint, in order, whatever the behaviour and the answer, with
    /// the kind of token it named and whether it ended a live grant.
    pub fn revocations(&self) -> Vec<Revocation> {
        self.with(|st| st.counters.revocations.clone())
    }

    /// Whether `token` still works here: a live access token, or the current refresh token of a
    /// live grant.
    pub fn token_alive(&self, token: &str) -> bool {
        self.with(|st| st.token_alive(token))
    }

    /// Calls to the migrate endpoint.
    pub fn migrate_calls(&self) -> usize {
        self.with(|st| st.counters.migrate_calls)
    }

    /// Calls to `/v2`.
    pub fn graphql_calls(&self) -> usize {
        self.with(|st| st.counters.graphql_calls)
    }

    /// Every authorization request (browser or headless), as sent.
    pub fn authorize_requests(&self) -> Vec<AuthorizeRecord> {
        self.with(|st| st.counters.authorize.clone())
    }

    /// Path and query of every request received (headless authorizations included).
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Every access and refresh token issued, for "no token leaks" assertions.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.with(|st| st.access_tokens.keys().chain(st.refresh_tokens.keys()).cloned().collect())
    }
}
