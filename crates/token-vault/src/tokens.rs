//! Token sets at rest and fresh access tokens (architecture §4.2).
//!
//! A token set is sealed by the vault with associated data naming its tenant and connection,
//! so a ciphertext copied to another row fails. `fresh_access_token` refreshes as a single
//! flight: one future per connection in this process, and across instances a short lease on
//! the credential row (one UPDATE, no transaction held); the provider call happens outside
//! any transaction and its result is written only if the row's version is unchanged.

use crate::{Aad, Purpose, Vault, VaultError};
use chrono::{DateTime, Utc};
use patchbay_oauth::{ErrorClass, OAuthClient, OAuthError, ProviderId, Registry, TokenSet};
use patchbay_store::{
    ConnectionId, ConnectionStatus, Credential, CredentialStore, NewCredential, StatusChange, StoreError, TenantId,
    TenantScope, TokenFlow,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

/// How long one instance holds the refresh lease (longer than a token call can take).
const REFRESH_LEASE: Duration = Duration::from_secs(30);
/// How long a caller waits for another instance's refresh before giving up.
const LEASE_WAIT: Duration = Duration::from_secs(15);

/// Why no fresh token could be produced.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("connection not found")]
    NotFound,
    /// The grant is dead; the connection was marked (`needs_reauth` / `revoked`).
    #[error("the connection needs to be re-authorized ({0})")]
    NeedsReauth(String),
    /// The stored credential cannot be decrypted. Never flips the connection's status.
    #[error("the stored credential cannot be decrypted: {0}")]
    Decrypt(#[from] VaultError),
    /// The provider failed in a way worth retrying later.
    #[error("the provider failed: {0}")]
    Provider(OAuthError),
    /// Another instance holds the refresh lease and did not finish in time.
    #[error("another instance is refreshing this token")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The plaintext stored under the vault (never logged, never serialised elsewhere).
#[derive(Serialize, Deserialize)]
struct Sealed {
    access_token: String,
    refresh_token: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    scopes: Vec<String>,
}

/// Seals, opens and refreshes token sets.
pub struct Tokens {
    store: Arc<dyn CredentialStore>,
    vault: Vault,
    oauth: Arc<OAuthClient>,
    registry: Registry,
    owner: String,
    flights: Mutex<HashMap<ConnectionId, Arc<tokio::sync::Mutex<()>>>>,
}

/// The associated data of a connection's token set.
pub fn token_set_aad(tenant: TenantId, connection: ConnectionId) -> Aad {
    Aad::connection(Purpose::TokenSet, tenant.0.as_bytes(), connection.0.as_bytes())
}

impl Tokens {
    /// `owner` names this process in refresh leases (the instance id).
    pub fn new(
        store: Arc<dyn CredentialStore>,
        vault: Vault,
        oauth: Arc<OAuthClient>,
        registry: Registry,
        owner: String,
    ) -> Self {
        Self { store, vault, oauth, registry, owner, flights: Mutex::new(HashMap::new()) }
    }

    /// The vault that seals token sets (and the connect flow's PKCE verifiers).
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Encrypts a token set for one connection's credential row.
    pub fn seal(&self, tenant: TenantId, connection: ConnectionId, flow: TokenFlow, set: &TokenSet) -> NewCredential {
        let sealed = Sealed {
            access_token: set.access_token.expose_secret().to_string(),
            refresh_token: set.refresh_token.as_ref().map(|t| t.expose_secret().to_string()),
            expires_at: set.expires_at,
            scopes: set.scopes.clone(),
        };
        let plaintext = Zeroizing::new(serde_json::to_vec(&sealed).expect("a token set serialises"));
        drop(sealed);
        NewCredential {
            flow,
            key_id: self.vault.ring().primary_id(),
            ciphertext: self.vault.encrypt(&plaintext, &token_set_aad(tenant, connection)),
            access_expires_at: set.expires_at,
        }
    }

    /// Decrypts a credential. A failure is counted and logged, and changes nothing else.
    pub fn open(&self, credential: &Credential) -> Result<TokenSet, TokenError> {
        let aad = token_set_aad(credential.tenant_id, credential.connection_id);
        let plaintext = self.vault.decrypt(&credential.ciphertext, &aad).inspect_err(|e| {
            metrics::counter!("patchbay_vault_decrypt_failures_total").increment(1);
            tracing::error!(connection = %credential.connection_id, key_id = credential.key_id, error = %e, "credential decryption failed");
        })?;
        let sealed: Sealed =
            serde_json::from_slice(&plaintext).map_err(|_| TokenError::Decrypt(VaultError::Authentication))?;
        Ok(TokenSet {
            access_token: SecretString::from(sealed.access_token),
            refresh_token: sealed.refresh_token.map(SecretString::from),
            expires_at: sealed.expires_at,
            scopes: sealed.scopes,
        })
    }

    fn margin(&self, provider: ProviderId) -> chrono::Duration {
        let margin = self.registry.get(provider).map_or(Duration::from_secs(300), |p| p.refresh_margin);
        chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::minutes(5))
    }

    fn is_fresh(&self, provider: ProviderId, set: &TokenSet) -> bool {
        set.expires_at.is_none_or(|at| at > Utc::now() + self.margin(provider))
    }

    fn flight(&self, id: ConnectionId) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if flights.len() > 10_000 {
            flights.retain(|_, m| Arc::strong_count(m) > 1);
        }
        flights.entry(id).or_default().clone()
    }

    /// An access token valid for at least the refresh margin, refreshing it if needed.
    pub async fn fresh_access_token(&self, scope: TenantScope, id: ConnectionId) -> Result<SecretString, TokenError> {
        // One round trip: the credential's flow names its provider, and a tombstoned
        // connection has no credential.
        let credential = self.store.get_credential(scope, id).await.map_err(not_found)?;
        let provider = credential.flow.provider();
        let set = self.open(&credential)?;
        if self.is_fresh(provider, &set) {
            return Ok(set.access_token);
        }
        self.refresh(scope, id, provider, Some(credential.version)).await
    }

    /// Renews the token if it expires before `before`, however far that is beyond the refresh
    /// margin (the refresh sweep renews ahead of time, so syncs never wait on a refresh).
    /// Returns whether the token was due (renewed here, or by a sibling meanwhile).
    pub async fn refresh_if_expiring(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        before: DateTime<Utc>,
    ) -> Result<bool, TokenError> {
        let credential = self.store.get_credential(scope, id).await.map_err(not_found)?;
        if credential.access_expires_at.is_none_or(|at| at >= before) {
            return Ok(false);
        }
        self.refresh(scope, id, credential.flow.provider(), Some(credential.version)).await?;
        Ok(true)
    }

    /// Refreshes unless someone already did after `seen_version` (then returns theirs).
    /// `seen_version: None` forces a refresh (after a provider 401).
    pub async fn refresh(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        provider: ProviderId,
        seen_version: Option<i64>,
    ) -> Result<SecretString, TokenError> {
        let flight = self.flight(id);
        let _in_process = flight.lock().await;
        let deadline = tokio::time::Instant::now() + LEASE_WAIT;
        let mut seen_version = seen_version;
        loop {
            let credential = self.store.get_credential(scope, id).await.map_err(not_found)?;
            let set = self.open(&credential)?;
            // A sibling (this process or another instance) refreshed while we waited.
            if seen_version.is_some_and(|v| credential.version != v) && self.is_fresh(provider, &set) {
                return Ok(set.access_token);
            }
            let now = Utc::now();
            let until = now + chrono::Duration::from_std(REFRESH_LEASE).unwrap_or(chrono::Duration::seconds(30));
            if self.store.try_lease_refresh(id, &self.owner, until, now).await? {
                // Re-read under the lease: a key rotation's rewrap or a sibling's write may have
                // landed between our read and the lease, and the write below is guarded by the
                // version we use now.
                let credential = self.store.get_credential(scope, id).await.map_err(not_found)?;
                let set = self.open(&credential)?;
                if seen_version.is_some_and(|v| credential.version != v) && self.is_fresh(provider, &set) {
                    self.store.release_refresh_lease(id, &self.owner).await?;
                    return Ok(set.access_token);
                }
                return self.refresh_holding_lease(scope, id, provider, credential, set).await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TokenError::Busy);
            }
            seen_version = Some(credential.version);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn refresh_holding_lease(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        provider: ProviderId,
        credential: Credential,
        set: TokenSet,
    ) -> Result<SecretString, TokenError> {
        let Some(config) = self.registry.get(provider) else {
            self.store.release_refresh_lease(id, &self.owner).await?;
            return Err(TokenError::NeedsReauth(format!("{provider} is not configured")));
        };
        let Some(refresh_token) = set.refresh_token.clone() else {
            // Nothing to refresh with (Monday legacy tokens never expire; a grant without a
            // refresh token cannot be renewed): the user must reconnect.
            self.store.release_refresh_lease(id, &self.owner).await?;
            return self.mark_dead(scope, id, ConnectionStatus::NeedsReauth, "no_refresh_token").await;
        };
        let outcome = self.oauth.refresh(config, &refresh_token).await;
        metrics::counter!("patchbay_token_refresh_total", "provider" => provider.as_str(), "outcome" => outcome_label(&outcome))
            .increment(1);
        match outcome {
            Ok(mut fresh) => {
                if fresh.refresh_token.is_none() {
                    fresh.refresh_token = Some(refresh_token.clone()); // providers that do not rotate keep the old one
                }
                self.write_refreshed(scope, id, &credential, &refresh_token, &fresh).await?;
                Ok(fresh.access_token)
            }
            Err(error) => {
                self.store.release_refresh_lease(id, &self.owner).await?;
                match error.class() {
                    ErrorClass::Terminal => {
                        // A sibling may have rotated the refresh token (or a reconnect stored a
                        // new grant) a moment ago: re-read once before declaring the grant dead.
                        // Only another refresh token counts — a changed version alone may be a
                        // re-encryption (`vault rotate`) of this same dead grant.
                        let now_stored = self.store.get_credential(scope, id).await.map_err(not_found)?;
                        if now_stored.version != credential.version {
                            let stored = self.open(&now_stored)?;
                            let same_grant = stored
                                .refresh_token
                                .as_ref()
                                .is_some_and(|t| t.expose_secret() == refresh_token.expose_secret());
                            if !same_grant {
                                return Ok(stored.access_token);
                            }
                        }
                        self.mark_dead(scope, id, ConnectionStatus::NeedsReauth, error.reason()).await
                    }
                    ErrorClass::Revoked => self.mark_dead(scope, id, ConnectionStatus::Revoked, error.reason()).await,
                    _ => Err(TokenError::Provider(error)),
                }
            }
        }
    }

    /// Stores a refreshed token set over the version it was read at. If the row changed
    /// meanwhile without a new grant (the same refresh token is still stored: a re-encryption),
    /// the write is repeated over the new version, so a provider-rotated refresh token is never
    /// dropped.
    async fn write_refreshed(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        read: &Credential,
        presented: &SecretString,
        fresh: &TokenSet,
    ) -> Result<(), TokenError> {
        let mut expected = read.version;
        for _ in 0..3 {
            let sealed = self.seal(read.tenant_id, id, read.flow, fresh);
            match self.store.store_refreshed(id, expected, sealed, Utc::now()).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_)) => {
                    let current = self.store.get_credential(scope, id).await.map_err(not_found)?;
                    let same_grant = self
                        .open(&current)?
                        .refresh_token
                        .is_some_and(|stored| stored.expose_secret() == presented.expose_secret());
                    if !same_grant {
                        // A reconnect stored a newer grant; it wins.
                        self.store.release_refresh_lease(id, &self.owner).await?;
                        return Ok(());
                    }
                    expected = current.version;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.store.release_refresh_lease(id, &self.owner).await?;
        Err(TokenError::Busy)
    }

    async fn mark_dead<T>(
        &self,
        scope: TenantScope,
        id: ConnectionId,
        status: ConnectionStatus,
        reason: &str,
    ) -> Result<T, TokenError> {
        // The store destroys the dead grant's ciphertext and announces the status in the same
        // transaction (`connection.needs_reauth` or `connection.revoked`).
        let change = StatusChange { status, reason: Some(reason.to_string()), actor: "system".into(), now: Utc::now() };
        self.store.set_connection_status(scope, id, change).await?;
        tracing::warn!(connection = %id, status = status.as_str(), reason, "grant is dead; the user must reconnect");
        Err(TokenError::NeedsReauth(reason.to_string()))
    }
}

fn outcome_label(outcome: &Result<TokenSet, OAuthError>) -> &'static str {
    match outcome {
        Ok(_) => "success",
        Err(e) => match e.class() {
            ErrorClass::Terminal | ErrorClass::Revoked => "terminal",
            ErrorClass::RateLimited { .. } => "rate_limited",
            _ => "transient",
        },
    }
}

fn not_found(error: StoreError) -> TokenError {
    match error {
        StoreError::NotFound => TokenError::NotFound,
        other => TokenError::Store(other),
    }
}
