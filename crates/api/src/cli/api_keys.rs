//! `patchbay api-keys create | list | revoke`: tenant-level keys with scopes. The key is shown
//! once, at creation; the store keeps only its hash.

use crate::auth::api_key;
use crate::config::Settings;
use anyhow::{bail, Context};
use patchbay_store::{ApiKeyId, ApiKeyScope, NewApiKey, NewAuditEvent, Page, Store, TenantScope};
use secrecy::ExposeSecret;
use std::sync::Arc;

#[derive(Debug, clap::Subcommand)]
pub enum ApiKeysCommand {
    /// Create a key and print it once.
    Create {
        /// The tenant: its claim value in claim mode (e.g. `acme`), or a full key (`org:acme`, `user:<iss>|<sub>`).
        #[arg(long)]
        tenant: String,
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// Scopes: read, connect, write, admin (repeat or comma-separate).
        #[arg(long = "scope", value_delimiter = ',', required = true)]
        scopes: Vec<ApiKeyScope>,
        /// Expire the key after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List a tenant's keys (never the keys themselves).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a key.
    Revoke {
        #[arg(long)]
        tenant: String,
        /// The key id (from `list`).
        id: ApiKeyId,
    },
}

fn tenant_key(tenant: &str) -> String {
    if tenant.starts_with("org:") || tenant.starts_with("user:") {
        tenant.to_string()
    } else {
        format!("org:{tenant}")
    }
}

pub async fn run(command: ApiKeysCommand, settings: Settings) -> anyhow::Result<()> {
    let store =
        crate::database::open(&settings.database, settings.database.run_migrations, crate::database::Access::Shared)
            .await
            .context("opening the database (PATCHBAY_DATABASE_URL)")?;
    let result = execute(command, store.clone()).await;
    store.close().await;
    result
}

async fn execute(command: ApiKeysCommand, store: Arc<dyn Store>) -> anyhow::Result<()> {
    match command {
        ApiKeysCommand::Create { tenant, name, scopes, expires_in_days } => {
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let tenant = store.upsert_tenant(&tenant_key(&tenant)).await?;
            let generated = api_key::generate();
            let expires_at = expires_in_days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d)));
            let key = store
                .create_api_key(NewApiKey {
                    tenant_id: tenant.id,
                    name,
                    prefix: generated.prefix.clone(),
                    sha256: generated.sha256,
                    scopes,
                    expires_at,
                })
                .await?;
            audit(&store, tenant.id, "api_key.create", key.id).await?;
            eprintln!("created API key {} for {} (shown once; store it now):", key.id, tenant.external_key);
            println!("{}", generated.key.expose_secret());
        }
        ApiKeysCommand::List { tenant } => {
            let Some(tenant) = store.find_tenant(&tenant_key(&tenant)).await? else {
                bail!("no tenant `{}`", tenant_key(&tenant));
            };
            let mut page = Page::new(Some(Page::MAX_LIMIT), None);
            println!("{:<38} {:<12} {:<24} {:<22} status", "id", "prefix", "name", "scopes");
            loop {
                let keys = store.list_api_keys(TenantScope::new(tenant.id), page).await?;
                for key in &keys.items {
                    let status = if key.revoked_at.is_some() {
                        "revoked".to_string()
                    } else if !key.is_usable(chrono::Utc::now()) {
                        "expired".to_string()
                    } else {
                        key.last_used_at
                            .map_or("never used".into(), |t| format!("last used {}", t.format("%Y-%m-%d %H:%M")))
                    };
                    let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
                    println!(
                        "{:<38} {:<12} {:<24} {:<22} {status}",
                        key.id.to_string(),
                        key.prefix,
                        key.name,
                        scopes.join(",")
                    );
                }
                match keys.next_cursor {
                    Some(cursor) => page = Page::new(Some(Page::MAX_LIMIT), Some(cursor)),
                    None => break,
                }
            }
        }
        ApiKeysCommand::Revoke { tenant, id } => {
            let Some(tenant) = store.find_tenant(&tenant_key(&tenant)).await? else {
                bail!("no tenant `{}`", tenant_key(&tenant));
            };
            store.revoke_api_key(TenantScope::new(tenant.id), id, chrono::Utc::now()).await.map_err(|e| match e {
                patchbay_store::StoreError::NotFound => {
                    anyhow::anyhow!("no key {id} in tenant {}", tenant.external_key)
                }
                other => other.into(),
            })?;
            audit(&store, tenant.id, "api_key.revoke", id).await?;
            eprintln!("revoked API key {id}");
        }
    }
    Ok(())
}

async fn audit(
    store: &Arc<dyn Store>,
    tenant: patchbay_store::TenantId,
    action: &str,
    id: ApiKeyId,
) -> anyhow::Result<()> {
    store
        .record_audit(NewAuditEvent {
            tenant_id: Some(tenant),
            actor: "cli".into(),
            action: action.into(),
            target: Some(format!("api_key:{id}")),
            request_id: None,
            ip: None,
        })
        .await?;
    Ok(())
}
