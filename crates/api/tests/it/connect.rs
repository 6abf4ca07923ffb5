//! The connect flow against the provider fakes, over real HTTP: sessions, the confirmation
//! page, state + PKCE + cookie binding, the callback, refresh, disconnect.

use crate::helpers::{free_port, json, token, Db, TestApp};
use patchbay_store::{ConnectionStatus, JobStatus, OAuthState, TenantScope};
use patchbay_testkit::fakes::{FakeGoogle, FakeMonday, IssMode, Providers, GOOGLE_SUB, MONDAY_USER};
use serde_json::{json, Value};
use std::collections::HashMap;
use url::Url;

pub const APP: &str = "https://app.example";

/// An app wired to fresh Google and Monday fakes.
pub struct World {
    pub app: TestApp,
    pub google: FakeGoogle,
    pub monday: FakeMonday,
}

pub async fn world(db: Db, monday_flow: &str) -> Option<World> {
    world_with(db, monday_flow, &[]).await
}

/// Like [`world`], with extra `patchbay` flags.
pub async fn world_with(db: Db, monday_flow: &str, extra: &[&str]) -> Option<World> {
    world_clocked(db, monday_flow, extra, std::sync::Arc::new(patchbay_store::SystemClock)).await
}

/// Like [`world_with`], with the clock the app's schedulers read.
pub async fn world_clocked(
    db: Db,
    monday_flow: &str,
    extra: &[&str],
    clock: std::sync::Arc<dyn patchbay_store::Clock>,
) -> Option<World> {
    let port = free_port();
    let Providers { google, monday, args, env } =
        Providers::start(&format!("http://127.0.0.1:{port}"), monday_flow).await;
    let args: Vec<&str> = ["--return-to-origins", APP]
        .into_iter()
        .chain(args.iter().map(String::as_str))
        .chain(extra.iter().copied())
        .collect();
    let app = crate::helpers::spawn_clocked(port, db, &args, env, clock).await?;
    Some(World { app, google, monday })
}

/// A started connect: the session and what the browser holds after `POST /connect/{token}`.
pub struct Started {
    pub session_id: String,
    pub authorize: Url,
    pub cookie: String,
}

impl World {
    pub async fn create_session(&self, bearer: &str, body: Value) -> reqwest::Response {
        self.app.client.post(self.app.url("/v1/connect-sessions")).bearer_auth(bearer).json(&body).send().await.unwrap()
    }

    /// Creates a session and walks the browser to the provider's authorize URL.
    pub async fn start(&self, bearer: &str, provider: &str, extra: Value) -> Started {
        let mut body = json!({"provider": provider, "mode": "redirect", "return_to": format!("{APP}/done")});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            body[k] = v;
        }
        let response = self.create_session(bearer, body).await;
        assert_eq!(response.status(), 201, "session created");
        let created = json(response).await;
        let connect_url = created["connect_url"].as_str().unwrap().to_string();
        let page = self.app.client.get(&connect_url).send().await.unwrap();
        assert_eq!(page.status(), 200, "the connect page renders");
        let submitted = self.app.client.post(&connect_url).send().await.unwrap();
        assert_eq!(submitted.status(), 303, "the POST redirects to the provider");
        let authorize = Url::parse(submitted.headers()["location"].to_str().unwrap()).unwrap();
        let set_cookie = submitted.headers()["set-cookie"].to_str().unwrap().to_string();
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        Started { session_id: created["id"].as_str().unwrap().to_string(), authorize, cookie }
    }

    /// The provider's redirect back (as the consenting user), without a browser.
    pub fn consent(&self, provider: &str, started: &Started) -> Url {
        match provider {
            "google" => self.google.authorize_headless(&started.authorize, GOOGLE_SUB),
            _ => self.monday.authorize_headless(&started.authorize, MONDAY_USER),
        }
    }

    pub async fn callback(&self, url: &Url, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self.app.client.get(url.as_str());
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    /// A whole connect; returns the app redirect's query as a map.
    pub async fn connect(&self, bearer: &str, provider: &str, extra: Value) -> HashMap<String, String> {
        let started = self.start(bearer, provider, extra).await;
        let callback = self.consent(provider, &started);
        let response = self.callback(&callback, Some(&started.cookie)).await;
        back_to_app(&response)
    }
}

