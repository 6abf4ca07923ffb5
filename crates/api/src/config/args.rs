//! The clap struct: every non-secret setting is a flag and an environment variable.

use super::dev_secrets::{self, DevSecret};
use super::secrets::SecretSource;
use super::*;
use clap::builder::BoolishValueParser;
use clap::ArgAction;
use patchbay_oauth::{MondayFlow, ProviderConfig, Registry};
use secrecy::ExposeSecret;

/// `development` allows generated secrets and http URLs; `production` refuses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Configuration shared by every command. Secrets (`PATCHBAY_DATABASE_URL`,
/// `PATCHBAY_VAULT_KEYS`, `PATCHBAY_AUTH_JWT_SECRET`, `PATCHBAY_ADMIN_TOKENS`, provider client and
/// signing secrets) are read only from the environment or `<NAME>_FILE`; see `.env.example`.
#[derive(clap::Args, Clone, Debug)]
pub struct ConfigArgs {
    /// Data directory: the SQLite database, development secrets and the lock file.
    #[arg(long, env = "PATCHBAY_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// `development` or `production` (production refuses every insecure fallback).
    #[arg(long = "env", env = "PATCHBAY_ENV", value_enum, default_value = "development", global = true)]
    pub environment: Environment,
    /// HTTP listen address [default: 127.0.0.1:8080, or 0.0.0.0:$PORT when PORT is set].
    #[arg(long, env = "PATCHBAY_LISTEN", global = true)]
    pub listen: Option<String>,
    /// External base URL, used for redirect URIs and webhook addresses.
    #[arg(long, env = "PATCHBAY_PUBLIC_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub public_url: String,
    /// Private listener for /metrics and the detailed /readyz (`off` disables it).
    #[arg(long, env = "PATCHBAY_METRICS_LISTEN", default_value = "127.0.0.1:9464", global = true)]
    pub metrics_listen: String,
    /// Log filter in EnvFilter syntax [default: $RUST_LOG, else info].
    #[arg(long, env = "PATCHBAY_LOG", global = true)]
    pub log: Option<String>,
    /// `json` or `pretty` [default: pretty in development, json in production].
    #[arg(long, env = "PATCHBAY_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,

    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub limits: RateLimitArgs,
    #[command(flatten)]
    pub providers: ProviderArgs,
    #[command(flatten)]
    pub sync: super::sync::SyncArgs,
    #[command(flatten)]
    pub webhooks: super::webhooks::WebhookArgs,
    #[command(flatten)]
    pub events_out: super::events_out::EventsOutArgs,
    #[command(flatten)]
    pub retention: super::retention::RetentionArgs,

    /// Maximum database connections (Postgres pool size; SQLite read connections).
    #[arg(long, env = "PATCHBAY_DB_MAX_CONNECTIONS", default_value_t = 10, global = true)]
    pub db_max_connections: u32,
    /// Apply pending migrations at start-up (`patchbay migrate` does it on demand).
    #[arg(long, env = "PATCHBAY_RUN_MIGRATIONS", default_value = "true", value_parser = BoolishValueParser::new(), action = ArgAction::Set, global = true)]
    pub run_migrations: bool,
    /// Bytes of encoded record pages one instance keeps for repeated reads (0 disables the
    /// cache; ETags and 304s work either way). Dropped whole after 30 s without a hit.
    #[arg(long, env = "PATCHBAY_READ_CACHE_BYTES", default_value_t = 4 * 1024 * 1024, global = true)]
    pub read_cache_bytes: usize,
    /// Jobs one instance runs at once.
    #[arg(long, env = "PATCHBAY_WORKER_CONCURRENCY", default_value_t = 4, global = true)]
    pub worker_concurrency: usize,
    /// Seconds a job lease lasts (renewed every third of it while the job runs); a crashed
    /// instance's jobs are taken over this long after its last renewal.
    #[arg(long, env = "PATCHBAY_WORKER_LEASE_SECONDS", default_value_t = 30, global = true)]
    pub worker_lease_seconds: u64,
    /// Milliseconds an idle worker waits before polling the job queue again.
    #[arg(long, env = "PATCHBAY_WORKER_POLL_MS", default_value_t = 500, global = true)]
    pub worker_poll_ms: u64,
    /// The product name the connect confirmation page shows ("Connect Google to …").
    #[arg(long, env = "PATCHBAY_APP_NAME", default_value = "Patchbay", global = true)]
    pub app_name: String,
    /// Allow event endpoints on private, loopback and link-local addresses (tests, development).
    #[arg(long, env = "PATCHBAY_ALLOW_PRIVATE_ENDPOINTS", default_value = "false", value_parser = BoolishValueParser::new(), action = ArgAction::Set, global = true)]
    pub allow_private_endpoints: bool,
}

