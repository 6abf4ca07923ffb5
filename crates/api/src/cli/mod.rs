//! The `patchbay` command line: every command has `--help`; secrets never appear in it.

mod api_keys;
mod dev_token;
mod event_endpoints;
pub mod monday;
pub mod vault;
mod webhook_sources;

use crate::config::{ConfigArgs, Settings};
use crate::startup::{shutdown_signal, Application};
use anyhow::Context;
use clap::{Parser, Subcommand};

/// Patchbay: connect Monday.com and Google accounts, keep their tokens fresh, sync their data
/// and ingest their webhooks — one binary.
#[derive(Debug, Parser)]
#[command(name = "patchbay", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default command).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate the configuration and print a summary (no secrets); exits non-zero on a problem.
    CheckConfig,
    /// Exit 0 if the local instance answers `/readyz` with 200, else 1 (for container health checks).
    Healthcheck {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3)]
        timeout_seconds: u64,
    },
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    ApiKeys(api_keys::ApiKeysCommand),
    /// Monday.com maintenance.
    #[command(subcommand)]
    Monday(monday::MondayCommand),
    /// Manage the token vault's keys.
    #[command(subcommand)]
    Vault(vault::VaultCommand),
    /// Create, list and rotate the secrets of third-party webhook sources.
    #[command(subcommand)]
    WebhookSources(webhook_sources::WebhookSourcesCommand),
    /// Create, list, rotate the secrets of and delete a tenant's event endpoints.
    #[command(subcommand)]
    EventEndpoints(event_endpoints::EventEndpointsCommand),
    /// Print a user JWT signed with the development secret (refused in production).
    DevToken(dev_token::DevTokenArgs),
}

/// How a command ended, as an exit code.
pub enum Exit {
    Ok,
    Failed,
    Config,
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Exit {
    let settings = match Settings::load(&cli.config, &crate::config::ProcessEnv) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Config;
        }
    };
    crate::telemetry::init(&settings.log_filter, settings.log_format);
    let command = cli.command.unwrap_or(Command::Serve);
    let result = match command {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::CheckConfig => check_config(&settings),
        Command::Healthcheck { timeout_seconds } => return healthcheck(&settings, timeout_seconds).await,
        Command::ApiKeys(command) => api_keys::run(command, settings).await,
        Command::DevToken(args) => dev_token::run(args, &settings),
        Command::Vault(command) => vault::run(command, settings).await,
        Command::Monday(command) => monday::run(command, settings).await,
        Command::WebhookSources(command) => webhook_sources::run(command, settings).await,
        Command::EventEndpoints(command) => event_endpoints::run(command, settings).await,
    };
    match result {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::Failed
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    if settings.database.backend == crate::config::Backend::Sqlite {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating PATCHBAY_DATA_DIR {}", settings.data_dir.display()))?;
    }
    let app = Application::build(settings).await?;
    app.run_until_stopped(shutdown_signal()).await
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    if settings.database.backend == crate::config::Backend::Sqlite {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating PATCHBAY_DATA_DIR {}", settings.data_dir.display()))?;
    }
    eprintln!("==> applying migrations ({})", backend_name(&settings));
    let store = crate::database::open(&settings.database, true, crate::database::Access::Exclusive)
        .await
        .context("migrating the database (PATCHBAY_DATABASE_URL)")?;
    store.close().await;
    eprintln!("==> migrations applied");
    Ok(())
}

fn backend_name(settings: &Settings) -> &'static str {
    match settings.database.backend {
        crate::config::Backend::Postgres => "postgres",
        crate::config::Backend::Sqlite => "sqlite",
    }
}

fn check_config(settings: &Settings) -> anyhow::Result<()> {
    println!("environment:      {:?}", settings.environment);
    println!("database:         {}", backend_name(settings));
    println!("data dir:         {}", settings.data_dir.display());
    println!("listen:           {}", settings.http.listen);
    println!("metrics listen:   {}", settings.http.metrics_listen.map_or("off".into(), |a| a.to_string()));
    println!("public url:       {}", settings.http.public_url);
    println!("vault key ids:    {:?} (primary {})", settings.vault_keys.ids(), settings.vault_keys.primary_id());
    let jwt = match (&settings.auth.jwt_secret, &settings.auth.jwks_url) {
        (Some(_), Some(url)) => format!("HS256 secret and JWKS {url}"),
        (Some(_), None) => "HS256 secret".into(),
        (None, Some(url)) => format!("JWKS {url}"),
        (None, None) => "none".into(),
    };
    println!("user tokens:      {jwt}");
    println!(
        "tenancy:          {}",
        settings.auth.tenant_claim.as_ref().map_or("per-user".to_string(), |c| format!("claim `{c}`"))
    );
    println!("admin tokens:     {}", settings.auth.admin_tokens.len());
    println!(
        "monday:           {}",
        if settings.providers.registry.get(patchbay_oauth::ProviderId::Monday).is_some() {
            "enabled"
        } else {
            "disabled"
        }
    );
    println!(
        "google:           {}",
        if settings.providers.registry.get(patchbay_oauth::ProviderId::Google).is_some() {
            "enabled"
        } else {
            "disabled"
        }
    );
    println!("configuration is valid");
    Ok(())
}

async fn healthcheck(settings: &Settings, timeout_seconds: u64) -> Exit {
    let mut addr = settings.http.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(timeout_seconds.max(1)))
        .build();
    let ok = match client {
        Ok(client) => match client.get(format!("http://{addr}/readyz")).send().await {
            Ok(response) => response.status().is_success(),
            Err(e) => {
                eprintln!("healthcheck: {addr} did not answer: {}", e.without_url());
                false
            }
        },
        Err(_) => false,
    };
    if ok {
        Exit::Ok
    } else {
        Exit::Failed
    }
}