/// The query of the 303 back to the app.
pub fn back_to_app(response: &reqwest::Response) -> HashMap<String, String> {
    assert_eq!(response.status(), 303, "the callback returns to the app");
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(&format!("{APP}/done")), "back to return_to: {location}");
    location.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

async fn google_connect_stores_an_encrypted_active_connection(db: Db) {
    let Some(w) = world(db, "v2").await else { return };
    let alice = token("alice", json!({}));
    let started = w.start(&alice, "google", json!({})).await;
    let params: HashMap<String, String> = started.authorize.query_pairs().into_owned().collect();
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["access_type"], "offline");
    assert_eq!(params["redirect_uri"], format!("{}/oauth/google/callback", w.app.base));
    let callback = w.consent("google", &started);
    let response = w.callback(&callback, Some(&started.cookie)).await;
    let back = back_to_app(&response);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(!location.contains("code=") && !location.contains("state="), "no code or state goes back: {location}");
    assert_eq!(back["patchbay_status"], "connected");
    let id = back["connection_id"].clone();

    let shown = json(w.app.get_as(&format!("/v1/connections/{id}"), &alice).await).await;
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["provider"], "google");
    assert_eq!(shown["account_email"], "alice@gmail.test");
    let polled = json(w.app.get_as(&format!("/v1/connect-sessions/{}", started.session_id), &alice).await).await;
    assert_eq!((polled["status"].as_str(), polled["connection_id"].as_str()), (Some("connected"), Some(id.as_str())));

    let me = json(w.app.get_as("/v1/me", &alice).await).await;
    let scope = TenantScope::new(me["tenant_id"].as_str().unwrap().parse().unwrap());
    let credential = w.app.store.get_credential(scope, id.parse().unwrap()).await.unwrap();
    for issued in w.google.issued_tokens() {
        let needle = issued.as_bytes();
        assert!(
            !credential.ciphertext.windows(needle.len()).any(|w| w == needle),
            "no plaintext token in the stored ciphertext"
        );
        assert!(!shown.to_string().contains(&issued), "no token in the API response");
    }
    let events = w.app.store.list_events(scope, 0, 100).await.unwrap();
    assert!(events.iter().any(|e| e.event_type.as_str() == "connection.created"), "connection.created in the outbox");
    let jobs = w.app.store.job_counts().await.unwrap();
    assert!(
        jobs.iter().any(|c| c.kind == "sync.initial" && c.status == JobStatus::Queued && c.count == 1),
        "initial sync queued: {jobs:?}"
    );
    assert_eq!(w.google.token_calls("authorization_code"), 1);
    w.app.stop().await;
}
crate::both_stores!(
    google_connect_in_redirect_mode_stores_an_encrypted_active_connection,
    google_connect_stores_an_encrypted_active_connection
);

async fn monday_connects_in_both_token_flows(db: Db) {
    for flow in ["v2", "legacy"] {
        let Some(w) = world(db, flow).await else { return };
        let alice = token("alice", json!({}));
        let started = w.start(&alice, "monday", json!({})).await;
        let has_pkce = started.authorize.query_pairs().any(|(k, _)| k == "code_challenge");
        assert_eq!(has_pkce, flow == "v2", "{flow}: PKCE only in the OAuth 2.1 flow");
        let callback = w.consent("monday", &started);
        let back = back_to_app(&w.callback(&callback, Some(&started.cookie)).await);
        assert_eq!(back["patchbay_status"], "connected", "{flow}: {back:?}");
        let shown = json(w.app.get_as(&format!("/v1/connections/{}", back["connection_id"]), &alice).await).await;
        assert_eq!(shown["provider_account_id"], "1001", "{flow}: the Monday account id");
        assert_eq!(shown["status"], "active", "{flow}");
        w.app.stop().await;
    }
}
crate::both_stores!(monday_connects_in_the_legacy_and_the_oauth_2_1_flow, monday_connects_in_both_token_flows);