/// User authentication.
#[derive(clap::Args, Clone, Debug)]
pub struct AuthArgs {
    /// JWKS URL for RS256/ES256 user JWTs (instead of, or beside, PATCHBAY_AUTH_JWT_SECRET).
    #[arg(long, env = "PATCHBAY_AUTH_JWKS_URL", global = true)]
    pub jwks_url: Option<String>,
    /// Required `iss` of user JWTs.
    #[arg(long, env = "PATCHBAY_AUTH_ISSUER", global = true)]
    pub issuer: Option<String>,
    /// Required `aud` of user JWTs (`azp` is accepted when the token has no `aud`).
    #[arg(long, env = "PATCHBAY_AUTH_AUDIENCE", global = true)]
    pub audience: Option<String>,
    /// Claim naming the tenant: set → claim mode (a token without it is refused); unset → per-user tenants.
    #[arg(long, env = "PATCHBAY_AUTH_TENANT_CLAIM", global = true)]
    pub tenant_claim: Option<String>,
    /// Claim holding the user's role.
    #[arg(long, env = "PATCHBAY_AUTH_ROLE_CLAIM", default_value = "role", global = true)]
    pub role_claim: String,
    /// Role value that makes a user a tenant admin.
    #[arg(long, env = "PATCHBAY_AUTH_ADMIN_ROLE", default_value = "admin", global = true)]
    pub admin_role: String,
    /// Least seconds between JWKS refetches triggered by unknown key ids.
    #[arg(long, env = "PATCHBAY_AUTH_JWKS_MIN_REFETCH_SECONDS", default_value_t = 60, global = true)]
    pub jwks_min_refetch_seconds: u64,
    /// Longest seconds a cached JWKS is used before it is refetched, even while its keys are in
    /// use (a key withdrawn by the identity provider stops working after this long).
    #[arg(long, env = "PATCHBAY_AUTH_JWKS_MAX_AGE_SECONDS", default_value_t = 3600, global = true)]
    pub jwks_max_age_seconds: u64,
    /// Clock leeway for `exp` and `nbf`, in seconds.
    #[arg(long, env = "PATCHBAY_AUTH_LEEWAY_SECONDS", default_value_t = 30, global = true)]
    pub leeway_seconds: u64,
    /// Least seconds between writes of an API key's `last_used_at`.
    #[arg(long, env = "PATCHBAY_API_KEY_TOUCH_SECONDS", default_value_t = 60, global = true)]
    pub api_key_touch_seconds: u64,
}

/// HTTP server behaviour.
#[derive(clap::Args, Clone, Debug)]
pub struct HttpArgs {
    /// Allowed app origins for `return_to` and `opener_origin` (comma-separated).
    #[arg(long, env = "PATCHBAY_RETURN_TO_ORIGINS", value_delimiter = ',', global = true)]
    pub return_to_origins: Vec<String>,
    /// Origins allowed to call the API from a browser (comma-separated; none by default).
    #[arg(long, env = "PATCHBAY_CORS_ORIGINS", value_delimiter = ',', global = true)]
    pub cors_origins: Vec<String>,
    /// CIDRs whose X-Forwarded-For is believed (comma-separated).
    #[arg(long, env = "PATCHBAY_TRUSTED_PROXIES", value_delimiter = ',', global = true)]
    pub trusted_proxies: Vec<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "PATCHBAY_HTTP_BODY_LIMIT_BYTES", default_value_t = 1_048_576, global = true)]
    pub body_limit_bytes: usize,
    /// Time limit for one request, in seconds.
    #[arg(long, env = "PATCHBAY_HTTP_TIMEOUT_SECONDS", default_value_t = 30, global = true)]
    pub request_timeout_seconds: u64,
    /// How long the public /readyz answer is cached, in milliseconds.
    #[arg(long, env = "PATCHBAY_READYZ_CACHE_MS", default_value_t = 1000, global = true)]
    pub readyz_cache_ms: u64,
    /// Database latency above which /readyz reports `degraded`, in milliseconds.
    #[arg(long, env = "PATCHBAY_READYZ_DEGRADED_MS", default_value_t = 500, global = true)]
    pub readyz_degraded_ms: u64,
    /// Seconds between turning /readyz to 503 and closing the listener on shutdown
    /// [default: 5 in production, 0 in development].
    #[arg(long, env = "PATCHBAY_SHUTDOWN_DRAIN_SECONDS", global = true)]
    pub drain_seconds: Option<u64>,
    /// Upper bound on the whole shutdown, in seconds.
    #[arg(long, env = "PATCHBAY_SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 30, global = true)]
    pub shutdown_timeout_seconds: u64,
}

