//! The connect flow in a real browser (architecture §4.1; security.md B6, B9, Q2): headless
//! Chromium driven through chromedriver, a real Patchbay wired to the provider fakes, and a tiny
//! app served by the test itself that starts each connect the way a frontend would, from another
//! origin: `POST /v1/connect-sessions` with a bearer token (CORS), then either a full-page
//! redirect or a popup that reports back by `postMessage`, with `GET /v1/connect-sessions/{id}`
//! polled as the fallback. Patchbay's confirmation page (`GET /connect/{token}`) submits nothing
//! by itself: every flow clicks its "Continue to <provider>" button. SQLite only: the store is not
//! what these tests are about. Patchbay runs inside the test process (`app.rs`).
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`scripts/test.sh` installs them);
//! with `PATCHBAY_BROWSER=skip` each test prints `skipped: …` and returns.

mod app;
mod fixation;

use app::{world, World};
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use fantoccini::wd::WindowHandle;
use fantoccini::{Client, Locator};
use patchbay_testkit::app::token;
use patchbay_tests::browser::{skipped, Browser, WAIT};
use serde_json::{json, Value};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The JSON body of a response.
async fn json_body(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

/// The app a test serves: one page that starts a connect, one that shows where it came back.
#[derive(Clone)]
struct AppPages {
    origin: String,
    patchbay: String,
    bearer: String,
}

fn js(text: &str) -> String {
    // JSON is a JavaScript literal; `<` escaped so nothing can close the script element.
    Value::String(text.to_string()).to_string().replace('<', "\\u003c")
}

/// `/?provider=…&mode=redirect|popup`: the Connect button creates a session with the bearer token
/// and opens `connect_url`; the outcome is written into `#result` as `connected:<id>` or
/// `error:<code>`. `window.pb` records how it arrived: `viaMessage` (a `postMessage` from exactly
/// Patchbay's origin), `viaPoll` (the polling fallback), `foreignOrigins` (messages ignored).
async fn start_page(State(app): State<AppPages>) -> Html<String> {
    let script = r#"
const params = new URLSearchParams(location.search);
const provider = params.get('provider');
const mode = params.get('mode');
const pb = window.pb = {session: null, viaMessage: null, viaPoll: null, foreignOrigins: [], log: []};
const outcome = (d) => d.patchbay_status === 'connected' ? 'connected:' + d.connection_id : 'error:' + d.error;
function show(text) {
  const result = document.getElementById('result');
  if (!result.textContent) result.textContent = text;
}
window.addEventListener('message', (event) => {
  if (event.origin !== PATCHBAY) { pb.foreignOrigins.push(event.origin); return; }
  if (!event.data || typeof event.data.patchbay_status !== 'string') return;
  pb.viaMessage = outcome(event.data);
  show(pb.viaMessage);
});
async function poll(id) {
  while (pb.viaMessage === null) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (pb.viaMessage !== null) return;
    let session;
    try {
      const response = await fetch(PATCHBAY + '/v1/connect-sessions/' + encodeURIComponent(id),
        {headers: {authorization: 'Bearer ' + TOKEN}});
      session = await response.json();
      if (!response.ok) { pb.log.push('poll: HTTP ' + response.status); continue; }
    } catch (e) { pb.log.push('poll: ' + e); continue; }
    if (session.status === 'pending') continue;
    pb.viaPoll = outcome({patchbay_status: session.status, connection_id: session.connection_id, error: session.error});
    show(pb.viaPoll);
    return;
  }
}
document.getElementById('connect').addEventListener('click', async () => {
  // Opened inside the click, before any await, so the popup blocker sees the user's gesture.
  const popup = mode === 'popup' ? window.open('about:blank', 'patchbay-connect', 'popup,width=520,height=640') : null;
  const body = {provider, mode};
  if (mode === 'popup') body.opener_origin = APP_ORIGIN; else body.return_to = APP_ORIGIN + '/done';
  let created;
  try {
    const response = await fetch(PATCHBAY + '/v1/connect-sessions', {method: 'POST',
      headers: {authorization: 'Bearer ' + TOKEN, 'content-type': 'application/json'}, body: JSON.stringify(body)});
    created = await response.json();
    if (response.status !== 201) {
      pb.log.push(JSON.stringify(created));
      if (popup) popup.close();
      show('error:http_' + response.status);
      return;
    }
  } catch (e) { pb.log.push('create: ' + e); show('error:fetch_failed'); return; }
  pb.session = created.id;
  if (mode === 'popup') { popup.location.href = created.connect_url; poll(created.id); }
  else location.assign(created.connect_url);
});
"#;
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Test app</title></head><body>\
         <button id=\"connect\">Connect</button><div id=\"result\"></div><script>\
         const PATCHBAY = {}; const APP_ORIGIN = {}; const TOKEN = {};{script}</script></body></html>",
        js(&app.patchbay),
        js(&app.origin),
        js(&app.bearer),
    ))
}