#[tokio::test]
async fn a_replayed_callback_is_refused_and_the_token_endpoint_is_called_once() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    let started = w.start(&alice, "google", json!({})).await;
    let callback = w.consent("google", &started);
    assert_eq!(back_to_app(&w.callback(&callback, Some(&started.cookie)).await)["patchbay_status"], "connected");
    let replay = w.callback(&callback, Some(&started.cookie)).await;
    assert_eq!(replay.status(), 400, "the state was single use");
    assert_eq!(w.google.token_calls("authorization_code"), 1, "the replay never reached the token endpoint");
    w.app.stop().await;
}

#[tokio::test]
async fn unknown_and_expired_states_are_refused_before_any_token_call() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    let counted_before = invalid_states_counted(&w).await;
    let started = w.start(&alice, "google", json!({})).await;
    let mut forged = w.consent("google", &started);
    let code = forged.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    forged.query_pairs_mut().clear().append_pair("code", &code).append_pair("state", "made-up-state");
    let unknown = w.callback(&forged, Some(&started.cookie)).await;
    assert_eq!(unknown.status(), 400, "unknown state");
    assert_eq!(unknown.headers()["content-type"], "text/html; charset=utf-8", "a page for the person in the browser");
    assert!(unknown.text().await.unwrap().contains("Connection failed"));
    let mut missing = forged.clone();
    missing.query_pairs_mut().clear().append_pair("code", &code);
    assert_eq!(w.callback(&missing, Some(&started.cookie)).await.status(), 400, "no state");

    // An expired state row, written as the flow would have.
    let me = json(w.app.get_as("/v1/me", &alice).await).await;
    let tenant = me["tenant_id"].as_str().unwrap().parse().unwrap();
    let user = me["user_id"].as_str().unwrap().parse().unwrap();
    let session: patchbay_store::ConnectSessionId = started.session_id.parse().unwrap();
    let old = chrono::Utc::now() - chrono::Duration::minutes(30);
    let expired = OAuthState {
        state_sha256: patchbay_connect::sha256("expired-state"),
        provider: patchbay_store::ProviderId::Google,
        tenant_id: tenant,
        user_id: user,
        session_id: session,
        pkce_verifier: None,
        binding_sha256: [0; 32],
        redirect_uri: format!("{}/oauth/google/callback", w.app.base),
        created_at: old,
        expires_at: old + chrono::Duration::minutes(10),
    };
    w.app.store.create_oauth_state(expired).await.unwrap();
    let mut late = forged.clone();
    late.query_pairs_mut().clear().append_pair("code", &code).append_pair("state", "expired-state");
    assert_eq!(w.callback(&late, Some(&started.cookie)).await.status(), 400, "expired state");
    assert_eq!(w.google.token_calls("authorization_code"), 0, "no refused callback reached the token endpoint");
    let counted = invalid_states_counted(&w).await - counted_before;
    assert_eq!(counted, 3, "unknown, missing and expired states are counted (security.md B10)");
    w.app.stop().await;
}

/// `patchbay_oauth_invalid_state_total` as the metrics listener reports it.
async fn invalid_states_counted(w: &World) -> u64 {
    let text = w.app.client.get(format!("{}/metrics", w.app.metrics)).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("patchbay_oauth_invalid_state_total "))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn a_callback_without_this_browsers_cookie_is_refused() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    for (what, cookie) in [("no cookie", None), ("another browser's cookie", Some("pb_oauth_deadbeef=not-the-binding"))]
    {
        let started = w.start(&alice, "google", json!({})).await;
        let callback = w.consent("google", &started);
        let foreign = cookie.map(|c| {
            let name = started.cookie.split('=').next().unwrap();
            if c.starts_with("pb_oauth_deadbeef") {
                format!("{name}=forged-value")
            } else {
                c.to_string()
            }
        });
        let back = back_to_app(&w.callback(&callback, foreign.as_deref()).await);
        assert_eq!((back["patchbay_status"].as_str(), back["error"].as_str()), ("error", "invalid_binding"), "{what}");
    }
    assert_eq!(w.google.token_calls("authorization_code"), 0, "no token call without the binding");
    let list = json(w.app.get_as("/v1/connections", &alice).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "nothing stored");
    w.app.stop().await;
}