/// Inbound rate limits (requests per second sustained, and burst), per client address for each
/// route class, and per API key or tenant for authenticated calls.
#[derive(clap::Args, Clone, Debug)]
pub struct RateLimitArgs {
    #[arg(long, env = "PATCHBAY_RATE_LIMIT_V1_PER_SECOND", default_value_t = 50.0, global = true)]
    pub v1_per_second: f64,
    #[arg(long, env = "PATCHBAY_RATE_LIMIT_V1_BURST", default_value_t = 100, global = true)]
    pub v1_burst: u32,
    #[arg(long, env = "PATCHBAY_RATE_LIMIT_CONNECT_PER_SECOND", default_value_t = 2.0, global = true)]
    pub connect_per_second: f64,
    #[arg(long, env = "PATCHBAY_RATE_LIMIT_CONNECT_BURST", default_value_t = 20, global = true)]
    pub connect_burst: u32,
    #[arg(long, env = "PATCHBAY_RATE_LIMIT_WEBHOOKS_PER_SECOND", default_value_t = 200.0, global = true)]
    pub webhooks_per_second: f64,
    #[arg(long, env = "PATCHBAY_RATE_LIMIT_WEBHOOKS_BURST", default_value_t = 400, global = true)]
    pub webhooks_burst: u32,
    #[arg(long, env = "PATCHBAY_RATE_LIMIT_PRINCIPAL_PER_SECOND", default_value_t = 50.0, global = true)]
    pub principal_per_second: f64,
    #[arg(long, env = "PATCHBAY_RATE_LIMIT_PRINCIPAL_BURST", default_value_t = 100, global = true)]
    pub principal_burst: u32,
}

/// Provider apps. Client and signing secrets are environment-only.
#[derive(clap::Args, Clone, Debug)]
pub struct ProviderArgs {
    /// Monday app client id (unset: Monday disabled).
    #[arg(long, env = "PATCHBAY_MONDAY_CLIENT_ID", global = true)]
    pub monday_client_id: Option<String>,
    /// Monday token flow: `legacy` or `v2` (required when Monday is enabled).
    #[arg(long, env = "PATCHBAY_MONDAY_OAUTH_FLOW", global = true)]
    pub monday_oauth_flow: Option<String>,
    /// Pinned Monday API version.
    #[arg(long, env = "PATCHBAY_MONDAY_API_VERSION", default_value = "2026-10", global = true)]
    pub monday_api_version: String,
    /// Monday account plan, for rate budgets (`free`, `basic`, `standard`, `pro`, `enterprise`).
    #[arg(long, env = "PATCHBAY_MONDAY_PLAN", default_value = "pro", global = true)]
    pub monday_plan: String,
    /// Google OAuth client id (unset: Google disabled).
    #[arg(long, env = "PATCHBAY_GOOGLE_CLIENT_ID", global = true)]
    pub google_client_id: Option<String>,
    /// How far back a full calendar sync reaches, in days.
    #[arg(long, env = "PATCHBAY_GOOGLE_SYNC_DAYS_BACK", default_value_t = 365, global = true)]
    pub google_sync_days_back: u32,
    /// Ask Monday for `boards:write` (write-back to items).
    #[arg(long, env = "PATCHBAY_MONDAY_WRITE_BACK", default_value = "false", value_parser = BoolishValueParser::new(), action = ArgAction::Set, global = true)]
    pub monday_write_back: bool,
    /// Refresh access tokens expiring within this many seconds.
    #[arg(long, env = "PATCHBAY_TOKEN_REFRESH_MARGIN_SECONDS", default_value_t = 300, global = true)]
    pub refresh_margin_seconds: u64,
    #[command(flatten)]
    pub endpoints: EndpointArgs,
}

