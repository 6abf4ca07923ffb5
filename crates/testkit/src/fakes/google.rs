//! Fake Google OAuth server (providers.md B5, C2): authorize with a consent page, `/token`,
//! `/revoke`, `/v1/userinfo`, the Calendar API v3 (see [`calendar`]), and the control handle
//! tests drive it with.

mod api;
mod authorize;
pub mod calendar;
mod state;
mod token;

pub use self::calendar::{ApiFailure, EventSpec, EventTime, PushDelivery};
pub use crate::fakes::common::{AuthorizeRecord, IssMode, RefreshGate, Revocation, RevokeBehaviour, TokenKind};

use self::state::{Client, GoogleState, User};
use crate::fakes::common::{random_key, serve, Params, RefreshHold, RequestLog, ServerGuard};
use axum::routing::{get, post};
use axum::Router;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// The issuer Google's callbacks carry in `iss`.
pub const ISSUER: &str = "https://accounts.google.com";

type Shared = Arc<Mutex<GoogleState>>;

/// A running fake Google and its control handle. Clones share the server; it stops when the
/// last clone drops.
#[derive(Clone)]
pub struct FakeGoogle {
    base: Url,
    state: Shared,
    log: RequestLog,
    _server: Arc<ServerGuard>,
}

impl std::fmt::Debug for FakeGoogle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGoogle").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

