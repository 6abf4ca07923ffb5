//! `patchbay monday migrate-tokens`: moves legacy Monday credentials (tokens that never expire)
//! to OAuth 2.1 (expiring access tokens, rotating refresh tokens) through Monday's migrate
//! endpoint. Resumable: migrated rows change flow and drop out of the next batch.

use crate::config::Settings;
use crate::store::Access;
use crate::tokens::Tokens;
use anyhow::{bail, Context};
use patchbay_oauth::{ErrorClass, MondayFlow, OAuthClient, ProviderConfig, ProviderId};
use patchbay_store::{ConnectionId, Store};
use std::collections::BTreeSet;
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

/// What a migration run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    pub migrated: usize,
    pub failed: usize,
    /// Monday rate-limited the migration; rerun later.
    pub rate_limited: bool,
}

pub async fn run(command: MondayCommand, settings: Settings) -> anyhow::Result<()> {
    let MondayCommand::MigrateTokens { batch } = command;
    let Some(config) = settings.providers.registry.get(ProviderId::Monday).cloned() else {
        bail!("Monday is not configured (PATCHBAY_MONDAY_CLIENT_ID)");
    };
    if config.monday_flow != Some(MondayFlow::V2) {
        bail!("set PATCHBAY_MONDAY_OAUTH_FLOW=v2 first: migrated tokens are OAuth 2.1 tokens");
    }
    let store = crate::store::open(&settings.database, settings.database.run_migrations, Access::Shared)
        .await
        .context("opening the database (PATCHBAY_DATABASE_URL)")?;
    let oauth = Arc::new(crate::startup::provider_client(&settings)?);
    let vault = patchbay_token_vault::Vault::new(settings.vault_keys.clone());
    let tokens = Tokens::new(store.clone(), vault, oauth.clone(), settings.providers.registry.clone(), "cli".into());
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

/// Migrates legacy credentials in batches; each write is guarded by the row's version.
pub async fn migrate(
    store: &Arc<dyn Store>,
    tokens: &Tokens,
    oauth: &OAuthClient,
    config: &ProviderConfig,
    batch: u32,
    progress: bool,
) -> anyhow::Result<MigrationReport> {
    let mut report = MigrationReport::default();
    let mut failed: BTreeSet<ConnectionId> = BTreeSet::new();
    loop {
        let rows = store.credentials_with_flow("legacy", batch.max(1) + failed.len() as u32).await?;
        let pending: Vec<_> = rows.into_iter().filter(|c| !failed.contains(&c.connection_id)).collect();
        if pending.is_empty() {
            return Ok(report);
        }
        for credential in pending {
            let id = credential.connection_id;
            let legacy = match tokens.open(&credential) {
                Ok(set) => set,
                Err(e) => {
                    eprintln!("\n    connection {id}: {e}");
                    failed.insert(id);
                    report.failed += 1;
                    continue;
                }
            };
            match oauth.migrate_legacy(config, &legacy.access_token).await {
                Ok(migrated) => {
                    let sealed = tokens.seal(credential.tenant_id, id, "v2", &migrated);
                    // A concurrent write (a reconnect) wins; the row is then no longer legacy.
                    if store.store_refreshed(id, credential.version, sealed, chrono::Utc::now()).await.is_ok() {
                        report.migrated += 1;
                    }
                }
                Err(e) if matches!(e.class(), ErrorClass::RateLimited { .. }) => {
                    report.rate_limited = true;
                    return Ok(report);
                }
                Err(e) => {
                    eprintln!("\n    connection {id}: migration refused ({})", e.reason());
                    failed.insert(id);
                    report.failed += 1;
                }
            }
            if progress {
                eprint!("\r    {} migrated, {} failed", report.migrated, report.failed);
                let _ = std::io::stderr().flush();
            }
        }
    }
}