/// Provider endpoints and issuers (the providers' own by default; tests point them at fakes).
#[derive(clap::Args, Clone, Debug)]
pub struct EndpointArgs {
    /// In production, accept provider URL overrides outside the provider's own domains.
    #[arg(long, env = "PATCHBAY_ALLOW_PROVIDER_URL_OVERRIDES", default_value = "false", value_parser = BoolishValueParser::new(), action = ArgAction::Set, global = true)]
    pub allow_provider_url_overrides: bool,
    #[arg(long, env = "PATCHBAY_MONDAY_AUTH_URL", global = true, hide = true)]
    pub monday_auth_url: Option<String>,
    /// The token endpoint of the configured Monday flow (legacy `/oauth2/token`, v2 `/oauth_ms/oauth/token`).
    #[arg(long, env = "PATCHBAY_MONDAY_TOKEN_URL", global = true, hide = true)]
    pub monday_token_url: Option<String>,
    #[arg(long, env = "PATCHBAY_MONDAY_REVOKE_URL", global = true, hide = true)]
    pub monday_revoke_url: Option<String>,
    #[arg(long, env = "PATCHBAY_MONDAY_MIGRATE_URL", global = true, hide = true)]
    pub monday_migrate_url: Option<String>,
    #[arg(long, env = "PATCHBAY_MONDAY_API_URL", global = true, hide = true)]
    pub monday_api_url: Option<String>,
    #[arg(long, env = "PATCHBAY_MONDAY_ISSUER", default_value = "https://auth.monday.com", global = true, hide = true)]
    pub monday_issuer: String,
    #[arg(long, env = "PATCHBAY_GOOGLE_AUTH_URL", global = true, hide = true)]
    pub google_auth_url: Option<String>,
    #[arg(long, env = "PATCHBAY_GOOGLE_TOKEN_URL", global = true, hide = true)]
    pub google_token_url: Option<String>,
    #[arg(long, env = "PATCHBAY_GOOGLE_REVOKE_URL", global = true, hide = true)]
    pub google_revoke_url: Option<String>,
    #[arg(long, env = "PATCHBAY_GOOGLE_USERINFO_URL", global = true, hide = true)]
    pub google_userinfo_url: Option<String>,
    /// The root under which `/calendar/v3/…` lives.
    #[arg(long, env = "PATCHBAY_GOOGLE_API_URL", global = true, hide = true)]
    pub google_api_url: Option<String>,
    #[arg(
        long,
        env = "PATCHBAY_GOOGLE_ISSUER",
        default_value = "https://accounts.google.com",
        global = true,
        hide = true
    )]
    pub google_issuer: String,
}

/// Validated provider apps: the OAuth registry (endpoints, issuers, scopes) and the secrets the
/// webhooks capability will need.
#[derive(Clone, Debug, Default)]
pub struct ProviderSettings {
    pub registry: Registry,
    pub monday_signing_secret: Option<SecretString>,
    pub monday_plan: String,
    pub google_api_url: Option<Url>,
    pub google_sync_days_back: u32,
    /// `PATCHBAY_MONDAY_API_URL` (the GraphQL endpoint), when overridden.
    pub monday_api_url: Option<Url>,
    pub monday_api_version: String,
}

impl ConfigArgs {
    /// Validates everything; the first problem found is returned, naming its variable.
    pub(super) fn validate(&self, env: &dyn SecretSource) -> Result<Settings, ConfigError> {
        let production = self.environment == Environment::Production;
        let database = self.database(env)?;
        let http = self.http_settings(env, production)?;
        let allow_dev_secrets = !production && database.backend == Backend::Sqlite;

        let vault_keys = match env.secret("PATCHBAY_VAULT_KEYS")? {
            Some(text) => parse_key_ring(&text)?,
            None if allow_dev_secrets => {
                let text = dev_secrets::load_or_generate(&self.data_dir, DevSecret::VaultKeys)?;
                parse_key_ring(&text)?
            }
            None => return Err(missing_secret("PATCHBAY_VAULT_KEYS", production)),
        };
        let auth = self.auth_settings(env, production, allow_dev_secrets)?;
        let providers = self.provider_settings(env, production)?;
        let sync = self.sync.settings(&providers, &http.public_url)?;

        Ok(Settings {
            environment: self.environment,
            data_dir: self.data_dir.clone(),
            database,
            http,
            auth,
            vault_keys,
            log_filter: self.log.clone().or_else(|| env.var("RUST_LOG")).unwrap_or_else(|| "info".into()),
            log_format: self.log_format.unwrap_or(if production { LogFormat::Json } else { LogFormat::Pretty }),
            allow_private_endpoints: self.allow_private_endpoints,
            read_cache_bytes: self.read_cache_bytes,
            worker_concurrency: self.worker_concurrency.max(1),
            worker_lease: std::time::Duration::from_secs(self.worker_lease_seconds.max(1)),
            worker_poll: std::time::Duration::from_millis(self.worker_poll_ms.max(1)),
            app_name: app_name(&self.app_name)?,
            sync,
            webhooks: self.webhooks.settings()?,
            events_out: self.events_out.settings()?,
            retention: self.retention.settings()?,
            providers,
        })
    }

