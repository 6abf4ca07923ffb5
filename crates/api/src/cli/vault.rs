//! `patchbay vault generate-key | status | rotate | retire`: the key ring's lifecycle.
//! Rotation across a fleet: add the new key second everywhere, then move it first, then
//! `rotate` re-encrypts online, then `retire` the old key once nothing uses it.

use crate::config::Settings;
use crate::store::Access;
use crate::tokens::token_set_aad;
use anyhow::{bail, Context};
use patchbay_store::Store;
use patchbay_token_vault::{KeyRing, Vault};
use secrecy::ExposeSecret;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;

#[derive(Debug, clap::Subcommand)]
pub enum VaultCommand {
    /// Print a new random key as `<id>:<base64>` to add to PATCHBAY_VAULT_KEYS.
    GenerateKey {
        /// The new key's id (default: one more than the highest loaded id).
        #[arg(long)]
        id: Option<u32>,
    },
    /// Show the key ring, how many ciphertexts each key id encrypts, and which instances have
    /// loaded which keys.
    Status,
    /// Re-encrypt every credential under the primary key, in batches, online and resumable.
    Rotate {
        /// Credentials per batch.
        #[arg(long, default_value_t = 200)]
        batch: u32,
    },
    /// Check that a key can be removed: refused while any ciphertext still uses it.
    Retire {
        /// The key id to retire.
        id: u32,
    },
}

pub async fn run(command: VaultCommand, settings: Settings) -> anyhow::Result<()> {
    let ring = settings.vault_keys.clone();
    if let VaultCommand::GenerateKey { id } = command {
        let id = id.unwrap_or_else(|| ring.ids().into_iter().max().unwrap_or(0) + 1);
        let (_, text) = KeyRing::generate();
        let material = text.expose_secret().split_once(':').map(|(_, k)| k.to_string()).unwrap_or_default();
        eprintln!(
            "add this entry to PATCHBAY_VAULT_KEYS (second first, then move it first after every instance has it):"
        );
        println!("{id}:{material}");
        return Ok(());
    }
    let store = crate::store::open(&settings.database, settings.database.run_migrations, Access::Shared)
        .await
        .context("opening the database (PATCHBAY_DATABASE_URL)")?;
    let result = match command {
        VaultCommand::Status => status(&store, &ring).await,
        VaultCommand::Rotate { batch } => rotate(&store, Vault::new(ring), batch).await.map(|_| ()),
        VaultCommand::Retire { id } => retire(&store, &ring, id).await,
        VaultCommand::GenerateKey { .. } => unreachable!("handled above"),
    };
    store.close().await;
    result
}

async fn status(store: &Arc<dyn Store>, ring: &KeyRing) -> anyhow::Result<()> {
    println!("key ring (this process): {:?}, primary {}", ring.ids(), ring.primary_id());
    let usage = store.credential_key_usage().await?;
    println!("ciphertexts per key id:");
    for u in &usage {
        let loaded = if ring.contains(u.key_id) { "" } else { "  <- NOT in this key ring" };
        println!("  key {:>4}: {} credentials{loaded}", u.key_id, u.credentials);
    }
    if usage.is_empty() {
        println!("  (none)");
    }
    let needed: BTreeSet<u32> = usage.iter().map(|u| u.key_id).collect();
    println!("instances:");
    let instances = store.list_instances().await?;
    for instance in &instances {
        let missing: Vec<u32> = needed.iter().filter(|k| !instance.key_ids.contains(k)).copied().collect();
        let verdict = if missing.is_empty() {
            "can decrypt everything".to_string()
        } else {
            format!("CANNOT decrypt keys {missing:?}")
        };
        println!(
            "  {} v{} keys {:?} (heartbeat {}): {verdict}",
            instance.id,
            instance.version,
            instance.key_ids,
            instance.heartbeat_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    if instances.is_empty() {
        println!("  (none running)");
    }
    Ok(())
}

/// Re-encrypts every credential not under the primary key; returns how many it moved.
pub async fn rotate(store: &Arc<dyn Store>, vault: Vault, batch: u32) -> anyhow::Result<i64> {
    let primary = vault.ring().primary_id();
    let total: i64 =
        store.credential_key_usage().await?.iter().filter(|u| u.key_id != primary).map(|u| u.credentials).sum();
    eprintln!("==> re-encrypting {total} credentials under key {primary}");
    let (mut done, mut failed) = (0i64, BTreeSet::new());
    loop {
        let rows = store.credentials_to_rewrap(primary, batch.max(1) + failed.len() as u32).await?;
        let pending: Vec<_> = rows.into_iter().filter(|c| !failed.contains(&c.connection_id)).collect();
        if pending.is_empty() {
            break;
        }
        let before = done;
        for credential in pending {
            let aad = token_set_aad(credential.tenant_id, credential.connection_id);
            match vault.rewrap(&credential.ciphertext, &aad) {
                // A concurrent refresh wins the version guard; its write is already under the
                // primary key, so the row simply drops out of the next batch.
                Ok(blob) => {
                    if store.rewrap_credential(credential.connection_id, credential.version, primary, blob).await? {
                        done += 1;
                    }
                }
                Err(e) => {
                    eprintln!(
                        "\n    credential of connection {} cannot be re-encrypted: {e}",
                        credential.connection_id
                    );
                    failed.insert(credential.connection_id);
                }
            }
            eprint!("\r    {done}/{total} re-encrypted, {} failed", failed.len());
            let _ = std::io::stderr().flush();
        }
        if done == before {
            // Every row of this pass is being refreshed right now (its lease is held): let the
            // refresh finish, then take the row again.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    eprintln!();
    if !failed.is_empty() {
        bail!(
            "{} credentials could not be re-encrypted (their key is not loaded, or they are corrupt); see above",
            failed.len()
        );
    }
    eprintln!("==> every credential is under key {primary}");
    Ok(done)
}

/// Refuses to retire a key that is primary or still encrypts a credential.
pub async fn retire(store: &Arc<dyn Store>, ring: &KeyRing, id: u32) -> anyhow::Result<()> {
    if id == ring.primary_id() {
        bail!("key {id} is the primary key: move another key first in PATCHBAY_VAULT_KEYS, deploy, and run `patchbay vault rotate`");
    }
    let users: i64 = store.credential_key_usage().await?.iter().filter(|u| u.key_id == id).map(|u| u.credentials).sum();
    if users > 0 {
        bail!("key {id} still encrypts {users} credentials: run `patchbay vault rotate` first");
    }
    println!("key {id} encrypts nothing: remove it from PATCHBAY_VAULT_KEYS on every instance");
    Ok(())
}
