//! `patchbay event-endpoints create | list | rotate-secret | delete`: a tenant's event endpoints
//! (architecture §4.5), as the `/v1/event-endpoints` routes manage them. The signing secret is
//! printed once (to stdout, alone, so it can be piped); the store keeps it sealed.

use super::webhook_sources::{tenant_key, tenant_scope};
use crate::config::Settings;
use anyhow::Context;
use patchbay_store::{EventEndpointId, NewAuditEvent, Page, Store, StoreError, TenantScope};
use patchbay_token_vault::Vault;
use patchbay_webhooks::EndpointError;
use secrecy::ExposeSecret;
use std::sync::Arc;

#[derive(Debug, clap::Subcommand)]
pub enum EventEndpointsCommand {
    /// Create an endpoint and print its id, then its signing secret once.
    Create {
        /// The tenant: its claim value in claim mode (e.g. `acme`), or a full key (`org:acme`, `user:<iss>|<sub>`).
        #[arg(long)]
        tenant: String,
        /// The https URL events are posted to.
        #[arg(long)]
        url: String,
        /// An event type to deliver (repeat the flag, or separate with commas), e.g. `sync.completed`.
        #[arg(long = "event-type", required = true, value_delimiter = ',')]
        event_types: Vec<String>,
    },
    /// List a tenant's endpoints (never their secrets).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Add a new secret and print it once; older secrets keep signing for the overlap.
    RotateSecret {
        #[arg(long)]
        tenant: String,
        /// Seconds the older secrets keep signing (0 to 2592000) [default: 86400].
        #[arg(long, default_value_t = 86_400)]
        overlap_seconds: u32,
        /// The endpoint id (from `list`).
        id: EventEndpointId,
    },
    /// Delete an endpoint with its secrets and deliveries.
    Delete {
        #[arg(long)]
        tenant: String,
        /// The endpoint id (from `list`).
        id: EventEndpointId,
    },
}

pub async fn run(command: EventEndpointsCommand, settings: Settings) -> anyhow::Result<()> {
    let store =
        crate::database::open(&settings.database, settings.database.run_migrations, crate::database::Access::Shared)
            .await
            .context("opening the database (PATCHBAY_DATABASE_URL)")?;
    let result = execute(command, &settings, store.clone()).await;
    store.close().await;
    result
}

fn not_found(id: EventEndpointId, tenant: &str) -> anyhow::Error {
    anyhow::anyhow!("no event endpoint {id} in tenant {}", tenant_key(tenant))
}

async fn execute(command: EventEndpointsCommand, settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<()> {
    let out = crate::startup::events_out(settings, &store, Vault::new(settings.vault_keys.clone()))?;
    let now = chrono::Utc::now();
    match command {
        EventEndpointsCommand::Create { tenant, url, event_types } => {
            let found = store.upsert_tenant(&tenant_key(&tenant)).await?;
            let scope = TenantScope::new(found.id);
            let created = out.create(scope, &url, &event_types, now).await.map_err(|e| match e {
                EndpointError::Invalid(problem) => anyhow::anyhow!("{problem}"),
                other => other.into(),
            })?;
            audit(&store, scope, "event_endpoint.create", created.endpoint.id).await?;
            eprintln!("created event endpoint {} for {}", created.endpoint.id, found.external_key);
            eprintln!("secret (shown once; configure it at the receiver now):");
            println!("{}", created.secret.expose_secret());
        }
        EventEndpointsCommand::List { tenant } => {
            let scope = tenant_scope(&store, &tenant).await?;
            let mut page = Page::new(Some(Page::MAX_LIMIT), None);
            println!("{:<38} {:<9} {:<40} url", "id", "state", "event types");
            loop {
                let found = out.list(scope, page).await?;
                for e in &found.items {
                    let state = if e.disabled_at.is_some() { "disabled" } else { "enabled" };
                    let types: Vec<&str> = e.event_types.iter().map(|t| t.as_str()).collect();
                    println!("{:<38} {:<9} {:<40} {}", e.id.to_string(), state, types.join(","), e.url);
                }
                match found.next_cursor {
                    Some(cursor) => page = Page::new(Some(Page::MAX_LIMIT), Some(cursor)),
                    None => break,
                }
            }
        }
        EventEndpointsCommand::RotateSecret { tenant, overlap_seconds, id } => {
            let scope = tenant_scope(&store, &tenant).await?;
            let overlap = chrono::Duration::seconds(i64::from(overlap_seconds));
            let rotated = out.rotate(scope, id, overlap, now).await.map_err(|e| match e {
                EndpointError::Store(StoreError::NotFound) => not_found(id, &tenant),
                EndpointError::Invalid(problem) => anyhow::anyhow!("{problem}"),
                other => other.into(),
            })?;
            audit(&store, scope, "event_endpoint.rotate_secret", id).await?;
            eprintln!("rotated the secret of {id}; older secrets sign until {}", now + overlap);
            eprintln!("new secret (shown once):");
            println!("{}", rotated.secret.expose_secret());
        }
        EventEndpointsCommand::Delete { tenant, id } => {
            let scope = tenant_scope(&store, &tenant).await?;
            out.delete(scope, id).await.map_err(|e| match e {
                StoreError::NotFound => not_found(id, &tenant),
                other => other.into(),
            })?;
            audit(&store, scope, "event_endpoint.delete", id).await?;
            eprintln!("deleted event endpoint {id}");
        }
    }
    Ok(())
}

async fn audit(store: &Arc<dyn Store>, scope: TenantScope, action: &str, id: EventEndpointId) -> anyhow::Result<()> {
    store
        .record_audit(NewAuditEvent {
            tenant_id: Some(scope.tenant_id()),
            actor: "cli".into(),
            action: action.into(),
            target: Some(format!("event_endpoint:{id}")),
            request_id: None,
            ip: None,
        })
        .await?;
    Ok(())
}