    fn database(&self, env: &dyn SecretSource) -> Result<DatabaseSettings, ConfigError> {
        let (variable, url) = match env.secret("PATCHBAY_DATABASE_URL")? {
            Some(url) => ("PATCHBAY_DATABASE_URL", url),
            None => match env.secret("DATABASE_URL")? {
                Some(url) => ("DATABASE_URL", url),
                None => {
                    let path = self.data_dir.join("patchbay.db");
                    ("PATCHBAY_DATA_DIR", SecretString::from(format!("sqlite://{}", path.display())))
                }
            },
        };
        let text = url.expose_secret();
        let backend = if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Backend::Postgres
        } else if text.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(ConfigError::new(variable, "must start with postgres://, postgresql:// or sqlite://"));
        };
        if self.db_max_connections == 0 {
            return Err(ConfigError::new("PATCHBAY_DB_MAX_CONNECTIONS", "must be at least 1"));
        }
        Ok(DatabaseSettings {
            url,
            backend,
            max_connections: self.db_max_connections,
            run_migrations: self.run_migrations,
        })
    }

    fn http_settings(&self, env: &dyn SecretSource, production: bool) -> Result<HttpSettings, ConfigError> {
        let listen = match (&self.listen, env.var("PORT")) {
            (Some(listen), _) => parse_addr("PATCHBAY_LISTEN", listen)?,
            (None, Some(port)) => parse_addr("PORT", &format!("0.0.0.0:{port}"))?,
            (None, None) => parse_addr("PATCHBAY_LISTEN", "127.0.0.1:8080")?,
        };
        let metrics_listen = match self.metrics_listen.as_str() {
            "off" | "" => None,
            addr => Some(parse_addr("PATCHBAY_METRICS_LISTEN", addr)?),
        };
        let public_url = Url::parse(&self.public_url)
            .map_err(|e| ConfigError::new("PATCHBAY_PUBLIC_URL", format!("not a URL: {e}")))?;
        if !matches!(public_url.scheme(), "http" | "https") || public_url.host().is_none() {
            return Err(ConfigError::new("PATCHBAY_PUBLIC_URL", "must be an absolute http(s) URL"));
        }
        if production && public_url.scheme() != "https" {
            return Err(ConfigError::new("PATCHBAY_PUBLIC_URL", "must be https in production"));
        }
        let trusted_proxies = self
            .http
            .trusted_proxies
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_cidr(s.trim()))
            .collect::<Result<_, _>>()?;
        let cors_origins = origins("PATCHBAY_CORS_ORIGINS", &self.http.cors_origins, production)?;
        let return_to_origins = origins("PATCHBAY_RETURN_TO_ORIGINS", &self.http.return_to_origins, production)?;
        let l = &self.limits;
        let rate_limits = RateLimits {
            v1: rate("PATCHBAY_RATE_LIMIT_V1_PER_SECOND", l.v1_per_second, l.v1_burst)?,
            connect: rate("PATCHBAY_RATE_LIMIT_CONNECT_PER_SECOND", l.connect_per_second, l.connect_burst)?,
            webhooks: rate("PATCHBAY_RATE_LIMIT_WEBHOOKS_PER_SECOND", l.webhooks_per_second, l.webhooks_burst)?,
            principal: rate("PATCHBAY_RATE_LIMIT_PRINCIPAL_PER_SECOND", l.principal_per_second, l.principal_burst)?,
        };
        if self.http.body_limit_bytes == 0 {
            return Err(ConfigError::new("PATCHBAY_HTTP_BODY_LIMIT_BYTES", "must be at least 1"));
        }
        Ok(HttpSettings {
            listen,
            metrics_listen,
            public_url,
            body_limit_bytes: self.http.body_limit_bytes,
            request_timeout: Duration::from_secs(self.http.request_timeout_seconds.max(1)),
            cors_origins,
            return_to_origins,
            trusted_proxies,
            rate_limits,
            readyz_cache: Duration::from_millis(self.http.readyz_cache_ms),
            readyz_degraded_after: Duration::from_millis(self.http.readyz_degraded_ms),
            drain_delay: Duration::from_secs(self.http.drain_seconds.unwrap_or(if production { 5 } else { 0 })),
            shutdown_timeout: Duration::from_secs(self.http.shutdown_timeout_seconds.max(1)),
        })
    }

    fn auth_settings(
        &self,
        env: &dyn SecretSource,
        production: bool,
        allow_dev: bool,
    ) -> Result<AuthSettings, ConfigError> {
        let a = &self.auth;
        let jwks_url = match &a.jwks_url {
            Some(url) => {
                let url = Url::parse(url)
                    .map_err(|e| ConfigError::new("PATCHBAY_AUTH_JWKS_URL", format!("not a URL: {e}")))?;
                if production && url.scheme() != "https" {
                    return Err(ConfigError::new("PATCHBAY_AUTH_JWKS_URL", "must be https in production"));
                }
                Some(url)
            }
            None => None,
        };
        let jwt_secret = match env.secret("PATCHBAY_AUTH_JWT_SECRET")? {
            Some(secret) => Some(secret),
            None if jwks_url.is_some() => None,
            None if allow_dev => Some(dev_secrets::load_or_generate(&self.data_dir, DevSecret::JwtSecret)?),
            None => {
                return Err(ConfigError::new(
                    "PATCHBAY_AUTH_JWT_SECRET",
                    format!("set it (or PATCHBAY_AUTH_JWKS_URL){}", dev_hint(production)),
                ))
            }
        };
        if let Some(secret) = &jwt_secret {
            if secret.expose_secret().len() < 32 {
                return Err(ConfigError::new("PATCHBAY_AUTH_JWT_SECRET", "must be at least 32 characters"));
            }
        }
        // Whichever way tokens are signed (HS256 secret or JWKS), production pins who issued
        // them and for whom: a token minted for another service must not pass here.
        if production {
            for (variable, value) in [("PATCHBAY_AUTH_ISSUER", &a.issuer), ("PATCHBAY_AUTH_AUDIENCE", &a.audience)] {
                if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    return Err(ConfigError::new(variable, "required in production (user JWTs must name it)"));
                }
            }
        }
        if a.jwks_max_age_seconds == 0 {
            return Err(ConfigError::new("PATCHBAY_AUTH_JWKS_MAX_AGE_SECONDS", "must be at least 1"));
        }
        let admin_tokens = match env.secret("PATCHBAY_ADMIN_TOKENS")? {
            Some(list) => {
                let tokens: Vec<SecretString> = list
                    .expose_secret()
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| SecretString::from(t.to_string()))
                    .collect();
                if tokens.iter().any(|t| t.expose_secret().len() < 24) {
                    return Err(ConfigError::new(
                        "PATCHBAY_ADMIN_TOKENS",
                        "every token must be at least 24 characters",
                    ));
                }
                tokens
            }
            None => Vec::new(),
        };
        for (variable, claim) in
            [("PATCHBAY_AUTH_ROLE_CLAIM", Some(&a.role_claim)), ("PATCHBAY_AUTH_TENANT_CLAIM", a.tenant_claim.as_ref())]
        {
            if claim.is_some_and(|c| c.trim().is_empty()) {
                return Err(ConfigError::new(variable, "must not be empty"));
            }
        }
        Ok(AuthSettings {
            jwt_secret,
            jwks_url,
            issuer: a.issuer.clone(),
            audience: a.audience.clone(),
            tenant_claim: a.tenant_claim.clone(),
            role_claim: a.role_claim.clone(),
            admin_role: a.admin_role.clone(),
            jwks_min_refetch: Duration::from_secs(a.jwks_min_refetch_seconds),
            jwks_max_age: Duration::from_secs(a.jwks_max_age_seconds),
            leeway_seconds: a.leeway_seconds,
            admin_tokens,
            api_key_touch_interval: Duration::from_secs(a.api_key_touch_seconds),
        })
    }

    fn provider_settings(&self, env: &dyn SecretSource, production: bool) -> Result<ProviderSettings, ConfigError> {
        let p = &self.providers;
        let e = &p.endpoints;
        let margin = Duration::from_secs(p.refresh_margin_seconds);
        let policy = OverridePolicy { production, allow_foreign_hosts: e.allow_provider_url_overrides };
        let monday = |variable, value| endpoint(variable, value, policy, MONDAY_HOSTS);
        let google = |variable, value| endpoint(variable, value, policy, GOOGLE_HOSTS);
        let mut registry = Registry::new();
        let mut monday_signing_secret = None;
        if let Some(client_id) = &p.monday_client_id {
            let flow: MondayFlow = p
                .monday_oauth_flow
                .as_deref()
                .ok_or_else(|| {
                    ConfigError::new(
                        "PATCHBAY_MONDAY_OAUTH_FLOW",
                        "required when PATCHBAY_MONDAY_CLIENT_ID is set (`legacy` or `v2`)",
                    )
                })?
                .parse()
                .map_err(|_| ConfigError::new("PATCHBAY_MONDAY_OAUTH_FLOW", "must be `legacy` or `v2`"))?;
            let secret = required(env, "PATCHBAY_MONDAY_CLIENT_SECRET", "PATCHBAY_MONDAY_CLIENT_ID")?;
            monday_signing_secret = Some(required(env, "PATCHBAY_MONDAY_SIGNING_SECRET", "PATCHBAY_MONDAY_CLIENT_ID")?);
            let mut config = ProviderConfig::monday(client_id.clone(), secret, flow)
                .with_monday_api_version(p.monday_api_version.clone())
                .with_write_back(p.monday_write_back)
                .with_issuer(e.monday_issuer.clone())
                .with_refresh_margin(margin);
            if let Some(url) = monday("PATCHBAY_MONDAY_AUTH_URL", &e.monday_auth_url)? {
                config = config.with_authorize_url(url);
            }
            if let Some(url) = monday("PATCHBAY_MONDAY_TOKEN_URL", &e.monday_token_url)? {
                config = config.with_token_url(url);
            }
            if let Some(url) = monday("PATCHBAY_MONDAY_REVOKE_URL", &e.monday_revoke_url)? {
                config = config.with_revoke_url((flow == MondayFlow::V2).then_some(url));
            }
            if let Some(url) = monday("PATCHBAY_MONDAY_MIGRATE_URL", &e.monday_migrate_url)? {
                config = config.with_migrate_url(Some(url));
            }
            if let Some(url) = monday("PATCHBAY_MONDAY_API_URL", &e.monday_api_url)? {
                config = config.with_identity_url(url);
            }
            registry = registry.with(config);
        }
        if let Some(client_id) = &p.google_client_id {
            let secret = required(env, "PATCHBAY_GOOGLE_CLIENT_SECRET", "PATCHBAY_GOOGLE_CLIENT_ID")?;
            let mut config = ProviderConfig::google(client_id.clone(), secret)
                .with_issuer(e.google_issuer.clone())
                .with_refresh_margin(margin);
            if let Some(url) = google("PATCHBAY_GOOGLE_AUTH_URL", &e.google_auth_url)? {
                config = config.with_authorize_url(url);
            }
            if let Some(url) = google("PATCHBAY_GOOGLE_TOKEN_URL", &e.google_token_url)? {
                config = config.with_token_url(url);
            }
            if let Some(url) = google("PATCHBAY_GOOGLE_REVOKE_URL", &e.google_revoke_url)? {
                config = config.with_revoke_url(Some(url));
            }
            if let Some(url) = google("PATCHBAY_GOOGLE_USERINFO_URL", &e.google_userinfo_url)? {
                config = config.with_identity_url(url);
            }
            registry = registry.with(config);
        }
        Ok(ProviderSettings {
            registry,
            monday_signing_secret,
            monday_plan: p.monday_plan.clone(),
            google_api_url: google("PATCHBAY_GOOGLE_API_URL", &e.google_api_url)?,
            google_sync_days_back: p.google_sync_days_back,
            monday_api_url: monday("PATCHBAY_MONDAY_API_URL", &e.monday_api_url)?,
            monday_api_version: p.monday_api_version.clone(),
        })
    }
}