#[tokio::test]
async fn a_state_made_for_monday_is_refused_at_the_google_callback() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    let started = w.start(&alice, "monday", json!({})).await;
    let monday_callback = w.consent("monday", &started);
    let mut at_google = Url::parse(&format!("{}/oauth/google/callback", w.app.base)).unwrap();
    at_google.set_query(monday_callback.query());
    let back = back_to_app(&w.callback(&at_google, Some(&started.cookie)).await);
    assert_eq!(back["error"], "provider_mismatch");
    assert_eq!(
        w.google.token_calls("authorization_code") + w.monday.token_calls("authorization_code"),
        0,
        "neither token endpoint called"
    );
    w.app.stop().await;
}

#[tokio::test]
async fn a_wrong_or_duplicated_iss_aborts_before_the_code_is_sent() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    for mode in [
        IssMode::Wrong("https://evil.example".into()),
        IssMode::Wrong("https://accounts.google.com/".into()),
        IssMode::Duplicated,
    ] {
        w.google.set_iss(mode.clone());
        let back = w.connect(&alice, "google", json!({})).await;
        assert_eq!(back["error"], "issuer_mismatch", "{mode:?}");
    }
    assert_eq!(w.google.token_calls("authorization_code"), 0);
    w.google.set_iss(IssMode::Correct);
    assert_eq!(
        w.connect(&alice, "google", json!({})).await["patchbay_status"],
        "connected",
        "the exact issuer is accepted"
    );
    w.app.stop().await;
}

#[tokio::test]
async fn return_targets_must_be_allowlisted_exactly() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    for target in [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "%2F%2Fevil.example",
        "https://app.example.evil.example",
        "https://app.example@evil.example",
    ] {
        let response =
            w.create_session(&alice, json!({"provider": "google", "mode": "redirect", "return_to": target})).await;
        assert_eq!(response.status(), 400, "return_to {target} is refused");
        let response =
            w.create_session(&alice, json!({"provider": "google", "mode": "popup", "opener_origin": target})).await;
        assert_eq!(response.status(), 400, "opener_origin {target} is refused");
    }
    let scoped = w
        .create_session(
            &alice,
            json!({"provider": "google", "mode": "redirect", "return_to": APP, "scope": "https://mail.google.com/"}),
        )
        .await;
    assert_eq!(scoped.status(), 400, "callers cannot choose scopes");
    w.app.stop().await;
}

#[tokio::test]
async fn a_code_issued_to_one_browser_fails_in_another_browsers_session() {
    // Google and Monday OAuth 2.1 bind the code to the PKCE verifier of the browser that
    // started the flow. Monday's legacy flow has no PKCE: there the state and its cookie
    // binding are the only defence (see docs/security.md).
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    for provider in ["google", "monday"] {
        let mallory = w.start(&alice, provider, json!({})).await;
        let victim = w.start(&alice, provider, json!({})).await;
        let mallory_code =
            w.consent(provider, &mallory).query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
        let mut injected = w.consent(provider, &victim);
        let victim_state = injected.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
        let iss = injected.query_pairs().find(|(k, _)| k == "iss").map(|(_, v)| v.into_owned());
        let mut pairs = injected.query_pairs_mut();
        pairs.clear().append_pair("code", &mallory_code).append_pair("state", &victim_state);
        if let Some(iss) = iss {
            pairs.append_pair("iss", &iss);
        }
        drop(pairs);
        let back = back_to_app(&w.callback(&injected, Some(&victim.cookie)).await);
        assert_eq!(back["error"], "exchange_failed", "{provider}: PKCE binds the code to the browser that started it");
    }
    let list = json(w.app.get_as("/v1/connections", &alice).await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "nothing stored");
    w.app.stop().await;
}