/// `/done?patchbay_status=…`: the redirect mode's return page.
async fn done_page() -> Html<&'static str> {
    Html(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Back in the app</title></head><body>\
         <div id=\"result\"></div><script>\
         const q = new URLSearchParams(location.search);\
         const status = q.get('patchbay_status');\
         document.getElementById('result').textContent = status === 'connected' ? 'connected:' + q.get('connection_id')\
           : status === 'error' ? 'error:' + q.get('error') : 'error:no_patchbay_status';\
         </script></body></html>",
    )
}

/// Patchbay + fakes, the test's app, and a browser.
struct Harness {
    w: World,
    browser: Browser,
    origin: String,
    bearer: String,
    app_server: JoinHandle<()>,
}

impl Harness {
    /// `None` when browser tests are skipped. `extra_args` are added to Patchbay's flags.
    async fn start(monday_flow: &str, extra_args: &[&str]) -> Option<Harness> {
        if skipped() {
            return None;
        }
        // The app's listener first: its origin must be on Patchbay's allowlists before Patchbay starts.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let mut extra = vec!["--return-to-origins", origin.as_str(), "--cors-origins", origin.as_str()];
        extra.extend_from_slice(extra_args);
        let w = world(monday_flow, &extra).await;
        let bearer = token("alice", json!({}));
        let pages = AppPages { origin: origin.clone(), patchbay: w.app.base.clone(), bearer: bearer.clone() };
        let router = Router::new().route("/", get(start_page)).route("/done", get(done_page)).with_state(pages);
        let app_server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let browser = Browser::start().await;
        Some(Harness { w, browser, origin, bearer, app_server })
    }

    fn client(&self) -> &Client {
        &self.browser.client
    }

    /// Opens the app's start page and checks that the page's own `location.origin` is exactly the
    /// origin Patchbay was configured with (the popup posts to that string and no other).
    async fn open_app(&self, provider: &str, mode: &str) {
        let c = self.client();
        c.goto(&format!("{}/?provider={provider}&mode={mode}", self.origin)).await.unwrap();
        let origin = c.execute("return location.origin", vec![]).await.unwrap();
        assert_eq!(origin.as_str(), Some(self.origin.as_str()), "the app page's origin is the allowlisted one");
    }

    async fn click_connect(&self) {
        self.find_within("connect").await.click().await.unwrap();
    }