fn parse_key_ring(text: &SecretString) -> Result<KeyRing, ConfigError> {
    KeyRing::parse(text).map_err(|e| ConfigError::new("PATCHBAY_VAULT_KEYS", e.to_string()))
}

/// Hosts a provider's endpoints may be overridden to in production: exact names, and `*.` for
/// any subdomain (security.md I1).
const GOOGLE_HOSTS: &[&str] = &[
    "accounts.google.com",
    "oauth2.googleapis.com",
    "openidconnect.googleapis.com",
    "www.googleapis.com",
    "*.googleapis.com",
];
const MONDAY_HOSTS: &[&str] = &["auth.monday.com", "api.monday.com", "*.monday.com"];

/// What provider endpoint overrides may point at.
#[derive(Clone, Copy)]
struct OverridePolicy {
    production: bool,
    /// `PATCHBAY_ALLOW_PROVIDER_URL_OVERRIDES`: production accepts hosts outside the provider's.
    allow_foreign_hosts: bool,
}

/// A provider endpoint override: an absolute URL; in production https, on one of the
/// provider's own `hosts` unless foreign hosts are allowed.
fn endpoint(
    variable: &'static str,
    value: &Option<String>,
    policy: OverridePolicy,
    hosts: &[&str],
) -> Result<Option<Url>, ConfigError> {
    let Some(text) = value.as_deref().filter(|t| !t.is_empty()) else { return Ok(None) };
    let url = Url::parse(text).map_err(|e| ConfigError::new(variable, format!("not a URL: {e}")))?;
    let Some(host) = url.host_str().filter(|_| matches!(url.scheme(), "http" | "https")) else {
        return Err(ConfigError::new(variable, "must be an absolute http(s) URL"));
    };
    if policy.production && url.scheme() != "https" {
        return Err(ConfigError::new(variable, "must be https in production"));
    }
    if policy.production && !policy.allow_foreign_hosts && !on_hosts(host, hosts) {
        return Err(ConfigError::new(
            variable,
            format!(
                "`{host}` is not one of the provider's own hosts ({}); in production set \
                 PATCHBAY_ALLOW_PROVIDER_URL_OVERRIDES=true to allow it",
                hosts.join(", ")
            ),
        ));
    }
    Ok(Some(url))
}

