//! Spawning a real Patchbay on port 0, with a fresh SQLite directory or Postgres schema.

use clap::Parser;
use patchbay_api::cli::Cli;
use patchbay_api::config::Settings;
use patchbay_api::Application;
use patchbay_store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Shared with the end-to-end suites (the top-level `tests/` package) through the testkit.
pub use patchbay_testkit::app::{free_port, sign, token, JWT_SECRET, VAULT_KEYS};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A running app and what tests need to talk to it.
pub struct TestApp {
    pub base: String,
    pub metrics: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub state: patchbay_api::state::AppState,
    /// The app's job worker; tests step it with [`TestApp::run_jobs`].
    pub worker: patchbay_store::Worker,
    pub data_dir: std::path::PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Builds settings the way the binary does: flags parsed by clap, secrets from a map.
pub fn settings(args: &[&str], env: &HashMap<String, String>) -> Result<Settings, patchbay_api::config::ConfigError> {
    let mut argv = vec!["patchbay"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).expect("test arguments parse");
    Settings::load(&cli.config, env)
}

/// An app on SQLite with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn(Db::Sqlite, &[], HashMap::new()).await.expect("SQLite is always available")
}

/// An app on `db` with extra flags and secret variables; `None` when Postgres is skipped.
pub async fn spawn(db: Db, args: &[&str], env: HashMap<String, String>) -> Option<TestApp> {
    spawn_on(free_port(), db, args, env).await
}

/// Like [`spawn`], on a chosen port (so `PATCHBAY_PUBLIC_URL` and provider redirect URIs can be
/// known before the app starts).
pub async fn spawn_on(port: u16, db: Db, args: &[&str], env: HashMap<String, String>) -> Option<TestApp> {
    spawn_clocked(port, db, args, env, Arc::new(patchbay_store::SystemClock)).await
}

/// Like [`spawn_on`], with the clock the app's schedulers read (a test moves it by hand).
pub async fn spawn_clocked(
    port: u16,
    db: Db,
    args: &[&str],
    env: HashMap<String, String>,
    clock: Arc<dyn patchbay_store::Clock>,
) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    let mut env = env;
    env.entry("PATCHBAY_AUTH_JWT_SECRET".into()).or_insert_with(|| JWT_SECRET.into());
    env.entry("PATCHBAY_VAULT_KEYS".into()).or_insert_with(|| VAULT_KEYS.into());
    if db == Db::Postgres {
        env.insert("PATCHBAY_DATABASE_URL".into(), patchbay_testkit::db::postgres_url().await?);
    }
    let listen = format!("127.0.0.1:{port}");
    let public = format!("http://127.0.0.1:{port}");
    let mut all = vec![
        "--data-dir",
        &data_dir,
        "--listen",
        &listen,
        "--public-url",
        &public,
        "--metrics-listen",
        "127.0.0.1:0",
        "--log",
        "warn",
    ];
    all.extend_from_slice(args);
    let settings = settings(&all, &env).expect("test settings are valid");
    // Jobs run when a test steps the worker (`run_jobs`), never behind its back.
    let app = Application::build_with_clock(settings, clock).await.expect("the app builds").without_background_jobs();
    let worker = app.worker().clone();
    let base = format!("http://127.0.0.1:{}", app.port());
    let metrics = format!("http://127.0.0.1:{}", app.metrics_port().unwrap());
    let store = app.state().store.clone();
    let state = app.state().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Some(TestApp {
        base,
        metrics,
        client,
        store,
        state,
        worker,
        data_dir: dir.path().to_path_buf(),
        shutdown: Some(tx),
        handle: Some(handle),
        _dir: dir,
    })
}

impl TestApp {
    /// Runs every due job to completion (each step claims one), and returns how many ran.
    pub async fn run_jobs(&self) -> usize {
        let mut ran = 0;
        while let patchbay_store::Outcome::Done { .. } =
            self.worker.try_execute_next().await.expect("the store answers")
        {
            ran += 1;
            assert!(ran < 1_000, "the job queue drains");
        }
        ran
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request reaches the app")
    }

    pub async fn get_as(&self, path: &str, bearer: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(bearer).send().await.expect("request reaches the app")
    }

    /// Asks the app to stop and waits for `run_until_stopped` to return.
    pub async fn stop(mut self) {
        self.begin_stop();
        self.wait_stopped().await;
    }

    pub fn begin_stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn wait_stopped(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.await.expect("the app task does not panic").expect("the app stops cleanly");
        }
    }
}

/// Runs `body` on SQLite and on Postgres (skipped only when the test script says Postgres is
/// unavailable).
#[macro_export]
macro_rules! both_stores {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                $body($crate::helpers::Db::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                $body($crate::helpers::Db::Postgres).await
            }
        }
    };
}

/// The JSON body of a response.
pub async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}
