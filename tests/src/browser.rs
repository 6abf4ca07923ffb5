//! A headless Chromium session through chromedriver, for the browser suites.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium` and
//! `chromium-driver`; `scripts/test.sh` installs them as root). With `PATCHBAY_BROWSER=skip`,
//! [`skipped`] says so and the tests return early.

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to show what a test waits for (results, consent buttons, popups).
pub const WAIT: Duration = Duration::from_secs(15);
/// How long chromedriver and Chromium may take to start (both compete with builds for 2 cores).
pub const STARTUP: Duration = Duration::from_secs(30);
/// Flags the machine needs (no sandbox as root, no network beyond loopback, nothing phoning home).
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Whether the browser tests are skipped on purpose (says so); panics when they should run but
/// Chromium or chromedriver is missing, so a broken machine never turns into silent passes.
pub fn skipped() -> bool {
    if std::env::var("PATCHBAY_BROWSER").is_ok_and(|v| v == "skip") {
        println!("skipped: browser tests (PATCHBAY_BROWSER=skip)");
        return true;
    }
    for binary in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(binary).exists(),
            "{binary} is missing: install Debian's chromium and chromium-driver (scripts/test.sh does, as root), \
             or set PATCHBAY_BROWSER=skip to skip the browser tests"
        );
    }
    false
}

/// A chromedriver child in its own process group; dropping it kills the group (chromedriver and
/// any Chromium it left behind).
struct Driver {
    child: tokio::process::Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // The group's id is chromedriver's pid (process_group(0) below).
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.start_kill();
    }
}

/// One Chromium session: its own chromedriver on a free loopback port and a fresh profile
/// directory, so no two sessions share cookies, storage or history.
pub struct Browser {
    pub client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").finish_non_exhaustive()
    }
}

impl Browser {
    pub async fn start() -> Browser {
        let port = patchbay_testkit::app::free_port();
        let child = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"));
        let driver = Driver { child };
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push("--window-size=1280,900".into());
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "timeouts": {"pageLoad": WAIT.as_millis() as u64, "script": WAIT.as_millis() as u64},
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        // One session request once chromedriver listens (it waits for Chromium itself); a retried
        // request could start a second Chromium on the same profile directory.
        let deadline = Instant::now() + STARTUP;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on port {port} within {STARTUP:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("no WebDriver session from chromedriver (Chromium at {CHROMIUM}): {e}"));
        Browser { client, _driver: driver, _profile: profile }
    }

    /// Waits (up to [`WAIT`]) for an element by id: pages may be navigating in between.
    pub async fn find(&self, id: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.client.find(Locator::Id(id)).await {
                return element;
            }
            if Instant::now() >= deadline {
                panic!("no #{id} within {WAIT:?}\n{}", self.page_dump().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (up to [`WAIT`]) until the element with this id has text, and returns the text.
    pub async fn text_of(&self, id: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.client.find(Locator::Id(id)).await {
                if let Ok(text) = element.text().await {
                    if !text.is_empty() {
                        return text;
                    }
                }
            }
            if Instant::now() >= deadline {
                panic!("#{id} had no text within {WAIT:?}\n{}", self.page_dump().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The current window's URL and source, for failure messages.
    pub async fn page_dump(&self) -> String {
        let c = &self.client;
        let url = c.current_url().await.map(|u| u.to_string()).unwrap_or_else(|e| format!("(no URL: {e})"));
        let source = c.source().await.unwrap_or_else(|e| format!("(no source: {e})"));
        format!("URL: {url}\nsource:\n{source}")
    }

    /// Ends the WebDriver session (Chromium quits); dropping the browser then stops chromedriver.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.clone().close()).await;
    }
}
