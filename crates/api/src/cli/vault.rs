//! `patchbay vault generate-key | status | rotate | retire`: the key ring's lifecycle.
//! Rotation across a fleet: add the new key second everywhere, then move it first, then
//! `rotate` re-encrypts online, then `retire` the old key once nothing uses it.

use crate::config::Settings;
use crate::database::Access;
use anyhow::Context;
use patchbay_store::Store;
use patchbay_sync::rekey::{self, RecordFailure};
use patchbay_sync::seal::Sealer;
use patchbay_token_vault::keys::{self, RotateProgress};
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
    /// Re-encrypt every credential, synced record, webhook source and event endpoint secret and
    /// inbox body under the primary key, in batches, online and resumable (run it again after an
    /// interruption: it takes what is left).
    Rotate {
        /// Credentials (then records, then webhook ciphertexts) per batch.
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
    let store = crate::database::open(&settings.database, settings.database.run_migrations, Access::Shared)
        .await
        .context("opening the database (PATCHBAY_DATABASE_URL)")?;
    let result = match command {
        VaultCommand::Status => status(&store, &ring).await,
        VaultCommand::Rotate { batch } => rotate(&store, &Vault::new(ring), batch).await.map(|_| ()),
        VaultCommand::Retire { id } => retire(&store, &ring, id).await,
        VaultCommand::GenerateKey { .. } => unreachable!("handled above"),
    };
    store.close().await;
    result
}

async fn status(store: &Arc<dyn Store>, ring: &KeyRing) -> anyhow::Result<()> {
    println!("key ring (this process): {:?}, primary {}", ring.ids(), ring.primary_id());
    let usage = keys::key_usage(store.as_ref()).await?;
    println!("ciphertexts per key id:");
    for (key_id, count) in &usage {
        let loaded = if ring.contains(*key_id) { "" } else { "  <- NOT in this key ring" };
        println!(
            "  key {key_id:>4}: {} credentials, {} synced records, {} pending connects, {} webhook ciphertexts{loaded}",
            count.credentials, count.records, count.pending_verifiers, count.webhooks
        );
    }
    if usage.is_empty() {
        println!("  (none)");
    }
    let needed: BTreeSet<u32> = usage.keys().copied().collect();
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

/// What a [`rotate`] moved to the primary key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rotated {
    pub credentials: i64,
    pub records: i64,
    /// Webhook source secrets and inbox bodies.
    pub webhooks: i64,
}

/// Re-encrypts every credential, then every synced record, then every webhook source secret and
/// inbox body, not under the primary key, with a progress line each; returns how many it moved. Records are re-sealed with their keyed hash
/// recomputed under the primary key, so a later sync still recognises unchanged records.
pub async fn rotate(store: &Arc<dyn Store>, vault: &Vault, batch: u32) -> anyhow::Result<Rotated> {
    let primary = vault.ring().primary_id();
    eprintln!("==> re-encrypting credentials under key {primary}");
    let moved = keys::rotate(store.as_ref(), vault, batch, |p: RotateProgress, failure| {
        if let Some((connection, error)) = failure {
            eprintln!("\n    credential of connection {connection} cannot be re-encrypted: {error}");
        }
        eprint!("\r    {}/{} re-encrypted, {} failed", p.done, p.total, p.failed);
        let _ = std::io::stderr().flush();
    })
    .await;
    eprintln!();
    let credentials = moved?;
    eprintln!("==> every credential is under key {primary}");
    eprintln!("==> re-encrypting synced records under key {primary}");
    let sealer = Sealer::new(vault.clone());
    let mut last = RotateProgress::default();
    let mut calls = 0_u64;
    let moved = rekey::rotate_records(store.as_ref(), &sealer, batch, |p: RotateProgress, failure| {
        if let Some(RecordFailure { kind, id, error }) = failure {
            eprintln!("\n    {kind} record {id} cannot be re-encrypted: {error}");
        }
        // Redrawn every 100 records: a million-record rotation should not spend its time on stderr.
        calls += 1;
        last = p;
        if calls % 100 == 1 {
            eprint!("\r    {}/{} re-encrypted, {} failed", p.done, p.total, p.failed);
            let _ = std::io::stderr().flush();
        }
    })
    .await;
    eprintln!("\r    {}/{} re-encrypted, {} failed", last.done, last.total, last.failed);
    let records = moved?;
    eprintln!("==> every synced record is under key {primary}");
    eprintln!("==> re-encrypting webhook and endpoint secrets and inbox bodies under key {primary}");
    let moved = patchbay_webhooks::rewrap_webhooks(store.as_ref(), vault, batch, |p, failure| {
        if let Some(f) = failure {
            eprintln!("\n    webhook {} cannot be re-encrypted: {}", f.what, f.error);
        }
        if (p.moved + p.failed) % 100 <= 1 {
            eprint!("\r    {} re-encrypted, {} failed", p.moved, p.failed);
            let _ = std::io::stderr().flush();
        }
    })
    .await?;
    eprintln!("\r    {} re-encrypted, {} failed", moved.moved, moved.failed);
    if moved.failed > 0 {
        anyhow::bail!(
            "{} webhook ciphertexts could not be re-encrypted (their key is not loaded, or they are corrupt)",
            moved.failed
        );
    }
    eprintln!("==> every webhook secret and inbox body is under key {primary}");
    Ok(Rotated { credentials, records, webhooks: moved.moved })
}

/// Refuses to retire a key that is primary or still encrypts a credential, a synced record, a
/// pending connect, a webhook source secret or an inbox body.
pub async fn retire(store: &Arc<dyn Store>, ring: &KeyRing, id: u32) -> anyhow::Result<()> {
    keys::check_retire(store.as_ref(), ring, id).await?;
    println!("key {id} encrypts nothing: remove it from PATCHBAY_VAULT_KEYS on every instance");
    Ok(())
}
