//! Moving legacy monday.com credentials (tokens that never expire) to OAuth 2.1 (expiring access
//! tokens, rotating refresh tokens) through Monday's migrate endpoint. Resumable: migrated rows
//! change flow and drop out of the next batch.

use crate::tokens::Tokens;
use patchbay_oauth::{ErrorClass, OAuthClient, ProviderConfig};
use patchbay_store::{ConnectionId, CredentialStore, StoreError, TokenFlow};
use std::collections::BTreeSet;

/// What a migration run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MigrationReport {
    pub migrated: usize,
    pub failed: usize,
    /// Monday rate-limited the migration; rerun later.
    pub rate_limited: bool,
}

/// One row that could not be migrated, for the caller to show.
#[derive(Debug)]
pub struct MigrationFailure {
    pub connection_id: ConnectionId,
    pub reason: String,
}

/// Migrates legacy credentials in batches; each write is guarded by the row's version.
/// `progress` is called after every row (with the failure, if that row failed).
pub async fn migrate_monday_tokens<S>(
    store: &S,
    tokens: &Tokens,
    oauth: &OAuthClient,
    config: &ProviderConfig,
    batch: u32,
    mut progress: impl FnMut(MigrationReport, Option<MigrationFailure>),
) -> Result<MigrationReport, StoreError>
where
    S: CredentialStore + ?Sized,
{
    let mut report = MigrationReport::default();
    let mut failed: BTreeSet<ConnectionId> = BTreeSet::new();
    loop {
        let rows = store.credentials_with_flow(TokenFlow::MondayLegacy, batch.max(1) + failed.len() as u32).await?;
        let pending: Vec<_> = rows.into_iter().filter(|c| !failed.contains(&c.connection_id)).collect();
        if pending.is_empty() {
            return Ok(report);
        }
        for credential in pending {
            let id = credential.connection_id;
            let legacy = match tokens.open(&credential) {
                Ok(set) => set,
                Err(e) => {
                    failed.insert(id);
                    report.failed += 1;
                    progress(report, Some(MigrationFailure { connection_id: id, reason: e.to_string() }));
                    continue;
                }
            };
            match oauth.migrate_legacy(config, &legacy.access_token).await {
                Ok(migrated) => {
                    let sealed = tokens.seal(credential.tenant_id, id, TokenFlow::MondayV2, &migrated);
                    // A concurrent write (a reconnect) wins; the row is then no longer legacy.
                    if store.store_refreshed(id, credential.version, sealed, chrono::Utc::now()).await.is_ok() {
                        report.migrated += 1;
                    }
                    progress(report, None);
                }
                Err(e) if matches!(e.class(), ErrorClass::RateLimited { .. }) => {
                    report.rate_limited = true;
                    return Ok(report);
                }
                Err(e) => {
                    failed.insert(id);
                    report.failed += 1;
                    let reason = format!("migration refused ({})", e.reason());
                    progress(report, Some(MigrationFailure { connection_id: id, reason }));
                }
            }
        }
    }
}