impl FakeGoogle {
    /// Starts a fake on `127.0.0.1:0` with no clients and no users.
    pub async fn start() -> FakeGoogle {
        let state: Shared = Arc::new(Mutex::new(GoogleState::new(random_key())));
        let router = Router::new()
            .route("/o/oauth2/v2/auth", get(authorize::authorize))
            .route("/o/oauth2/v2/approve", post(authorize::approve_form))
            .route("/o/oauth2/v2/deny", post(authorize::deny_form))
            .route("/token", post(token::token))
            .route("/revoke", post(api::revoke))
            .route("/v1/userinfo", get(api::userinfo))
            .merge(calendar::routes())
            .with_state(state.clone());
        let log = RequestLog::default();
        let (base, server) = serve(router, log.clone()).await;
        state.lock().unwrap().push.base = base.to_string();
        FakeGoogle { base, state, log, _server: server }
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn base_url(&self) -> Url {
        self.base.clone()
    }

    /// Stands in for `https://accounts.google.com/o/oauth2/v2/auth`.
    pub fn auth_url(&self) -> Url {
        self.endpoint("o/oauth2/v2/auth")
    }

    /// Stands in for `https://oauth2.googleapis.com/token`.
    pub fn token_url(&self) -> Url {
        self.endpoint("token")
    }

    /// Stands in for `https://oauth2.googleapis.com/revoke`.
    pub fn revoke_url(&self) -> Url {
        self.endpoint("revoke")
    }

    /// Stands in for `https://openidconnect.googleapis.com/v1/userinfo`.
    pub fn userinfo_url(&self) -> Url {
        self.endpoint("v1/userinfo")
    }

    fn endpoint(&self, path: &str) -> Url {
        self.base.join(path).expect("a relative path joins the base URL")
    }

    fn with<T>(&self, f: impl FnOnce(&mut GoogleState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Registers an OAuth client; redirect URIs are matched exactly.
    pub fn register_client(&self, client_id: &str, client_secret: &str, redirect_uris: &[&str]) {
        let client = Client {
            secret: client_secret.to_owned(),
            redirect_uris: redirect_uris.iter().map(|r| (*r).to_owned()).collect(),
        };
        self.with(|st| st.clients.insert(client_id.to_owned(), client));
    }

    /// Registers a Google account; its name is the email's local part.
    pub fn add_user(&self, sub: &str, email: &str) {
        let name = email.split('@').next().unwrap_or(email).to_owned();
        self.with(|st| st.users.push(User { sub: sub.to_owned(), email: email.to_owned(), name }));
    }

    /// Does in-process what loading `authorize_url` and pressing Approve as `user` (a `sub` or an
    /// email) does, and returns the redirect (with a code, or an error when a switch says so).
    /// Panics when Google would show an error page instead of redirecting.
    pub fn authorize_headless(&self, authorize_url: &Url, user: &str) -> Url {
        assert_eq!(authorize_url.path(), "/o/oauth2/v2/auth", "not a Google authorization URL: {authorize_url}");
        let target = format!("{}?{}", authorize_url.path(), authorize_url.query().unwrap_or_default());
        self.log.lock().unwrap().push(target);
        self.with(|st| {
            let outcome = authorize::validate(st, &Params::of_url(authorize_url))
                .and_then(|request| authorize::approve(st, &request, user, None));
            match outcome {
                Ok(url) | Err(authorize::Stop::Redirect(url)) => url,
                Err(authorize::Stop::Page(status, error, message)) => {
                    panic!("Google would show an error page instead of redirecting: {status} {error}: {message}")
                }
            }
        })
    }

    /// Granular consent: the user leaves this scope unticked, so grants omit it.
    pub fn drop_scope(&self, scope: &str) {
        self.with(|st| st.switches.dropped_scopes.insert(scope.to_owned()));
    }

    /// While on, Approve answers like Deny (`error=access_denied`).
    pub fn set_access_denied(&self, on: bool) {
        self.with(|st| st.switches.access_denied = on);
    }

    /// While on, the consent page carries `Cross-Origin-Opener-Policy: same-origin`.
    pub fn sever_opener(&self, on: bool) {
        self.with(|st| st.switches.sever_opener = on);
    }

    /// The next `times` calls to `/token` answer `status`.
    pub fn fail_token_endpoint(&self, status: u16, times: u32) {
        self.with(|st| st.switches.fail_token.set(status, times));
    }

    /// How `/revoke` answers from now on (default [`RevokeBehaviour::Normal`]). Every call is
    /// still recorded in [`FakeGoogle::revocations`]; a misbehaving endpoint revokes nothing.
    pub fn set_revoke_behaviour(&self, behaviour: RevokeBehaviour) {
        self.with(|st| st.switches.revoke = behaviour);
    }

    /// Holds refresh calls (`grant_type=refresh_token`) at `/token` until the returned gate is
    /// released or dropped; then they are answered as usual (by the state at that moment: a
    /// grant killed meanwhile answers `invalid_grant`). Await [`RefreshGate::arrived`] to know a
    /// refresh is being held. A new hold replaces the previous one for later calls.
    pub fn hold_refreshes(&self) -> RefreshGate {
        let hold = RefreshHold::new();
        self.with(|st| st.switches.refresh_hold = Some(hold.clone()));
        RefreshGate::new(hold)
    }

    /// The user revokes the app: every grant of `sub` ends, its tokens die.
    pub fn kill_refresh_tokens_of(&self, sub: &str) {
        self.with(|st| {
            let grants: Vec<u64> = st.grants.iter().filter(|((s, _), _)| s == sub).map(|(_, g)| g.id).collect();
            grants.into_iter().for_each(|id| st.kill_grant(id));
        });
    }

    /// What redirects carry in `iss` (default: [`IssMode::Correct`]).
    pub fn set_iss(&self, mode: IssMode) {
        self.with(|st| st.switches.iss = mode);
    }

    /// `expires_in` of new access tokens (default 3599).
    pub fn set_expires_in(&self, seconds: u64) {
        self.with(|st| st.switches.expires_in = seconds);
    }

    /// Moves the fake's clock forward (codes and access tokens expire by it).
    pub fn advance_clock(&self, by: Duration) {
        self.with(|st| st.clock.advance(by));
    }

    /// Every access token issued so far expires now; refresh tokens stay valid.
    pub fn expire_access_tokens(&self) {
        self.with(|st| {
            let now = st.clock.now();
            st.access_tokens.values_mut().for_each(|t| t.expires_at = Some(now));
        });
    }

    /// Calls to `/token` with this `grant_type` (`""` for bodies that were not form-encoded).
    pub fn token_calls(&self, grant_type: &str) -> usize {
        self.with(|st| st.counters.token_calls.get(grant_type).copied().unwrap_or(0))
    }

    /// Refresh-grant calls that presented this refresh token.
    pub fn refresh_calls(&self, refresh_token: &str) -> usize {
        self.with(|st| st.counters.refresh_calls.get(refresh_token).copied().unwrap_or(0))
    }

    /// Every `/revoke` call, in order, whatever the behaviour and the answer.
    pub fn revocations(&self) -> Vec<Revocation> {
        self.with(|st| st.counters.revocations.clone())
    }

    /// Whether `token` still works here: a live access token, or a refresh token that would refresh.
    pub fn token_alive(&self, token: &str) -> bool {
        self.with(|st| st.token_alive(token))
    }

    /// Calls to `/v1/userinfo`.
    pub fn userinfo_calls(&self) -> usize {
        self.with(|st| st.counters.userinfo_calls)
    }

    /// Every authorization request (browser or headless), as sent.
    pub fn authorize_requests(&self) -> Vec<AuthorizeRecord> {
        self.with(|st| st.counters.authorize.clone())
    }

    /// Requests that carried a token in the URL (accepted, as Google does, but never legitimate).
    pub fn token_in_url_violations(&self) -> Vec<String> {
        self.with(|st| st.counters.url_token_violations.clone())
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