#[tokio::test]
async fn a_link_scanners_get_does_not_consume_the_connect_token() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    let body = json!({"provider": "google", "mode": "redirect", "return_to": APP, "end_user": {"display_name": "Alice <Ops>"}});
    let created = json(w.create_session(&alice, body).await).await;
    let url = created["connect_url"].as_str().unwrap();
    for _ in 0..3 {
        let page = w.app.client.get(url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(!csp.contains("script-src"), "the confirmation page runs no script: {csp}");
        let html = page.text().await.unwrap();
        assert!(html.contains("method=\"post\""), "one button posts the form");
        assert!(html.contains("Alice &lt;Ops&gt;"), "it names the person, escaped: {html}");
        assert!(html.contains("Continue to Google") && html.contains("your calendars"), "{html}");
    }
    assert_eq!(w.app.client.post(url).send().await.unwrap().status(), 303, "the first POST consumes it");
    assert_eq!(w.app.client.post(url).send().await.unwrap().status(), 410, "a second POST finds it used");
    assert_eq!(w.app.client.get(url).send().await.unwrap().status(), 404, "and the page no longer renders");
    w.app.stop().await;
}

#[tokio::test]
async fn a_partial_grant_is_insufficient_scope_and_queues_no_sync() {
    // A consent that drops the calendar scope is not reported as success: the app learns
    // `insufficient_scope` with the connection id, so it can ask for a reconnect.
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    w.google.drop_scope("https://www.googleapis.com/auth/calendar.readonly");
    let back = w.connect(&alice, "google", json!({})).await;
    assert_eq!((back["patchbay_status"].as_str(), back["error"].as_str()), ("error", "insufficient_scope"));
    assert!(!back["connection_id"].is_empty(), "the connection id comes back with the error");
    let shown = json(w.app.get_as(&format!("/v1/connections/{}", back["connection_id"]), &alice).await).await;
    assert_eq!(shown["status"], "insufficient_scope");
    assert!(shown["status_reason"].as_str().unwrap().contains("calendar.readonly"));
    let jobs = w.app.store.job_counts().await.unwrap();
    assert!(!jobs.iter().any(|c| c.kind == "sync.initial"), "no sync for an insufficient grant: {jobs:?}");
    w.app.stop().await;
}

#[tokio::test]
async fn a_reconnect_to_another_account_is_refused_and_keeps_the_connection() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    let first = w.connect(&alice, "google", json!({})).await;
    let id = first["connection_id"].clone();
    let started = w.start(&alice, "google", json!({"connection_id": id})).await;
    let other = w.google.authorize_headless(&started.authorize, "g-sub-2");
    let back = back_to_app(&w.callback(&other, Some(&started.cookie)).await);
    assert_eq!(back["error"], "account_mismatch");
    let shown = json(w.app.get_as(&format!("/v1/connections/{id}"), &alice).await).await;
    assert_eq!(
        (shown["status"].as_str(), shown["account_email"].as_str()),
        (Some("active"), Some("alice@gmail.test")),
        "kept as it was"
    );
    let again = w.connect(&alice, "google", json!({"connection_id": id})).await;
    assert_eq!(again["connection_id"], id, "a reconnect of the same account keeps the id");
    w.app.stop().await;
}

#[tokio::test]
async fn a_denial_at_the_provider_returns_an_error_and_stores_nothing() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    w.google.set_access_denied(true);
    let back = w.connect(&alice, "google", json!({})).await;
    assert_eq!((back["patchbay_status"].as_str(), back["error"].as_str()), ("error", "access_denied"));
    assert_eq!(json(w.app.get_as("/v1/connections", &alice).await).await["data"].as_array().unwrap().len(), 0);
    w.app.stop().await;
}

#[tokio::test]
async fn popup_mode_posts_the_result_to_the_exact_opener_origin() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    let started = w.start(&alice, "google", json!({"mode": "popup", "opener_origin": APP, "return_to": null})).await;
    let response = w.callback(&w.consent("google", &started), Some(&started.cookie)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cross-origin-opener-policy"], "unsafe-none");
    let csp = response.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'sha256-") && !csp.contains("unsafe-inline"), "{csp}");
    let page = response.text().await.unwrap();
    assert!(page.contains(&format!("postMessage(d,\"{APP}\")")), "exact target origin: {page}");
    assert!(page.contains("\"patchbay_status\":\"connected\""));
    assert!(!page.contains("\"*\""), "never the wildcard origin");
    w.app.stop().await;
}

