//! Patchbay in this test process (`patchbay_api::Application` on loopback, SQLite in a temp
//! directory), wired to the provider fakes. The browser drives it from outside over HTTP as it
//! would a deployment; the test reads the fakes' counters and asks the API what was stored.
//!
//! A trimmed copy of the spawner in `crates/api/tests/it/helpers.rs`: that one cannot be shared
//! through `patchbay-testkit`, which must not depend on `patchbay-api`.

use clap::Parser;
use patchbay_api::cli::Cli;
use patchbay_api::config::Settings;
use patchbay_api::Application;
use patchbay_testkit::app::{free_port, JWT_SECRET, VAULT_KEYS};
use patchbay_testkit::fakes::{FakeGoogle, FakeMonday, Providers};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running Patchbay.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`, also its public URL.
    pub base: String,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Patchbay and the fakes it talks to.
pub struct World {
    pub app: TestApp,
    pub google: FakeGoogle,
    /// Kept running for Patchbay; no test reads Monday's counters so far.
    _monday: FakeMonday,
}

/// Patchbay on SQLite wired to fresh Google and Monday fakes (`monday_flow`: `v2` or `legacy`),
/// with `extra_args` appended to its flags.
pub async fn world(monday_flow: &str, extra_args: &[&str]) -> World {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let Providers { google, monday, args, mut env } = Providers::start(&base, monday_flow).await;
    env.insert("PATCHBAY_AUTH_JWT_SECRET".into(), JWT_SECRET.into());
    env.insert("PATCHBAY_VAULT_KEYS".into(), VAULT_KEYS.into());
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut argv = vec![
        "patchbay",
        "--data-dir",
        &data_dir,
        "--listen",
        &listen,
        "--public-url",
        &base,
        "--metrics-listen",
        "127.0.0.1:0",
        "--log",
        "warn",
    ];
    argv.extend(args.iter().map(String::as_str));
    argv.extend_from_slice(extra_args);
    let cli = Cli::try_parse_from(argv).expect("test arguments parse");
    let settings = Settings::load(&cli.config, &env).expect("test settings are valid");
    let app = Application::build(settings).await.expect("the app builds").without_background_jobs();
    assert_eq!(app.port(), port, "Patchbay listens where its public URL says");
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let app = TestApp { base, client, shutdown: Some(tx), handle: Some(handle), _dir: dir };
    World { app, google, _monday: monday }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get_as(&self, path: &str, bearer: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(bearer).send().await.expect("request reaches the app")
    }

    pub async fn post_as(&self, path: &str, bearer: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(bearer).json(body).send().await.expect("request reaches the app")
    }

    /// Asks the app to stop and waits for it to finish cleanly.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("the app task does not panic").expect("the app stops cleanly");
        }
    }
}
