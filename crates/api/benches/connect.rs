//! The Connect benchmarks: callback throughput and the refresh storm, against the provider
//! fakes, with a real Patchbay `Application` in this process. Run it with
//!
//! ```text
//! cargo bench -p patchbay-api --bench connect -- [--smoke] [--store postgres|sqlite|both]
//! ```
//!
//! (or `bench/run.sh --connect`); `--help` says what it measures. Targets (the issue's):
//! callbacks ≥ 500/s on Postgres; a storm of 10,000 connections whose access tokens expire
//! together makes exactly 10,000 refresh calls and finishes before the tokens expire. Missing a
//! target is reported, not fatal: the exit status is non-zero only when something did not work
//! (a callback that did not connect, a wrong count, a store that could not be opened).
//! All traffic goes to 127.0.0.1.

use anyhow::{anyhow, bail, ensure, Context};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use clap::Parser as _;
use futures::StreamExt;
use jsonwebtoken::{encode, EncodingKey, Header};
use patchbay_api::cli::Cli;
use patchbay_api::config::{LogFormat, Settings};
use patchbay_api::Application;
use patchbay_oauth::ProviderId;
use patchbay_store::{ConnectionId, ConnectionStatus, Page, Store, TenantScope};
use patchbay_testkit::fakes::FakeGoogle;
use rand::RngCore as _;
use secrecy::ExposeSecret;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use url::Url;

const USAGE: &str = "\
Usage: cargo bench -p patchbay-api --bench connect -- [OPTIONS]

The Connect benchmarks, on an in-process Patchbay wired to the fake Google (127.0.0.1 only):
  callbacks      N connect flows are prepared up to the provider's redirect (session,
                 GET+POST /connect/{token}, headless consent at the fake), spread over 50 tenants
                 with one Google account each; then all N callbacks are fired with concurrency 32
                 and only that phase is timed: callbacks/s, p50, p99. Each callback exchanges the
                 code and fetches userinfo at the fake (two loopback calls), seals and saves.
                 Every answer must be the 303 `connected` and the store must hold N connections.
  refresh storm  M more real connects (100 tenants); then, on a second instance that runs no
                 background sweep, every token set is resealed to expire at the same instant,
                 one second inside the refresh margin (so all M are due at once), and
                 Tokens::fresh_access_token is called for all M with concurrency 64. The fake must
                 see exactly M refresh calls, each refresh token presented once; a second pass
                 must make none; the storm must end before the common expiry (margin reported).
Targets: callbacks >= 500/s on Postgres; storm: exactly M refresh calls, ends before expiry.

Options:
  --smoke                 N=200, M=500 (what CI runs)
  --store S               postgres, sqlite or both (default postgres)
  --callbacks N           default 2000
  --refreshes M           default 10000
  --concurrency C         callback concurrency (default 32)
  --refresh-concurrency C storm concurrency (default 64)
  --out FILE              append the results here (default bench/out/connect-<date>[-smoke].md)
  -h, --help              this text

Postgres: a fresh schema in PATCHBAY_BENCH_DATABASE_URL, else PATCHBAY_TEST_DATABASE_URL, else
postgres://postgres@127.0.0.1:5432/postgres; the schema is dropped at the end.
Exit status: 0 when everything worked (targets missed or not), 1 when something did not work,
2 for bad arguments.";

const APP: &str = "https://app.example";
const CLIENT_ID: &str = "bench-google-client";
const CLIENT_SECRET: &str = "bench-google-secret";
const CALLBACK_TENANTS: usize = 50;
const STORM_TENANTS: usize = 100;
const PREPARE_CONCURRENCY: usize = 32;
const TARGET_CALLBACKS_PER_SECOND: f64 = 500.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    Postgres,
    Sqlite,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            StoreKind::Postgres => "Postgres",
            StoreKind::Sqlite => "SQLite",
        }
    }
}

