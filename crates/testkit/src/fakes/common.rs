//! What both fakes share: the server task, a clock tests can move, random tokens, PKCE, the `iss`
//! response parameter, OAuth JSON errors, request parameters and the request log.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use url::Url;

/// How long an authorization code can be redeemed (both providers: 10 minutes).
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// What the fake puts in the redirect's `iss` parameter (RFC 9207), to test the client's check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssMode {
    /// `iss` is the provider's issuer.
    Correct,
    /// No `iss` parameter.
    Missing,
    /// `iss` carries this value instead of the issuer.
    Wrong(String),
    /// The correct `iss` twice.
    Duplicated,
}

impl IssMode {
    /// Appends `iss` to a redirect as this mode says.
    pub(crate) fn append(&self, url: &mut Url, issuer: &str) {
        let mut pairs = url.query_pairs_mut();
        match self {
            IssMode::Correct => {
                pairs.append_pair("iss", issuer);
            }
            IssMode::Missing => {}
            IssMode::Wrong(value) => {
                pairs.append_pair("iss", value);
            }
            IssMode::Duplicated => {
                pairs.append_pair("iss", issuer).append_pair("iss", issuer);
            }
        }
    }
}

/// How a fake's revocation endpoint answers (security.md E2; providers.md A1.4, B5.5). Every call
/// is recorded in `revocations()` whatever the behaviour; only [`RevokeBehaviour::Normal`]
/// actually revokes anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RevokeBehaviour {
    /// The provider's own answer: Google 200 `{}` (400 `invalid_token` for a dead token),
    /// monday 200 `{"success": true}`; the token's grant ends.
    #[default]
    Normal,
    /// Every call answers this status with an OAuth error body (`server_error` for 5xx,
    /// `rate_limit_exceeded` for 429, `invalid_request` otherwise); nothing is revoked.
    Status(u16),
    /// Every call answers monday's failure shape, HTTP 200 `{"success": false}`; nothing is revoked.
    SuccessFalse,
    /// Every call answers `307 Temporary Redirect` to [`REVOKE_REDIRECT_PATH`] on the same fake
    /// (a followed redirect shows up in `requests()`); nothing is revoked.
    Redirect,
    /// Every call answers HTTP 200 with a `{"success": true, "padding": …}` body of
    /// [`OVERSIZED_REVOKE_BYTES`] (over the client's 1 MiB cap); nothing is revoked.
    Oversized,
}

/// Where [`RevokeBehaviour::Redirect`] points (a path on the fake that answers 404).
pub const REVOKE_REDIRECT_PATH: &str = "/revoke-redirect-target";
/// The body size of [`RevokeBehaviour::Oversized`]: 2 MiB + 1 byte.
pub const OVERSIZED_REVOKE_BYTES: usize = 2 * 1024 * 1024 + 1;

impl RevokeBehaviour {
    /// The answer of a misbehaving revocation endpoint; `None` for [`RevokeBehaviour::Normal`].
    pub(crate) fn misbehave(&self) -> Option<Response> {
        match self {
            RevokeBehaviour::Normal => None,
            RevokeBehaviour::Status(code) => {
                let status = StatusCode::from_u16(*code).expect("a valid HTTP status");
                let error = match status.as_u16() {
                    500.. => "server_error",
                    429 => "rate_limit_exceeded",
                    _ => "invalid_request",
                };
                Some(oauth_error(status, error, Some("Injected revocation failure")))
            }
            RevokeBehaviour::SuccessFalse => Some(json(StatusCode::OK, serde_json::json!({ "success": false }))),
            RevokeBehaviour::Redirect => {
                Some((StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, REVOKE_REDIRECT_PATH)]).into_response())
            }
            RevokeBehaviour::Oversized => {
                let head = br#"{"success":true,"padding":""#;
                let mut body = Vec::with_capacity(OVERSIZED_REVOKE_BYTES);
                body.extend_from_slice(head);
                body.resize(OVERSIZED_REVOKE_BYTES - 2, b'x');
                body.extend_from_slice(b"\"}");
                Some(
                    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response(),
                )
            }
        }
    }
}