/// `host` is one of `hosts` (`*.domain` matching any subdomain of `domain`, not `domain` itself).
fn on_hosts(host: &str, hosts: &[&str]) -> bool {
    hosts.iter().any(|pattern| match pattern.strip_prefix("*.") {
        Some(domain) => {
            host.strip_suffix(domain).and_then(|sub| sub.strip_suffix('.')).is_some_and(|sub| !sub.is_empty())
        }
        None => host == *pattern,
    })
}

fn required(env: &dyn SecretSource, name: &'static str, because: &str) -> Result<SecretString, ConfigError> {
    env.secret(name)?.ok_or_else(|| ConfigError::new(name, format!("required when {because} is set")))
}

fn dev_hint(production: bool) -> &'static str {
    if production {
        "; production never generates secrets"
    } else {
        "; development secrets are generated only on the embedded SQLite store"
    }
}

fn missing_secret(name: &'static str, production: bool) -> ConfigError {
    ConfigError::new(name, format!("not set{}", dev_hint(production)))
}

fn parse_addr(variable: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| ConfigError::new(variable, format!("`{text}` is not an address like 127.0.0.1:8080")))
}

fn parse_cidr(text: &str) -> Result<IpNet, ConfigError> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| ConfigError::new("PATCHBAY_TRUSTED_PROXIES", format!("`{text}` is not a CIDR like 10.0.0.0/8")))
}