#[derive(Debug)]
struct Options {
    smoke: bool,
    stores: Vec<StoreKind>,
    callbacks: usize,
    refreshes: usize,
    concurrency: usize,
    refresh_concurrency: usize,
    out: Option<PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut smoke = false;
    let mut stores = vec![StoreKind::Postgres];
    let (mut callbacks, mut refreshes) = (None, None);
    let (mut concurrency, mut refresh_concurrency) = (32, 64);
    let mut out = None;
    let mut args = std::env::args().skip(1);
    let number = |name: &str, value: Option<String>| -> Result<usize, String> {
        let value = value.ok_or_else(|| format!("{name} needs a value"))?;
        match value.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{name} must be a positive whole number, not '{value}'")),
        }
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--smoke" => smoke = true,
            "--store" => {
                stores = match args.next().as_deref() {
                    Some("postgres") => vec![StoreKind::Postgres],
                    Some("sqlite") => vec![StoreKind::Sqlite],
                    Some("both") => vec![StoreKind::Postgres, StoreKind::Sqlite],
                    other => return Err(format!("--store must be postgres, sqlite or both, not {other:?}")),
                }
            }
            "--callbacks" => callbacks = Some(number("--callbacks", args.next())?),
            "--refreshes" => refreshes = Some(number("--refreshes", args.next())?),
            "--concurrency" => concurrency = number("--concurrency", args.next())?,
            "--refresh-concurrency" => refresh_concurrency = number("--refresh-concurrency", args.next())?,
            "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a file")?)),
            other => return Err(format!("unknown argument '{other}' (see --help)")),
        }
    }
    let (default_callbacks, default_refreshes) = if smoke { (200, 500) } else { (2000, 10_000) };
    Ok(Options {
        smoke,
        stores,
        callbacks: callbacks.unwrap_or(default_callbacks),
        refreshes: refreshes.unwrap_or(default_refreshes),
        concurrency,
        refresh_concurrency,
        out,
    })
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    // The testkit creates the throwaway schema in PATCHBAY_TEST_DATABASE_URL; the benchmark's
    // own variable wins. (Set before any thread starts.)
    if let Ok(url) = std::env::var("PATCHBAY_BENCH_DATABASE_URL") {
        std::env::set_var("PATCHBAY_TEST_DATABASE_URL", url);
    }
    patchbay_api::telemetry::init("warn", LogFormat::Pretty);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let load_before = load_average();
    let mut results = Vec::new();
    let mut failed = false;
    for &store in &options.stores {
        say(&format!(
            "{}: {} callbacks (concurrency {}), refresh storm of {} (concurrency {})",
            store.name(),
            options.callbacks,
            options.concurrency,
            options.refreshes,
            options.refresh_concurrency
        ));
        match runtime.block_on(run(store, &options)) {
            Ok(result) => results.push(result),
            Err(e) => {
                eprintln!("==> ERROR: {}: {e:#}", store.name());
                failed = true;
                results.push(StoreResult {
                    store: Some(store),
                    error: Some(format!("{e:#}")),
                    ..StoreResult::default()
                });
            }
        }
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    let report = render(&options, &results, &load_before, &load_average());
    println!("{report}");
    let out = options.out.clone().unwrap_or_else(|| default_out(options.smoke));
    if let Err(e) = append(&out, &report) {
        eprintln!("==> ERROR: could not write {}: {e}", out.display());
        failed = true;
    } else {
        say(&format!("appended to {}", out.display()));
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn say(message: &str) {
    eprintln!("==> {message}");
}

// ---------------------------------------------------------------------------------------------
// The world: the fake Google and a Patchbay serving on a known port.

/// Everything one store's run needs.
struct World {
    google: FakeGoogle,
    client: reqwest::Client,
    base: String,
    jwt_secret: String,
    settings: Settings,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

/// A serving application.
struct Running {
    state: patchbay_api::state::AppState,
    shutdown: oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn random_secret(bytes: usize) -> Vec<u8> {
    let mut key = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut key);
    key
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl World {
    async fn start(store: StoreKind, database_url: Option<&str>) -> anyhow::Result<World> {
        let dir = tempfile::tempdir().context("creating a temporary data directory")?;
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let google = FakeGoogle::start().await;
        google.register_client(CLIENT_ID, CLIENT_SECRET, &[&format!("{base}/oauth/google/callback")]);
        let jwt_secret = hex::encode(random_secret(32));
        let vault_keys = format!("1:{}", base64::engine::general_purpose::STANDARD.encode(random_secret(32)));
        let mut env: HashMap<String, String> = [
            ("PATCHBAY_GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_string()),
            ("PATCHBAY_AUTH_JWT_SECRET", jwt_secret.clone()),
            ("PATCHBAY_VAULT_KEYS", vault_keys),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if store == StoreKind::Postgres {
            let url = database_url.ok_or_else(|| anyhow!("no Postgres URL"))?;
            env.insert("PATCHBAY_DATABASE_URL".into(), url.to_string());
        }
        let data_dir = dir.path().to_str().ok_or_else(|| anyhow!("a non-UTF-8 temp dir"))?.to_string();
        let listen = format!("127.0.0.1:{port}");
        let urls =
            [google.auth_url(), google.token_url(), google.revoke_url(), google.userinfo_url()].map(|u| u.to_string());
        // Every inbound limiter raised far above what this machine can send.
        let unlimited = "1000000";
        let args = [
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
            "--return-to-origins",
            APP,
            "--google-client-id",
            CLIENT_ID,
            "--google-auth-url",
            &urls[0],
            "--google-token-url",
            &urls[1],
            "--google-revoke-url",
            &urls[2],
            "--google-userinfo-url",
            &urls[3],
            "--v1-per-second",
            unlimited,
            "--v1-burst",
            unlimited,
            "--connect-per-second",
            unlimited,
            "--connect-burst",
            unlimited,
            "--principal-per-second",
            unlimited,
            "--principal-burst",
            unlimited,
        ];
        let cli = Cli::try_parse_from(args).context("parsing the benchmark's settings")?;
        let settings = Settings::load(&cli.config, &env).map_err(|e| anyhow!("invalid settings: {e}"))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(256)
            .build()
            .context("building the HTTP client")?;
        let mut world = World { google, client, base, jwt_secret, settings, running: None, _dir: dir };
        world.serve().await?;
        Ok(world)
    }

    /// Builds and runs the application on the chosen port.
    async fn serve(&mut self) -> anyhow::Result<()> {
        let app = Application::build(self.settings.clone()).await.context("building the application")?;
        let state = app.state().clone();
        let (shutdown, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        self.running = Some(Running { state, shutdown, handle });
        let ready = self.client.get(self.url("/readyz")).send().await.context("GET /readyz")?;
        ensure!(ready.status().is_success(), "GET /readyz answered {}", ready.status());
        Ok(())
    }

    async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(running) = self.running.take() {
            let _ = running.shutdown.send(());
            running.handle.await.context("the app task panicked")?.context("the app did not stop cleanly")?;
        }
        Ok(())
    }

    fn state(&self) -> anyhow::Result<&patchbay_api::state::AppState> {
        self.running.as_ref().map(|r| &r.state).ok_or_else(|| anyhow!("the app is not running"))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A user token for `sub` (each subject is its own tenant with the default settings).
    fn bearer(&self, sub: &str) -> String {
        let now = Utc::now().timestamp();
        let claims = serde_json::json!({"sub": sub, "iss": "https://idp.bench", "iat": now, "exp": now + 3 * 3600});
        encode(&Header::default(), &claims, &EncodingKey::from_secret(self.jwt_secret.as_bytes()))
            .expect("HS256 signing cannot fail")
    }

    /// A connect walked up to the provider's redirect back: the callback URL (code, state, iss)
    /// and the browser's binding cookie.
    async fn prepare(&self, bearer: &str, google_account: &str) -> anyhow::Result<Flow> {
        let body = serde_json::json!({"provider": "google", "mode": "redirect", "return_to": format!("{APP}/done")});
        let created = self.client.post(self.url("/v1/connect-sessions")).bearer_auth(bearer).json(&body).send().await?;
        ensure!(created.status() == 201, "POST /v1/connect-sessions answered {}", created.status());
        let created: serde_json::Value = created.json().await?;
        let connect_url = created["connect_url"].as_str().ok_or_else(|| anyhow!("no connect_url"))?.to_string();
        let page = self.client.get(&connect_url).send().await?;
        ensure!(page.status() == 200, "GET /connect/{{token}} answered {}", page.status());
        let submitted = self.client.post(&connect_url).send().await?;
        ensure!(submitted.status() == 303, "POST /connect/{{token}} answered {}", submitted.status());
        let header = |name: &str| -> anyhow::Result<String> {
            Ok(submitted.headers().get(name).ok_or_else(|| anyhow!("no {name} header"))?.to_str()?.to_string())
        };
        let authorize = Url::parse(&header("location")?)?;
        let cookie = header("set-cookie")?.split(';').next().unwrap_or_default().to_string();
        let callback = self.google.authorize_headless(&authorize, google_account);
        Ok(Flow { callback, cookie })
    }

    /// Prepares one flow per Google account, accounts spread round-robin over `tenants` users.
    async fn prepare_many(&self, prefix: &str, count: usize, tenants: usize) -> anyhow::Result<Vec<Flow>> {
        let bearers: Vec<String> =
            (0..tenants.min(count)).map(|t| self.bearer(&format!("{prefix}-user-{t}"))).collect();
        for i in 0..count {
            self.google.add_user(&format!("{prefix}-g-{i}"), &format!("{prefix}-{i}@gmail.test"));
        }
        let flows: Vec<anyhow::Result<Flow>> = futures::stream::iter(0..count)
            .map(|i| {
                let bearer = &bearers[i % bearers.len()];
                async move { self.prepare(bearer, &format!("{prefix}-g-{i}")).await }
            })
            .buffer_unordered(PREPARE_CONCURRENCY)
            .collect()
            .await;
        flows.into_iter().collect()
    }

    /// Fires every callback with `concurrency` in flight; returns the wall time, each latency and
    /// the connection ids. Any answer other than the 303 `connected` is an error.
    async fn fire(&self, flows: Vec<Flow>, concurrency: usize) -> anyhow::Result<Fired> {
        let client = &self.client;
        let started = Instant::now();
        let answers: Vec<anyhow::Result<(Duration, String)>> = futures::stream::iter(flows)
            .map(|flow| async move {
                let sent = Instant::now();
                let response = client.get(flow.callback.as_str()).header("cookie", &flow.cookie).send().await?;
                let latency = sent.elapsed();
                connected(&response).map(|id| (latency, id))
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let wall = started.elapsed();
        let mut latencies = Vec::with_capacity(answers.len());
        let mut ids = Vec::with_capacity(answers.len());
        let mut errors: HashMap<String, usize> = HashMap::new();
        for answer in answers {
            match answer {
                Ok((latency, id)) => {
                    latencies.push(latency);
                    ids.push(id);
                }
                Err(e) => *errors.entry(format!("{e:#}")).or_default() += 1,
            }
        }
        if !errors.is_empty() {
            bail!("{} callbacks did not connect: {errors:?}", errors.values().sum::<usize>());
        }
        Ok(Fired { wall, latencies, ids })
    }
}

struct Flow {
    callback: Url,
    cookie: String,
}

struct Fired {
    wall: Duration,
    latencies: Vec<Duration>,
    ids: Vec<String>,
}

/// The connection id of a 303 `connected` back to the app, or why the answer is not one.
fn connected(response: &reqwest::Response) -> anyhow::Result<String> {
    ensure!(response.status() == 303, "the callback answered {}", response.status());
    let location = response.headers().get("location").ok_or_else(|| anyhow!("a 303 without location"))?.to_str()?;
    let location = Url::parse(location)?;
    ensure!(location.as_str().starts_with(&format!("{APP}/done")), "redirected elsewhere: {location}");
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    match (query.get("patchbay_status").map(String::as_str), query.get("connection_id")) {
        (Some("connected"), Some(id)) => Ok(id.clone()),
        _ => bail!("not connected: {}", query.get("error").map_or("(no error code)", String::as_str)),
    }
}

/// Every connection in the store, with its tenant.
async fn all_connections(store: &Arc<dyn Store>) -> anyhow::Result<Vec<(TenantScope, ConnectionId, ConnectionStatus)>> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_all_connections(Page::new(Some(Page::MAX_LIMIT), after)).await?;
        all.extend(page.items.iter().map(|c| (TenantScope::new(c.tenant_id), c.id, c.status)));
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => return Ok(all),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One store's run.

#[derive(Default)]
struct StoreResult {
    store: Option<StoreKind>,
    error: Option<String>,
    callbacks: Option<CallbackResult>,
    storm: Option<StormResult>,
}

impl StoreResult {
    fn store_name(&self) -> &'static str {
        self.store.map_or("?", StoreKind::name)
    }
}

struct CallbackResult {
    count: usize,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    stored: usize,
}

struct StormResult {
    count: usize,
    setup: Duration,
    setup_callbacks_per_second: f64,
    reseal: Duration,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    refresh_calls: usize,
    tokens_presented_once: bool,
    second_pass_refresh_calls: usize,
    /// Common expiry minus the storm's start and end.
    lifetime_at_start: chrono::Duration,
    margin_at_end: chrono::Duration,
    refresh_margin: Duration,
}

async fn run(store: StoreKind, options: &Options) -> anyhow::Result<StoreResult> {
    let database_url = match store {
        StoreKind::Postgres => Some(postgres_schema().await?),
        StoreKind::Sqlite => None,
    };
    let outcome = run_on(store, database_url.as_deref(), options).await;
    if let Some(url) = &database_url {
        if let Err(e) = drop_schema(url).await {
            say(&format!("could not drop the benchmark schema: {e:#}"));
        }
    }
    let (callbacks, storm) = outcome?;
    Ok(StoreResult { store: Some(store), error: None, callbacks: Some(callbacks), storm: Some(storm) })
}

async fn run_on(
    store: StoreKind,
    database_url: Option<&str>,
    options: &Options,
) -> anyhow::Result<(CallbackResult, StormResult)> {
    let mut world = World::start(store, database_url).await?;
    let callbacks = callback_throughput(&world, options).await;
    let storm = match &callbacks {
        Ok(_) => refresh_storm(&mut world, options).await,
        Err(_) => Err(anyhow!("not run")),
    };
    world.stop().await?;
    Ok((callbacks.context("callback throughput")?, storm.context("refresh storm")?))
}

async fn callback_throughput(world: &World, options: &Options) -> anyhow::Result<CallbackResult> {
    let n = options.callbacks;
    let t = Instant::now();
    let flows = world.prepare_many("cb", n, CALLBACK_TENANTS).await.context("preparing the flows")?;
    say(&format!("prepared {n} flows in {:.1} s; firing the callbacks", t.elapsed().as_secs_f64()));
    let tokens_before = world.google.token_calls("authorization_code");
    let mut fired = world.fire(flows, options.concurrency).await?;
    let exchanges = world.google.token_calls("authorization_code") - tokens_before;
    ensure!(exchanges == n, "the fake saw {exchanges} code exchanges for {n} callbacks");
    let connections = all_connections(&world.state()?.store).await?;
    let active = connections.iter().filter(|c| c.2 == ConnectionStatus::Active).count();
    let distinct: HashSet<&String> = fired.ids.iter().collect();
    ensure!(
        connections.len() == n && active == n && distinct.len() == n,
        "the store holds {} connections ({active} active, {} distinct ids answered), expected {n}",
        connections.len(),
        distinct.len()
    );
    fired.latencies.sort();
    let result = CallbackResult {
        count: n,
        wall: fired.wall,
        p50: percentile(&fired.latencies, 0.50),
        p99: percentile(&fired.latencies, 0.99),
        max: fired.latencies.last().copied().unwrap_or_default(),
        stored: connections.len(),
    };
    say(&format!(
        "{n} callbacks in {:.2} s: {:.0}/s, p50 {}, p99 {}",
        result.wall.as_secs_f64(),
        n as f64 / result.wall.as_secs_f64(),
        ms(result.p50),
        ms(result.p99)
    ));
    Ok(result)
}

async fn refresh_storm(world: &mut World, options: &Options) -> anyhow::Result<StormResult> {
    let m = options.refreshes;
    // Real connects, with Google's usual hour-long access tokens: none is due yet, so the
    // serving app's periodic refresh sweep leaves them alone.
    let t = Instant::now();
    let flows = world.prepare_many("st", m, STORM_TENANTS).await.context("preparing the storm's connects")?;
    let fired = world.fire(flows, options.concurrency).await.context("the storm's connects")?;
    let setup = t.elapsed();
    let setup_callbacks_per_second = m as f64 / fired.wall.as_secs_f64();
    say(&format!("{m} connections for the storm in {:.1} s", setup.as_secs_f64()));
    let ids: HashSet<ConnectionId> = fired
        .ids
        .iter()
        .map(|id| id.parse().map_err(|_| anyhow!("a malformed connection id {id}")))
        .collect::<Result<_, _>>()?;

    // The storm runs on a second instance over the same database that is built but not run: no
    // background refresh sweep can take part, so every refresh below is the storm's own.
    world.stop().await?;
    let mut settings = world.settings.clone();
    settings.http.listen = "127.0.0.1:0".parse()?;
    settings.http.metrics_listen = None;
    let instance = Application::build(settings).await.context("building the storm's instance")?;
    let state = instance.state().clone();
    let store = state.store.clone();
    let tokens = state.tokens.clone();
    let targets: Vec<(TenantScope, ConnectionId)> =
        all_connections(&store).await?.into_iter().filter(|c| ids.contains(&c.1)).map(|c| (c.0, c.1)).collect();
    ensure!(targets.len() == m, "found {} of the storm's {m} connections in the store", targets.len());

    // Every token set now expires at the same instant, one second inside the refresh margin:
    // all M are due together, with the least time left that makes them due.
    let refresh_margin = state
        .settings
        .providers
        .registry
        .get(ProviderId::Google)
        .map(|p| p.refresh_margin)
        .ok_or_else(|| anyhow!("Google is not configured"))?;
    let reseal_started = Instant::now();
    let expires_at = Utc::now() + chrono::Duration::from_std(refresh_margin)? - chrono::Duration::seconds(1);
    let refresh_tokens: Vec<anyhow::Result<String>> = futures::stream::iter(targets.iter().copied())
        .map(|(scope, id)| {
            let (store, tokens) = (store.clone(), tokens.clone());
            async move {
                let credential = store.get_credential(scope, id).await?;
                let mut set = tokens.open(&credential)?;
                set.expires_at = Some(expires_at);
                let refresh_token = set
                    .refresh_token
                    .as_ref()
                    .ok_or_else(|| anyhow!("{id} has no refresh token"))?
                    .expose_secret()
                    .to_string();
                let sealed = tokens.seal(credential.tenant_id, id, credential.flow, &set);
                store.store_refreshed(id, credential.version, sealed, Utc::now()).await?;
                Ok(refresh_token)
            }
        })
        .buffer_unordered(PREPARE_CONCURRENCY)
        .collect()
        .await;
    let refresh_tokens: Vec<String> = refresh_tokens.into_iter().collect::<anyhow::Result<_>>()?;
    let reseal = reseal_started.elapsed();

    // The storm. Refreshed tokens come back with the fake's default hour.
    let before = world.google.token_calls("refresh_token");
    let storm_start = Utc::now();
    let started = Instant::now();
    let outcomes: Vec<Result<Duration, String>> = futures::stream::iter(targets.iter().copied())
        .map(|(scope, id)| {
            let tokens = tokens.clone();
            async move {
                let sent = Instant::now();
                tokens.fresh_access_token(scope, id).await.map(|_| sent.elapsed()).map_err(|e| e.to_string())
            }
        })
        .buffer_unordered(options.refresh_concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    let storm_end = Utc::now();
    let refresh_calls = world.google.token_calls("refresh_token") - before;
    let mut latencies = Vec::with_capacity(m);
    let mut errors: HashMap<String, usize> = HashMap::new();
    for outcome in outcomes {
        match outcome {
            Ok(latency) => latencies.push(latency),
            Err(e) => *errors.entry(e).or_default() += 1,
        }
    }
    ensure!(errors.is_empty(), "{} calls got no fresh token: {errors:?}", errors.values().sum::<usize>());
    let tokens_presented_once = refresh_tokens.iter().all(|t| world.google.refresh_calls(t) == 1);

    // Nothing is left due: a second pass refreshes nothing.
    let second_pass: Vec<bool> = futures::stream::iter(targets.iter().copied())
        .map(|(scope, id)| {
            let tokens = tokens.clone();
            async move { tokens.fresh_access_token(scope, id).await.is_ok() }
        })
        .buffer_unordered(options.refresh_concurrency)
        .collect()
        .await;
    ensure!(second_pass.iter().all(|ok| *ok), "the second pass got errors");
    let second_pass_refresh_calls = world.google.token_calls("refresh_token") - before - refresh_calls;
    drop(instance);
    store.close().await;
    ensure!(refresh_calls == m, "the fake saw {refresh_calls} refresh calls for {m} connections");
    ensure!(tokens_presented_once, "some refresh token was presented more than once");
    ensure!(second_pass_refresh_calls == 0, "the second pass made {second_pass_refresh_calls} refresh calls");

    latencies.sort();
    let result = StormResult {
        count: m,
        setup,
        setup_callbacks_per_second,
        reseal,
        wall,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        refresh_calls,
        tokens_presented_once,
        second_pass_refresh_calls,
        lifetime_at_start: expires_at - storm_start,
        margin_at_end: expires_at - storm_end,
        refresh_margin,
    };
    say(&format!(
        "storm: {m} refreshes in {:.2} s ({:.0}/s), {refresh_calls} refresh calls, {:.1} s before expiry",
        wall.as_secs_f64(),
        m as f64 / wall.as_secs_f64(),
        seconds(result.margin_at_end)
    ));
    Ok(result)
}

// ---------------------------------------------------------------------------------------------
// Postgres: a throwaway schema.

async fn postgres_schema() -> anyhow::Result<String> {
    // The testkit panics with a clear message when Postgres cannot be reached; keep it an error.
    let url = tokio::spawn(patchbay_testkit::db::postgres_url())
        .await
        .map_err(|e| anyhow!("Postgres is unreachable: {}", panic_text(e)))?;
    url.ok_or_else(|| anyhow!("Postgres is skipped (PATCHBAY_TEST_POSTGRES=skip); use --store sqlite"))
}

fn panic_text(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into()),
        Err(e) => e.to_string(),
    }
}

async fn drop_schema(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let schema = url
        .rsplit_once("search_path%3D")
        .map(|(_, s)| s.split('&').next().unwrap_or(s).to_string())
        .filter(|s| s.starts_with("t_") && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .ok_or_else(|| anyhow!("no schema in the URL"))?;
    let mut connection = sqlx::PgConnection::connect(url).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut connection).await?;
    connection.close().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The report.

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn seconds(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "✓"
    } else {
        "✗"
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn render(options: &Options, results: &[StoreResult], load_before: &str, load_after: &str) -> String {
    let now: DateTime<chrono::Local> = chrono::Local::now();
    let mut out = String::new();
    let kind = if options.smoke { " (smoke)" } else { "" };
    let _ = writeln!(out, "## Connect benchmarks{kind}, {}", now.format("%Y-%m-%d %H:%M %Z"));
    let _ = writeln!(out);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let profile = if cfg!(debug_assertions) { "debug build" } else { "optimised build (bench profile)" };
    let _ = writeln!(
        out,
        "{cores} cores, load average {load_before} before / {load_after} after, {profile}{}. One process: \
         Patchbay, the fake Google and the load generator share the cores; {} callbacks with concurrency {}, \
         a storm of {} with concurrency {}.",
        git_revision().map(|r| format!(", commit {r}")).unwrap_or_default(),
        options.callbacks,
        options.concurrency,
        options.refreshes,
        options.refresh_concurrency
    );
    for result in results {
        let _ = writeln!(out);
        let _ = writeln!(out, "### {}", result.store_name());
        let _ = writeln!(out);
        if let Some(error) = &result.error {
            let _ = writeln!(out, "**Did not work:** {error}");
            continue;
        }
        let _ = writeln!(out, "| metric | measured | target | |");
        let _ = writeln!(out, "|---|---|---|---|");
        if let Some(c) = &result.callbacks {
            let rate = c.count as f64 / c.wall.as_secs_f64();
            let (target, check) = if result.store == Some(StoreKind::Postgres) {
                (format!("≥ {TARGET_CALLBACKS_PER_SECOND:.0}/s"), mark(rate >= TARGET_CALLBACKS_PER_SECOND))
            } else {
                (format!("(≥ {TARGET_CALLBACKS_PER_SECOND:.0}/s on Postgres)"), "")
            };
            let _ = writeln!(
                out,
                "| callbacks/s ({} callbacks in {:.2} s) | {rate:.0} | {target} | {check} |",
                thousands(c.count),
                c.wall.as_secs_f64()
            );
            let _ = writeln!(
                out,
                "| callback latency p50 / p99 / max | {} / {} / {} | | |",
                ms(c.p50),
                ms(c.p99),
                ms(c.max)
            );
            let _ = writeln!(
                out,
                "| callbacks answered 303 `connected`; connections stored | {0} / {0}; {1} | all; {0} | ✓ |",
                thousands(c.count),
                thousands(c.stored)
            );
        }
        if let Some(s) = &result.storm {
            let n = thousands(s.count);
            let _ = writeln!(
                out,
                "| storm: refresh calls at the fake | {} | exactly {n} | {} |",
                thousands(s.refresh_calls),
                mark(s.refresh_calls == s.count)
            );
            let _ = writeln!(
                out,
                "| storm: each refresh token presented once; second pass refreshes | {}; {} | yes; 0 | {} |",
                if s.tokens_presented_once { "yes" } else { "no" },
                s.second_pass_refresh_calls,
                mark(s.tokens_presented_once && s.second_pass_refresh_calls == 0)
            );
            let _ = writeln!(
                out,
                "| storm: wall time (all {n} due, common expiry {:.0} s after start) | {:.2} s | before expiry | {} |",
                seconds(s.lifetime_at_start),
                s.wall.as_secs_f64(),
                mark(s.margin_at_end > chrono::Duration::zero())
            );
            let _ = writeln!(
                out,
                "| storm: margin left at the end | {:.1} s | > 0 | {} |",
                seconds(s.margin_at_end),
                mark(s.margin_at_end > chrono::Duration::zero())
            );
            let _ = writeln!(out, "| storm: refreshes/s | {:.0} | | |", s.count as f64 / s.wall.as_secs_f64());
            let _ = writeln!(out, "| storm: fresh_access_token p50 / p99 | {} / {} | | |", ms(s.p50), ms(s.p99));
            let _ = writeln!(
                out,
                "| storm setup: {n} real connects; reseal | {:.1} s (callbacks {:.0}/s); {:.1} s | | |",
                s.setup.as_secs_f64(),
                s.setup_callbacks_per_second,
                s.reseal.as_secs_f64()
            );
            let _ = writeln!(
                out,
                "| refresh margin (tokens due this long before expiry) | {} s | | |",
                s.refresh_margin.as_secs()
            );
        }
    }
    out
}

fn git_revision() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn repo_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.ancestors().nth(2).unwrap_or(crate_dir).to_path_buf()
}

fn default_out(smoke: bool) -> PathBuf {
    let date = chrono::Local::now().format("%Y-%m-%d");
    let suffix = if smoke { "-smoke" } else { "" };
    repo_root().join("bench/out").join(format!("connect-{date}{suffix}.md"))
}

fn append(path: &Path, report: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(file, "{report}")
}