    /// Waits for an element by id (pages are navigating in between).
    async fn find_within(&self, id: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.client().find(Locator::Id(id)).await {
                return element;
            }
            if Instant::now() >= deadline {
                panic!("no #{id} within {WAIT:?}\n{}", self.page_dump().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// On Patchbay's confirmation page, which waits for the person: checks it is Patchbay's
    /// `/connect/{token}` page and clicks "Continue to <provider_name>".
    async fn continue_to(&self, provider_name: &str) {
        let button = self.find_within("continue").await;
        let url = self.client().current_url().await.unwrap();
        assert_eq!(url.origin().ascii_serialization(), self.w.app.base, "on Patchbay's confirmation page: {url}");
        assert!(url.path().starts_with("/connect/"), "on Patchbay's confirmation page: {url}");
        assert_eq!(button.text().await.unwrap(), format!("Continue to {provider_name}"));
        button.click().await.unwrap();
    }

    /// On the provider's consent page: picks the account (when given) and clicks `button_id`.
    async fn consent(&self, button_id: &str, account: Option<&str>) {
        let button = self.find_within(button_id).await;
        if let Some(account) = account {
            self.find_within("user").await.select_by_value(account).await.unwrap();
        }
        button.click().await.unwrap();
    }

    /// Waits until `#result` has text and returns it.
    async fn result(&self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.client().find(Locator::Id("result")).await {
                if let Ok(text) = element.text().await {
                    if !text.is_empty() {
                        return text;
                    }
                }
            }
            if Instant::now() >= deadline {
                panic!("#result stayed empty for {WAIT:?}\n{}", self.page_dump().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `window.pb` of the app page (how the popup outcome arrived).
    async fn pb(&self) -> Value {
        self.client().execute("return window.pb", vec![]).await.unwrap()
    }

    /// Waits until a new window besides `known` appears and returns it.
    async fn new_window(&self, known: &WindowHandle) -> WindowHandle {
        let deadline = Instant::now() + WAIT;
        loop {
            let windows = self.client().windows().await.unwrap();
            if let Some(other) = windows.into_iter().find(|w| w != known) {
                return other;
            }
            if Instant::now() >= deadline {
                panic!("no popup opened within {WAIT:?}\n{}", self.page_dump().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The current window's URL and source, for failure messages.
    async fn page_dump(&self) -> String {
        let c = self.client();
        let url = c.current_url().await.map(|u| u.to_string()).unwrap_or_else(|e| format!("(no URL: {e})"));
        let source = c.source().await.unwrap_or_else(|e| format!("(no source: {e})"));
        let pb = c.execute("return window.pb || null", vec![]).await.map(|v| v.to_string()).unwrap_or_default();
        format!("URL: {url}\nwindow.pb: {pb}\nsource:\n{source}")
    }

    /// The connection as the API shows it to the app's user.
    async fn connection(&self, id: &str) -> Value {
        let response = self.w.app.get_as(&format!("/v1/connections/{id}"), &self.bearer).await;
        assert_eq!(response.status(), 200, "GET /v1/connections/{id}");
        json_body(response).await
    }

    async fn connection_count(&self) -> usize {
        json_body(self.w.app.get_as("/v1/connections", &self.bearer).await).await["data"].as_array().unwrap().len()
    }

    /// Ends the WebDriver session (Chromium quits), then stops the app and Patchbay.
    async fn finish(self) {
        self.browser.close().await;
        self.app_server.abort();
        self.w.app.stop().await;
    }
}

/// Runs a test body with a harness; the browser session is closed whether the body passes or not.
async fn with_harness<F, Fut>(monday_flow: &str, body: F)
where
    F: FnOnce(Arc<Harness>) -> Fut,
    Fut: Future<Output = ()>,
{
    with_harness_args(monday_flow, &[], body).await
}

/// [`with_harness`] with extra Patchbay flags.
async fn with_harness_args<F, Fut>(monday_flow: &str, extra_args: &[&str], body: F)
where
    F: FnOnce(Arc<Harness>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(h) = Harness::start(monday_flow, extra_args).await else { return };
    let h = Arc::new(h);
    let outcome = futures::FutureExt::catch_unwind(AssertUnwindSafe(body(h.clone()))).await;
    // The body's future is gone, so this is the last handle.
    if let Ok(h) = Arc::try_unwrap(h) {
        h.finish().await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The id in `connected:<id>`, or a failure naming what the app showed instead.
fn connected_id(result: &str) -> String {
    result.strip_prefix("connected:").unwrap_or_else(|| panic!("the app shows `{result}`, not connected:<id>")).into()
}

/// What the confirmation page calls a provider ("Continue to …").
fn provider_name(provider: &str) -> &'static str {
    match provider {
        "google" => "Google",
        "monday" => "monday.com",
        other => panic!("no such provider: {other}"),
    }
}

/// A redirect-mode connect from the app's page through Patchbay's confirmation page and the
/// consent page and back to `/done`; returns what the app shows.
async fn redirect_connect(h: &Harness, provider: &str, account: Option<&str>) -> String {
    h.open_app(provider, "redirect").await;
    h.click_connect().await;
    h.continue_to(provider_name(provider)).await;
    h.consent("approve", account).await;
    let result = h.result().await;
    let url = h.client().current_url().await.unwrap();
    assert_eq!(url.origin().ascii_serialization(), h.origin, "back in the app: {url}");
    assert_eq!(url.path(), "/done", "at return_to: {url}");
    let keys: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert!(
        keys.iter().all(|k| k == "patchbay_status" || k == "connection_id" || k == "error"),
        "no code, state or token: {url}"
    );
    result
}

async fn assert_active(h: &Harness, id: &str, provider: &str, account_email: &str) -> Value {
    let shown = h.connection(id).await;
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(shown["provider"], provider, "{shown}");
    assert_eq!(shown["account_email"], account_email, "{shown}");
    shown
}

#[tokio::test]
async fn google_redirect_mode_connects_and_the_app_shows_the_connection() {
    with_harness("v2", |h| async move {
        let result = redirect_connect(&h, "google", Some("g-sub-1")).await;
        let id = connected_id(&result);
        assert_active(&h, &id, "google", "alice@gmail.test").await;
        assert_eq!(h.w.google.token_calls("authorization_code"), 1);
    })
    .await;
}

#[tokio::test]
async fn monday_v2_redirect_mode_connects() {
    with_harness("v2", |h| async move {
        let result = redirect_connect(&h, "monday", Some("501")).await;
        let id = connected_id(&result);
        let shown = assert_active(&h, &id, "monday", "alice@acme.test").await;
        assert_eq!(shown["provider_account_id"], "1001");
    })
    .await;
}

#[tokio::test]
async fn monday_legacy_redirect_mode_connects() {
    with_harness("legacy", |h| async move {
        let result = redirect_connect(&h, "monday", Some("501")).await;
        let id = connected_id(&result);
        let shown = assert_active(&h, &id, "monday", "alice@acme.test").await;
        assert_eq!(shown["provider_account_id"], "1001");
    })
    .await;
}

#[tokio::test]
async fn a_denial_at_the_consent_page_shows_access_denied_and_stores_nothing() {
    with_harness("v2", |h| async move {
        h.open_app("google", "redirect").await;
        h.click_connect().await;
        h.continue_to("Google").await;
        h.consent("deny", None).await;
        assert_eq!(h.result().await, "error:access_denied", "{}", h.page_dump().await);
        assert_eq!(h.connection_count().await, 0, "nothing stored");
        assert_eq!(h.w.google.token_calls("authorization_code"), 0, "no code was exchanged");
    })
    .await;
}

/// Clicks Connect in popup mode, continues on Patchbay's page and consents in the popup (checking whether it still has its
/// opener there) and returns to the app's window.
async fn popup_connect(h: &Harness, account: &str, severed: bool) {
    h.open_app("google", "popup").await;
    let main = h.client().window().await.unwrap();
    h.click_connect().await;
    let popup = h.new_window(&main).await;
    h.client().switch_to_window(popup).await.unwrap();
    h.continue_to("Google").await;
    let button = h.find_within("approve").await;
    h.find_within("user").await.select_by_value(account).await.unwrap();
    let has_opener = h.client().execute("return window.opener !== null", vec![]).await.unwrap();
    assert_eq!(has_opener, json!(!severed), "window.opener on the consent page\n{}", h.page_dump().await);
    // The result page closes the popup at once, possibly while the click is still being
    // reported: an error here is judged by what the app shows below.
    if let Err(e) = button.click().await {
        println!("click in the popup reported: {e}");
    }
    h.client().switch_to_window(main).await.unwrap();
}

#[tokio::test]
async fn google_popup_mode_delivers_the_result_by_post_message_at_the_exact_origin() {
    with_harness("v2", |h| async move {
        popup_connect(&h, "g-sub-1", false).await;
        let result = h.result().await;
        let id = connected_id(&result);
        // The poll may land first (both race for `#result`); the message must still arrive.
        let deadline = Instant::now() + WAIT;
        let pb = loop {
            let pb = h.pb().await;
            if !pb["viaMessage"].is_null() || Instant::now() >= deadline {
                break pb;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(pb["viaMessage"], result, "the popup's postMessage reached the app from Patchbay's origin: {pb}");
        assert_eq!(pb["foreignOrigins"], json!([]), "no message from any other origin: {pb}");
        assert_active(&h, &id, "google", "alice@gmail.test").await;
    })
    .await;
}

#[tokio::test]
async fn a_popup_whose_opener_is_severed_falls_back_to_polling() {
    with_harness("v2", |h| async move {
        h.w.google.sever_opener(true);
        popup_connect(&h, "g-sub-1", true).await;
        let result = h.result().await;
        let id = connected_id(&result);
        let pb = h.pb().await;
        assert_eq!(pb["viaPoll"], result, "the outcome came from polling: {pb}");
        assert!(pb["viaMessage"].is_null(), "no postMessage can reach a severed opener: {pb}");
        assert_active(&h, &id, "google", "alice@gmail.test").await;
    })
    .await;
}

#[tokio::test]
async fn two_connects_started_at_once_in_two_tabs_each_finish_their_own_flow() {
    with_harness("v2", |h| async move {
        let c = h.client();
        // Tab 1 goes as far as Google's consent page and waits there.
        h.open_app("google", "redirect").await;
        let first = c.window().await.unwrap();
        h.click_connect().await;
        h.continue_to("Google").await;
        h.find_within("approve").await;
        // Tab 2 starts its own connect, and finishes first, as another Google account.
        let second = c.new_window(true).await.unwrap().handle;
        c.switch_to_window(second.clone()).await.unwrap();
        h.open_app("google", "redirect").await;
        h.click_connect().await;
        h.continue_to("Google").await;
        h.consent("approve", Some("g-sub-2")).await;
        let second_id = connected_id(&h.result().await);
        // Back in tab 1: its state, PKCE verifier and cookie are still its own.
        c.switch_to_window(first).await.unwrap();
        h.consent("approve", Some("g-sub-1")).await;
        let first_id = connected_id(&h.result().await);

        assert_ne!(first_id, second_id, "two connections");
        assert_active(&h, &first_id, "google", "alice@gmail.test").await;
        assert_active(&h, &second_id, "google", "bob@gmail.test").await;
        assert_eq!(h.connection_count().await, 2);
        assert_eq!(h.w.google.token_calls("authorization_code"), 2);
    })
    .await;
}