/// Which kind of token a revocation call named, as the fake knew it when the call arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// An access token this fake issued (live or not).
    Access,
    /// A refresh token this fake issued (live, rotated or revoked).
    Refresh,
    /// Not a token this fake issued (or no token at all).
    Unknown,
}

/// One call to a fake's revocation endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// The token sent (empty when the call named none).
    pub token: String,
    /// What the token is.
    pub kind: TokenKind,
    /// The token came in the URL's query (a violation: tokens must travel in the body).
    pub via_query: bool,
    /// The `token_type_hint` sent, if any.
    pub hint: Option<String>,
    /// The call ended a live grant: the behaviour was [`RevokeBehaviour::Normal`], the client
    /// authenticated (monday) and the token's grant was still alive.
    pub effective: bool,
}

/// A hold on token-endpoint refresh calls (`grant_type=refresh_token`), made by a fake's
/// `hold_refreshes()`. While it is on, each refresh request waits inside the fake — before it is
/// counted or answered — until [`RefreshGate::release`] or the gate is dropped; then it is answered
/// as usual. Code exchanges and other endpoints are never held.
#[derive(Debug)]
pub struct RefreshGate {
    hold: Arc<RefreshHold>,
}

impl RefreshGate {
    pub(crate) fn new(hold: Arc<RefreshHold>) -> Self {
        RefreshGate { hold }
    }

    /// Resolves once at least one refresh has arrived and is being held (at once if one already
    /// was). No polling, no sleeping.
    pub async fn arrived(&self) {
        self.arrived_at_least(1).await;
    }

    /// Resolves once at least `n` refreshes have arrived at this gate.
    pub async fn arrived_at_least(&self, n: usize) {
        let mut arrivals = self.hold.arrived.subscribe();
        // The sender lives in `self.hold`, so the channel cannot close while we wait.
        arrivals.wait_for(|count| *count >= n).await.ok();
    }

    /// How many refreshes have arrived at this gate so far (held ones and released ones).
    pub fn arrivals(&self) -> usize {
        *self.hold.arrived.borrow()
    }

    /// Lets every held refresh (and every later one) through.
    pub fn release(self) {
        drop(self);
    }
}

impl Drop for RefreshGate {
    fn drop(&mut self) {
        self.hold.released.send_replace(true);
    }
}

/// The fake's side of a [`RefreshGate`].
#[derive(Debug)]
pub(crate) struct RefreshHold {
    released: watch::Sender<bool>,
    arrived: watch::Sender<usize>,
}

impl RefreshHold {
    pub fn new() -> Arc<Self> {
        Arc::new(RefreshHold { released: watch::Sender::new(false), arrived: watch::Sender::new(0) })
    }

    /// Waits while the gate is on; returns at once after it was released.
    pub async fn pass(&self) {
        let mut released = self.released.subscribe();
        if *released.borrow_and_update() {
            return;
        }
        self.arrived.send_modify(|count| *count += 1);
        // The sender lives in `self`, so the channel cannot close while we wait.
        released.wait_for(|released| *released).await.ok();
    }
}

/// Waits at `hold` (if any) when this token call is a refresh.
pub(crate) async fn hold_if_refresh(hold: Option<Arc<RefreshHold>>, grant_type: &str) {
    if grant_type != "refresh_token" {
        return;
    }
    if let Some(hold) = hold {
        hold.pass().await;
    }
}

/// One authorization request as the fake received it, for assertions on what the client sent.
#[derive(Clone, Debug)]
pub struct AuthorizeRecord {
    /// Every query parameter, in order, duplicates kept.
    pub params: Vec<(String, String)>,
}