#[tokio::test]
async fn a_dead_grant_marks_the_connection_needs_reauth_with_an_event() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    w.google.set_expires_in(60);
    let alice = token("alice", json!({}));
    let back = w.connect(&alice, "google", json!({})).await;
    let id = back["connection_id"].parse().unwrap();
    let me = json(w.app.get_as("/v1/me", &alice).await).await;
    let scope = TenantScope::new(me["tenant_id"].as_str().unwrap().parse().unwrap());
    w.google.kill_refresh_tokens_of(GOOGLE_SUB);
    let result = w.app.state.tokens.fresh_access_token(scope, id).await;
    assert!(matches!(result, Err(patchbay_token_vault::TokenError::NeedsReauth(_))), "{result:?}");
    let shown = json(w.app.get_as(&format!("/v1/connections/{}", back["connection_id"]), &alice).await).await;
    assert_eq!(shown["status"], "needs_reauth");
    let events = w.app.store.list_events(scope, 0, 100).await.unwrap();
    assert!(
        events.iter().any(|e| e.event_type.as_str() == "connection.needs_reauth"),
        "needs_reauth event in the outbox"
    );
    assert_eq!(w.google.token_calls("refresh_token"), 1, "one refresh attempt, no retry loop");
    let status = w.app.store.connection_for_job(scope, id).await.unwrap().status;
    assert_eq!(status, ConnectionStatus::NeedsReauth);
    w.app.stop().await;
}

#[tokio::test]
async fn another_tenant_gets_404_on_every_connect_route() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    let mallory = token("mallory", json!({}));
    let started = w.start(&alice, "google", json!({})).await;
    let back = back_to_app(&w.callback(&w.consent("google", &started), Some(&started.cookie)).await);
    let id = &back["connection_id"];
    for (method, path) in [
        ("GET", format!("/v1/connections/{id}")),
        ("DELETE", format!("/v1/connections/{id}")),
        ("GET", format!("/v1/connect-sessions/{}", started.session_id)),
    ] {
        let response =
            w.app.client.request(method.parse().unwrap(), w.app.url(&path)).bearer_auth(&mallory).send().await.unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
    }
    let reconnect = w
        .create_session(
            &mallory,
            json!({"provider": "google", "mode": "redirect", "return_to": APP, "connection_id": id}),
        )
        .await;
    assert_eq!(reconnect.status(), 404, "cannot reconnect another tenant's connection");
    w.app.stop().await;
}

#[tokio::test]
async fn disconnect_revokes_once_destroys_the_credential_and_emits_deleted() {
    let w = world(Db::Sqlite, "v2").await.unwrap();
    let alice = token("alice", json!({}));
    let back = w.connect(&alice, "google", json!({})).await;
    let id = back["connection_id"].clone();
    let me = json(w.app.get_as("/v1/me", &alice).await).await;
    let scope = TenantScope::new(me["tenant_id"].as_str().unwrap().parse().unwrap());
    let response =
        w.app.client.delete(w.app.url(&format!("/v1/connections/{id}"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(w.app.get_as(&format!("/v1/connections/{id}"), &alice).await.status(), 404, "hidden at once");
    // The repair sweep, the first events-out round, the initial sync request, the disconnect
    // and the purge of synced data.
    assert_eq!(w.app.run_jobs().await, 5, "the disconnect job ran with the sync jobs around it");
    let events = w.app.store.list_events(scope, 0, 100).await.unwrap();
    let deleted = events.iter().filter(|e| e.event_type.as_str() == "connection.deleted").count();
    assert_eq!(deleted, 1, "connection.deleted written once");
    let again =
        w.app.client.delete(w.app.url(&format!("/v1/connections/{id}"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(again.status(), 404, "a finished disconnect is gone");
    let revocations = w.google.revocations();
    assert_eq!(revocations.len(), 1, "revoked once at the provider");
    assert!(!revocations[0].via_query, "the token travelled in the body, not the URL");
    let credential = w.app.store.credential_for_disconnect(scope, id.parse().unwrap()).await;
    assert!(matches!(credential, Err(patchbay_store::StoreError::NotFound)), "the credential is destroyed");
    assert!(w.google.token_in_url_violations().is_empty());
    w.app.stop().await;
}
