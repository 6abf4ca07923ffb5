//! `vault rotate` for webhook material: every source secret, event endpoint secret and inbox body
//! sealed under a key other than the primary is opened with its AAD and sealed again under the
//! primary, one compare-and-set write each (a row changed meanwhile, e.g. a secret rotation, is
//! read again).

use crate::inbox::body_aad;
use crate::out::endpoint_secret_aad;
use crate::secret::secret_aad;
use patchbay_store::{StoreError, WebhookCiphertext, WebhookProcessingStore};
use patchbay_token_vault::Vault;
use std::collections::HashSet;

/// What a rewrap did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rewrapped {
    /// Ciphertexts now under the primary key.
    pub moved: i64,
    /// Ciphertexts that do not open (their key is not loaded, or they are corrupt).
    pub failed: i64,
}

/// One ciphertext that could not be re-encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewrapFailure {
    /// `secret <id>`, `endpoint secret <id>` or `body <id>`.
    pub what: String,
    pub error: String,
}

/// Re-encrypts webhook ciphertexts under the primary key, `batch` at a time, calling
/// `progress` after each batch with what was done so far and any failure.
pub async fn rewrap_webhooks(
    store: &dyn WebhookProcessingStore,
    vault: &Vault,
    batch: u32,
    mut progress: impl FnMut(Rewrapped, Option<RewrapFailure>),
) -> Result<Rewrapped, StoreError> {
    let primary = vault.ring().primary_id();
    let batch = batch.max(1);
    let mut done = Rewrapped::default();
    let mut failed: HashSet<String> = HashSet::new();
    loop {
        // Failed rows stay under their old key, so each pass asks for enough to get past them.
        let limit = batch.saturating_add(u32::try_from(failed.len()).unwrap_or(u32::MAX));
        let found = store.webhook_ciphertexts_not_under(primary, limit).await?;
        let fresh: Vec<_> = found.iter().filter(|c| !failed.contains(&name(c))).collect();
        if fresh.is_empty() {
            return Ok(done);
        }
        for old in fresh {
            let aad = match old {
                WebhookCiphertext::Secret { source_id, tenant_id, secret_id, .. } => {
                    secret_aad(*tenant_id, *source_id, *secret_id)
                }
                WebhookCiphertext::EndpointSecret { endpoint_id, tenant_id, secret_id, .. } => {
                    endpoint_secret_aad(*tenant_id, *endpoint_id, *secret_id)
                }
                WebhookCiphertext::Body { event_id, tenant_id, .. } => body_aad(*tenant_id, *event_id),
            };
            match vault.rewrap(old.ciphertext(), &aad) {
                Ok(sealed) => {
                    if store.rewrap_webhook_ciphertext(old, primary, &sealed).await? {
                        done.moved += 1;
                    }
                    progress(done, None);
                }
                Err(e) => {
                    let what = name(old);
                    failed.insert(what.clone());
                    done.failed += 1;
                    progress(done, Some(RewrapFailure { what, error: e.to_string() }));
                }
            }
        }
    }
}

fn name(c: &WebhookCiphertext) -> String {
    match c {
        WebhookCiphertext::Secret { secret_id, .. } => format!("secret {secret_id}"),
        WebhookCiphertext::EndpointSecret { secret_id, .. } => format!("endpoint secret {secret_id}"),
        WebhookCiphertext::Body { event_id, .. } => format!("body {}", event_id.0),
    }
}