impl AuthorizeRecord {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Request parameters (query or form body): first value wins, duplicates stay countable.
#[derive(Clone, Debug, Default)]
pub(crate) struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Self {
        Params(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    pub fn of_url(url: &Url) -> Self {
        Params(url.query_pairs().into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The value, or `None` when absent or empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

/// A PKCE challenge as sent to the authorize endpoint.
#[derive(Clone, Debug)]
pub(crate) struct Challenge {
    pub value: String,
    pub s256: bool,
}

impl Challenge {
    pub fn verifies(&self, verifier: &str) -> bool {
        if self.s256 {
            s256(verifier) == self.value
        } else {
            verifier == self.value
        }
    }
}

/// `BASE64URL-NOPAD(SHA-256(verifier))`.
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// An unguessable token (256 bits) with a recognisable prefix.
pub(crate) fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A random key for the fake's own JWT signatures.
pub(crate) fn random_key() -> Vec<u8> {
    let mut key = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    key
}

/// Wall time plus an offset tests can advance, so expiry is tested without sleeping.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Clock {
    offset: Duration,
}

impl Clock {
    pub fn now(&self) -> SystemTime {
        SystemTime::now() + self.offset
    }

    pub fn unix(&self) -> u64 {
        self.now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    /// Milliseconds since the epoch, for windows shorter than a few seconds.
    pub fn unix_ms(&self) -> u64 {
        self.now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
    }

    pub fn advance(&mut self, by: Duration) {
        self.offset += by;
    }
}

/// A JSON response with the content type both providers send.
pub(crate) fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

/// An OAuth error body (RFC 6749 §5.2).
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: Option<&str>) -> Response {
    let mut body = serde_json::json!({ "error": error });
    if let Some(description) = description {
        body["error_description"] = description.into();
    }
    json(status, body)
}

/// An OAuth error to answer with; small, so helpers can return it in a `Result`.
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: Option<&'static str>,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: Option<&'static str>) -> Self {
        OAuthError { status, error, description }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        oauth_error(self.status, self.error, self.description)
    }
}

/// Whether the body's declared media type is `essence` (parameters such as charset ignored).
pub(crate) fn has_content_type(headers: &HeaderMap, essence: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(essence))
}

/// A bearer token from `Authorization`; `raw_allowed` also takes a bare token (monday).
pub(crate) fn bearer(headers: &HeaderMap, raw_allowed: bool) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim().to_owned()),
        None if raw_allowed && !value.is_empty() => Some(value.to_owned()),
        _ => None,
    }
}

/// Appends query pairs to a redirect URI, keeping any query it already has.
pub(crate) fn redirect_url(redirect_uri: &str, pairs: &[(&str, Option<&str>)]) -> Url {
    let mut url = Url::parse(redirect_uri).expect("registered redirect URIs are absolute URLs");
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    url
}

/// Every request's path and query, in arrival order.
pub(crate) type RequestLog = Arc<Mutex<Vec<String>>>;

/// Aborts the server task when the last handle goes away.
#[derive(Debug)]
pub(crate) struct ServerGuard(tokio::task::JoinHandle<()>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `router` on `127.0.0.1:0`, logging every request; returns the base URL.
pub(crate) async fn serve(router: Router, log: RequestLog) -> (Url, Arc<ServerGuard>) {
    let router = router.layer(middleware::from_fn_with_state(log, record_request));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a fake provider to 127.0.0.1:0");
    let addr = listener.local_addr().expect("the fake's local address");
    let task = tokio::spawn(async move {
        // The server ends only when the handle aborts it; an I/O error just ends the fake.
        axum::serve(listener, router).await.ok();
    });
    let base = Url::parse(&format!("http://{addr}/")).expect("a socket address makes a URL");
    (base, Arc::new(ServerGuard(task)))
}

async fn record_request(State(log): State<RequestLog>, request: Request, next: Next) -> Response {
    let target = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    log.lock().unwrap().push(target);
    next.run(request).await
}

/// A switch that makes the next `remaining` calls of an endpoint fail with `status`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FailNext {
    status: Option<StatusCode>,
    remaining: u32,
}

impl FailNext {
    pub fn set(&mut self, status: u16, times: u32) {
        self.status = Some(StatusCode::from_u16(status).expect("a valid HTTP status"));
        self.remaining = times;
    }

    /// The status to fail this call with, if the switch is still on.
    pub fn take(&mut self) -> Option<StatusCode> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        self.status
    }
}

/// Splits a space- (or comma-) separated scope string.
pub(crate) fn split_scopes(raw: &str) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in raw.split(|c: char| c.is_whitespace() || c == ',').filter(|s| !s.is_empty()) {
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes
}
