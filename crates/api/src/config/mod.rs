//! Configuration: one clap struct whose non-secret fields are flags and environment variables,
//! secrets read only from the environment (or `<NAME>_FILE`), and the validation that turns
//! both into typed [`Settings`] before anything else runs.

mod args;
mod dev_secrets;
mod events_out;
mod retention;
mod secrets;
mod sync;
mod webhooks;

pub use args::{ConfigArgs, Environment, LogFormat};
pub use events_out::{EventsOutArgs, EventsOutSettings};
pub use patchbay_sync::SyncSettings;
pub use patchbay_token_vault::KeyRing;
pub use patchbay_webhooks::RetentionSettings;
pub use retention::RetentionArgs;
pub use secrets::{ProcessEnv, SecretSource};
pub use sync::SyncArgs;
pub use webhooks::{WebhookArgs, WebhookSettings};

use ipnet::IpNet;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// A configuration problem: names the variable and what is wrong, on one line.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self { variable, problem: problem.into() }
    }
}

/// Which storage backend a database URL names (the only place a scheme is interpreted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// The database to use. `Debug` never shows the URL (it may hold a password).
#[derive(Clone)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub backend: Backend,
    pub max_connections: u32,
    pub run_migrations: bool,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// How user JWTs are verified.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub jwt_secret: Option<SecretString>,
    pub jwks_url: Option<Url>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub tenant_claim: Option<String>,
    pub role_claim: String,
    pub admin_role: String,
    pub jwks_min_refetch: Duration,
    /// Cached JWKS keys are refetched after this long, even while in use.
    pub jwks_max_age: Duration,
    pub leeway_seconds: u64,
    pub admin_tokens: Vec<SecretString>,
    pub api_key_touch_interval: Duration,
}

/// One inbound rate limit: a sustained rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

/// Inbound request limits per route class and per authenticated principal.
#[derive(Clone, Copy, Debug)]
pub struct RateLimits {
    pub v1: RateLimit,
    pub connect: RateLimit,
    pub webhooks: RateLimit,
    pub principal: RateLimit,
}

/// HTTP server tunables.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub public_url: Url,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    pub cors_origins: Vec<String>,
    pub return_to_origins: Vec<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub rate_limits: RateLimits,
    pub readyz_cache: Duration,
    pub readyz_degraded_after: Duration,
    pub drain_delay: Duration,
    pub shutdown_timeout: Duration,
}

/// Everything validated, typed, ready to build the application from.
#[derive(Clone, Debug)]
pub struct Settings {
    pub environment: Environment,
    pub data_dir: PathBuf,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub vault_keys: KeyRing,
    pub log_filter: String,
    pub log_format: LogFormat,
    pub allow_private_endpoints: bool,
    /// `PATCHBAY_READ_CACHE_BYTES`: the record page cache's budget (0: off).
    pub read_cache_bytes: usize,
    pub worker_concurrency: usize,
    /// `PATCHBAY_WORKER_LEASE_SECONDS`.
    pub worker_lease: Duration,
    /// `PATCHBAY_WORKER_POLL_MS`.
    pub worker_poll: Duration,
    /// `PATCHBAY_APP_NAME`: the product name the connect page shows.
    pub app_name: String,
    pub providers: args::ProviderSettings,
    /// Sync scheduling, budgets and provider API roots.
    pub sync: SyncSettings,
    /// Webhook sources and the inbox.
    pub webhooks: WebhookSettings,
    /// Event endpoints' delivery loop.
    pub events_out: EventsOutSettings,
    /// Retention periods and the pruning sweep's pace.
    pub retention: RetentionSettings,
}

impl Settings {
    /// Validates `args` and the secret environment into settings. In development on SQLite,
    /// missing secrets are generated once into the data directory (with a warning); in
    /// production every such fallback is refused.
    pub fn load(args: &ConfigArgs, env: &dyn SecretSource) -> Result<Self, ConfigError> {
        args.validate(env)
    }
}
