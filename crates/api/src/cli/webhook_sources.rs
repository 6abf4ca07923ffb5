//! `patchbay webhook-sources create | list | rotate-secret`: a tenant's third-party webhook
//! sources. The signing secret is printed once (to stdout, alone, so it can be piped); the
//! store keeps it sealed.

use crate::config::Settings;
use crate::http::webhook_sources::source_url;
use anyhow::{bail, Context};
use patchbay_store::{NewAuditEvent, Page, Store, TenantScope, WebhookScheme, WebhookSourceId};
use patchbay_token_vault::Vault;
use patchbay_webhooks::Sources;
use secrecy::ExposeSecret;
use std::sync::Arc;

#[derive(Debug, clap::Subcommand)]
pub enum WebhookSourcesCommand {
    /// Create a source and print its URL, then its secret once.
    Create {
        /// The tenant: its claim value in claim mode (e.g. `acme`), or a full key (`org:acme`, `user:<iss>|<sub>`).
        #[arg(long)]
        tenant: String,
        /// A name to recognise the source by.
        #[arg(long)]
        name: String,
        /// `standard_webhooks`, `github` or `generic_hmac`.
        #[arg(long)]
        scheme: WebhookScheme,
        /// For `generic_hmac`: JSON such as `{"signature_header":"X-Signature","encoding":"hex"}`.
        #[arg(long)]
        settings: Option<String>,
    },
    /// List a tenant's sources (never their secrets).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Add a new secret and print it once; older secrets keep verifying for the overlap.
    RotateSecret {
        #[arg(long)]
        tenant: String,
        /// Seconds the older secrets keep verifying [default: PATCHBAY_WEBHOOK_SECRET_OVERLAP_SECONDS].
        #[arg(long)]
        overlap_seconds: Option<u32>,
        /// The source id (from `list`).
        id: WebhookSourceId,
    },
}

pub(super) fn tenant_key(tenant: &str) -> String {
    if tenant.starts_with("org:") || tenant.starts_with("user:") {
        tenant.to_string()
    } else {
        format!("org:{tenant}")
    }
}

pub async fn run(command: WebhookSourcesCommand, settings: Settings) -> anyhow::Result<()> {
    let store =
        crate::database::open(&settings.database, settings.database.run_migrations, crate::database::Access::Shared)
            .await
            .context("opening the database (PATCHBAY_DATABASE_URL)")?;
    let result = execute(command, &settings, store.clone()).await;
    store.close().await;
    result
}

pub(super) async fn tenant_scope(store: &Arc<dyn Store>, tenant: &str) -> anyhow::Result<TenantScope> {
    match store.find_tenant(&tenant_key(tenant)).await? {
        Some(found) => Ok(TenantScope::new(found.id)),
        None => bail!("no tenant `{}`", tenant_key(tenant)),
    }
}

async fn execute(command: WebhookSourcesCommand, settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<()> {
    let sources = Sources::new(store.clone(), Vault::new(settings.vault_keys.clone()));
    let public_url = &settings.http.public_url;
    let now = chrono::Utc::now();
    match command {
        WebhookSourcesCommand::Create { tenant, name, scheme, settings: raw } => {
            let tenant = store.upsert_tenant(&tenant_key(&tenant)).await?;
            let scope = TenantScope::new(tenant.id);
            let parsed = raw.map(|text| serde_json::from_str(&text)).transpose().context("--settings is not JSON")?;
            let created = sources.create(scope, &name, scheme, parsed, now).await?;
            audit(&store, scope, "webhook_source.create", created.source.id).await?;
            eprintln!("created webhook source {} ({scheme}) for {}", created.source.id, tenant.external_key);
            eprintln!("url: {}", source_url(public_url, created.source.id));
            eprintln!("secret (shown once; configure it at the sender now):");
            println!("{}", created.secret.expose_secret());
        }
        WebhookSourcesCommand::List { tenant } => {
            let scope = tenant_scope(&store, &tenant).await?;
            let mut page = Page::new(Some(Page::MAX_LIMIT), None);
            println!("{:<38} {:<18} {:<24} url", "id", "scheme", "name");
            loop {
                let found = sources.list(scope, page).await?;
                for s in &found.items {
                    println!(
                        "{:<38} {:<18} {:<24} {}",
                        s.id.to_string(),
                        s.scheme.as_str(),
                        s.name,
                        source_url(public_url, s.id)
                    );
                }
                match found.next_cursor {
                    Some(cursor) => page = Page::new(Some(Page::MAX_LIMIT), Some(cursor)),
                    None => break,
                }
            }
        }
        WebhookSourcesCommand::RotateSecret { tenant, overlap_seconds, id } => {
            let scope = tenant_scope(&store, &tenant).await?;
            let overlap =
                overlap_seconds.map_or(settings.webhooks.secret_overlap, |s| chrono::Duration::seconds(i64::from(s)));
            let rotated = sources.rotate(scope, id, overlap, now).await.map_err(|e| match e {
                patchbay_webhooks::SourceError::Store(patchbay_store::StoreError::NotFound) => {
                    anyhow::anyhow!("no webhook source {id} in tenant {}", tenant_key(&tenant))
                }
                other => other.into(),
            })?;
            audit(&store, scope, "webhook_source.rotate_secret", id).await?;
            eprintln!("rotated the secret of {id}; older secrets verify until {}", now + overlap);
            eprintln!("new secret (shown once):");
            println!("{}", rotated.secret.expose_secret());
        }
    }
    Ok(())
}

async fn audit(store: &Arc<dyn Store>, scope: TenantScope, action: &str, id: WebhookSourceId) -> anyhow::Result<()> {
    store
        .record_audit(NewAuditEvent {
            tenant_id: Some(scope.tenant_id()),
            actor: "cli".into(),
            action: action.into(),
            target: Some(format!("webhook_source:{id}")),
            request_id: None,
            ip: None,
        })
        .await?;
    Ok(())
}