fn rate(variable: &'static str, per_second: f64, burst: u32) -> Result<RateLimit, ConfigError> {
    if !(per_second.is_finite() && per_second > 0.0) || burst == 0 {
        return Err(ConfigError::new(variable, "the rate must be positive and the burst at least 1"));
    }
    Ok(RateLimit { per_second, burst })
}

/// Origins are compared as exact strings, so they are normalised here: scheme, host and
/// port only, no path, no trailing slash.
fn origins(variable: &'static str, list: &[String], production: bool) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for text in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let url = Url::parse(text)
            .map_err(|_| ConfigError::new(variable, format!("`{text}` is not an origin like https://app.example")))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host().is_none()
            || url.path() != "/"
            || url.query().is_some()
        {
            return Err(ConfigError::new(variable, format!("`{text}` must be scheme://host[:port] with no path")));
        }
        if production && url.scheme() != "https" {
            return Err(ConfigError::new(variable, format!("`{text}` must be https in production")));
        }
        out.push(url.origin().ascii_serialization());
    }
    Ok(out)
}

/// `PATCHBAY_APP_NAME`: shown to end users, so bounded and printable.
fn app_name(text: &str) -> Result<String, ConfigError> {
    let name = text.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(ConfigError::new("PATCHBAY_APP_NAME", "must be 1 to 80 printable characters"));
    }
    Ok(name.to_string())
}
