//! `patchbay monday migrate-tokens`: moves legacy Monday credentials (tokens that never expire)
//! to OAuth 2.1 (expiring access tokens, rotating refresh tokens) through Monday's migrate
//! endpoint. Resumable: migrated rows change flow and drop out of the next batch.

use crate::config::Settings;
use crate::database::Access;
use anyhow::{bail, Context};
use patchbay_oauth::{MondayFlow, OAuthClient, ProviderConfig, ProviderId};
use patchbay_store::{CredentialStore, Store};
use patchbay_token_vault::migrate::{migrate_monday_tokens, MigrationReport};
use patchbay_token_vault::Tokens;
use std::io::Write;
use std::sync::Arc;

#[derive(Debug, clap::Subcommand)]
pub enum MondayCommand {
    /// Migrate every legacy Monday credential to OAuth 2.1 (needs PATCHBAY_MONDAY_OAUTH_FLOW=v2).
    MigrateTokens {
        /// Credentials per batch.
        #[arg(long, default_value_t = 50)]
        batch: u32,
    },
}

pub async fn run(command: MondayCommand, settings: Settings) -> anyhow::Result<()> {
    let MondayCommand::MigrateTokens { batch } = command;
    let Some(config) = settings.providers.registry.get(ProviderId::Monday).cloned() else {
        bail!("Monday is not configured (PATCHBAY_MONDAY_CLIENT_ID)");
    };
    if config.monday_flow != Some(MondayFlow::V2) {
        bail!("set PATCHBAY_MONDAY_OAUTH_FLOW=v2 first: migrated tokens are OAuth 2.1 tokens");
    }
    let store = crate::database::open(&settings.database, settings.database.run_migrations, Access::Shared)
        .await
        .context("opening the database (PATCHBAY_DATABASE_URL)")?;
    let oauth = Arc::new(crate::clients::provider_client(&settings)?);
    let vault = patchbay_token_vault::Vault::new(settings.vault_keys.clone());
    let credentials: Arc<dyn CredentialStore> = store.clone();
    let tokens = Tokens::new(credentials, vault, oauth.clone(), settings.providers.registry.clone(), "cli".into());
    let result = migrate(&store, &tokens, &oauth, &config, batch, true).await;
    store.close().await;
    let report = result?;
    eprintln!("==> {} migrated, {} failed", report.migrated, report.failed);
    if report.rate_limited {
        bail!("Monday rate-limited the migration (wait about 5 minutes and run it again; it resumes)");
    }
    if report.failed > 0 {
        bail!("{} credentials could not be migrated (see above)", report.failed);
    }
    Ok(())
}

/// Migrates legacy credentials in batches, printing a progress line when asked.
pub async fn migrate(
    store: &Arc<dyn Store>,
    tokens: &Tokens,
    oauth: &OAuthClient,
    config: &ProviderConfig,
    batch: u32,
    progress: bool,
) -> anyhow::Result<MigrationReport> {
    let report = migrate_monday_tokens(store.as_ref(), tokens, oauth, config, batch, |report, failure| {
        if let Some(failure) = failure {
            eprintln!("\n    connection {}: {}", failure.connection_id, failure.reason);
        }
        if progress {
            eprint!("\r    {} migrated, {} failed", report.migrated, report.failed);
            let _ = std::io::stderr().flush();
        }
    })
    .await?;
    Ok(report)
}
