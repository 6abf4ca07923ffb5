//! Finishing a connect at `GET /oauth/{provider}/callback`: the state is consumed first, then
//! provider, cookie binding and `iss` are checked before the code goes anywhere; then exchange,
//! identity, scope check, and one saving transaction.

use crate::session::{cookie_name, pkce_aad};
use crate::{sha256, Connect, ConnectError};
use chrono::Utc;
use patchbay_oauth::{AccountIdentity, MondayFlow, ProviderConfig, ProviderId, TokenSet};
use patchbay_store::JobPayload;
use patchbay_store::{
    ConnectOutcome, ConnectSession, Connection, ConnectionId, ConnectionStatus, NewAuditEvent, OAuthState, SaveGrant,
    StoreError, SyncInitialPayload, TenantScope, TokenFlow,
};
use secrecy::SecretString;
use url::Url;

/// What the callback's query carried. Ownership never comes from here (security.md B7).
#[derive(Default)]
pub struct CallbackQuery {
    pub states: Vec<String>,
    pub code: Option<SecretString>,
    pub error: Option<String>,
    pub iss: Vec<String>,
}

impl CallbackQuery {
    /// Parses a raw query string; unknown parameters are ignored.
    pub fn parse(raw: &str) -> Self {
        let mut query = Self::default();
        for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            match key.as_ref() {
                "state" => query.states.push(value.into_owned()),
                "code" => query.code = Some(SecretString::from(value.into_owned())),
                "error" => query.error = Some(value.into_owned()),
                "iss" => query.iss.push(value.into_owned()),
                _ => {}
            }
        }
        query
    }
}

/// A callback whose state was valid: the session it belongs to and how it ended (already
/// recorded on the session).
#[derive(Debug)]
pub struct Finished {
    pub session: ConnectSession,
    pub outcome: Result<ConnectionId, ConnectError>,
    /// The state cookie to clear on the answer.
    pub cookie_name: String,
}

impl Connect {
    /// Handles a callback. `Err` means no session could be found for it (no valid state, or the
    /// store is down): nothing was stored and the token endpoint was never called. `cookies`
    /// gives every value the request carries for a cookie name; `client_ip` goes into the audit
    /// record.
    pub async fn callback(
        &self,
        provider: &str,
        query: CallbackQuery,
        cookies: impl Fn(&str) -> Vec<String>,
        client_ip: Option<String>,
    ) -> Result<Finished, ConnectError> {
        let [state] = query.states.as_slice() else {
            return Err(invalid_state(provider));
        };
        let state_sha256 = sha256(state);
        let row =
            self.store.consume_oauth_state(&state_sha256, Utc::now()).await?.ok_or_else(|| invalid_state(provider))?;
        let session = self.store.get_connect_session(TenantScope::new(row.tenant_id), row.session_id).await?;
        let cookie = cookie_name(&state_sha256, self.secure());
        let outcome = self.checked_finish(provider, &row, &session, query, &cookie, cookies, client_ip).await;
        self.record(&session, &outcome).await;
        Ok(Finished { session, outcome, cookie_name: cookie })
    }

    #[allow(clippy::too_many_arguments)]
    async fn checked_finish(
        &self,
        provider: &str,
        row: &OAuthState,
        session: &ConnectSession,
        query: CallbackQuery,
        cookie: &str,
        cookies: impl Fn(&str) -> Vec<String>,
        client_ip: Option<String>,
    ) -> Result<ConnectionId, ConnectError> {
        if provider != row.provider.as_str() {
            // Mix-up defence: a state made for one provider arriving at another's callback.
            tracing::warn!(expected = %row.provider, "callback at the wrong provider's redirect URI");
            return Err(ConnectError::ProviderMismatch);
        }
        if !cookies(cookie).iter().any(|value| sha256(value) == row.binding_sha256) {
            tracing::warn!(provider = %row.provider, "callback without this browser's state cookie");
            return Err(ConnectError::InvalidBinding);
        }
        let config = self.provider(row.provider)?;
        // RFC 9207: a missing `iss` where the provider always sends one, more than one, or one
        // that is not exactly the expected issuer aborts before the code goes anywhere.
        if let Err(problem) = config.check_iss(&query.iss) {
            tracing::warn!(provider = %row.provider, problem = problem.reason(), "authorization response with a bad `iss`");
            return Err(ConnectError::IssuerMismatch);
        }
        if let Some(error) = query.error {
            let error: String = error.chars().take(64).collect();
            tracing::info!(provider = %row.provider, error = %error, "provider returned an error");
            return Err(if error == "access_denied" {
                ConnectError::AccessDenied
            } else {
                ConnectError::ProviderError
            });
        }
        let code = query.code.ok_or(ConnectError::MissingCode)?;
        let verifier = match &row.pkce_verifier {
            Some(sealed) => Some(
                self.tokens
                    .vault()
                    .decrypt_string(sealed, &pkce_aad(&row.state_sha256))
                    .map_err(|e| ConnectError::Internal(format!("PKCE verifier: {e}")))?,
            ),
            None => None,
        };
        let redirect = Url::parse(&row.redirect_uri).map_err(|e| ConnectError::Internal(e.to_string()))?;
        let tokens = self.oauth.exchange_code(config, &code, verifier.as_ref(), &redirect).await.map_err(|e| {
            tracing::warn!(provider = %row.provider, reason = e.reason(), "code exchange failed");
            ConnectError::ExchangeFailed
        })?;
        let identity = self.oauth.identity(config, &tokens.access_token).await.map_err(|e| {
            tracing::warn!(provider = %row.provider, reason = e.reason(), "identity lookup failed");
            ConnectError::IdentityFailed
        })?;
        let connection = self.save(config, session, tokens, identity, client_ip).await?;
        match connection.status {
            ConnectionStatus::InsufficientScope => Err(ConnectError::InsufficientScope(connection.id)),
            _ => Ok(connection.id),
        }
    }

    /// Stores the connection, its sealed credential, the event, the audit record and the initial
    /// sync in one transaction. A concurrent callback for the same account that inserted first
    /// turns this into an update of its row.
    async fn save(
        &self,
        config: &ProviderConfig,
        session: &ConnectSession,
        mut tokens: TokenSet,
        identity: AccountIdentity,
        client_ip: Option<String>,
    ) -> Result<Connection, ConnectError> {
        let scope = TenantScope::new(session.tenant_id);
        for attempt in 0..2 {
            let existing = self.existing(scope, session, config.id, &identity).await?;
            let connection_id = existing.as_ref().map_or_else(ConnectionId::new, |c| c.id);
            if tokens.refresh_token.is_none() {
                // Google sends a refresh token only on first consent: keep the stored one.
                if let Some(old) = existing.as_ref() {
                    if let Ok(credential) = self.store.get_credential(scope, old.id).await {
                        tokens.refresh_token = self.tokens.open(&credential).ok().and_then(|t| t.refresh_token);
                    }
                }
            }
            let missing = missing_scopes(config, &tokens.scopes);
            let (status, reason) = if missing.is_empty() {
                (ConnectionStatus::Active, None)
            } else {
                (ConnectionStatus::InsufficientScope, Some(format!("missing scopes: {}", missing.join(" "))))
            };
            let now = Utc::now();
            let initial_job = (status == ConnectionStatus::Active)
                .then(|| SyncInitialPayload { tenant_id: session.tenant_id, connection_id }.job(now));
            let grant = SaveGrant {
                connection_id,
                is_new: existing.is_none(),
                tenant_id: session.tenant_id,
                user_id: session.user_id,
                provider: config.id,
                provider_account_id: identity.account_id.clone(),
                provider_user_id: identity.user_id.clone(),
                account_name: identity.name.clone(),
                account_email: identity.email.clone(),
                scopes: tokens.scopes.clone(),
                status,
                status_reason: reason,
                credential: self.tokens.seal(session.tenant_id, connection_id, token_flow(config), &tokens),
                initial_job,
                audit: NewAuditEvent {
                    tenant_id: Some(session.tenant_id),
                    actor: format!("user:{}", session.user_id),
                    action: "connection.connect".into(),
                    target: Some(format!("connection:{connection_id}")),
                    request_id: None,
                    ip: client_ip.clone(),
                },
                now,
            };
            match self.store.save_grant(grant).await {
                Ok(connection) => return Ok(connection),
                Err(StoreError::Conflict(_)) if attempt == 0 => continue,
                Err(e) => {
                    tracing::error!(error = %e, "saving the connection failed");
                    return Err(ConnectError::Store(e));
                }
            }
        }
        Err(ConnectError::Internal("the connection could not be saved".into()))
    }

    /// The connection this grant updates: the reconnect target (which must be the same provider
    /// account), else this user's connection to the same account, if any.
    async fn existing(
        &self,
        scope: TenantScope,
        session: &ConnectSession,
        provider: ProviderId,
        identity: &AccountIdentity,
    ) -> Result<Option<Connection>, ConnectError> {
        match session.reconnect_connection_id {
            Some(id) => {
                let connection =
                    self.store.get_connection(scope, id).await.map_err(|_| ConnectError::ConnectionNotFound)?;
                if connection.provider != provider || connection.provider_account_id != identity.account_id {
                    return Err(ConnectError::AccountMismatch);
                }
                Ok(Some(connection))
            }
            None => Ok(self
                .store
                .find_connection_by_account(scope, session.user_id, provider, &identity.account_id)
                .await?),
        }
    }

    /// Records how the session ended (the app polls it). A partial grant is recorded as
    /// connected: the connection exists, and its status says `insufficient_scope`.
    async fn record(&self, session: &ConnectSession, outcome: &Result<ConnectionId, ConnectError>) {
        let stored = match outcome {
            Ok(id) => ConnectOutcome::Connected(*id),
            Err(ConnectError::InsufficientScope(id)) => ConnectOutcome::Connected(*id),
            Err(e) => ConnectOutcome::Failed(e.code().to_string()),
        };
        if let Err(e) = self.store.finish_connect_session(session.id, stored, Utc::now()).await {
            tracing::warn!(error = %e, "could not record the connect outcome");
        }
        match outcome {
            Ok(id) => tracing::info!(provider = %session.provider, connection = %id, "connect succeeded"),
            Err(e) => tracing::info!(provider = %session.provider, error = e.code(), "connect failed"),
        }
    }
}

/// Counts and logs a callback whose state is missing, repeated, unknown, used or expired
/// (security.md B10).
fn invalid_state(provider: &str) -> ConnectError {
    metrics::counter!("patchbay_oauth_invalid_state_total").increment(1);
    tracing::warn!(provider = %provider.chars().take(16).collect::<String>(), "callback with an unknown, used or expired state");
    ConnectError::InvalidState
}

/// The token flow a provider's grants are issued under.
fn token_flow(config: &ProviderConfig) -> TokenFlow {
    match config.monday_flow {
        None => TokenFlow::Google,
        Some(MondayFlow::V2) => TokenFlow::MondayV2,
        Some(MondayFlow::Legacy) => TokenFlow::MondayLegacy,
    }
}

/// Google reports `email` as its long form; either satisfies the requirement.
fn missing_scopes(config: &ProviderConfig, granted: &[String]) -> Vec<String> {
    let has = |scope: &str| {
        granted.iter().any(|g| g == scope)
            || (scope == "email" && granted.iter().any(|g| g == "https://www.googleapis.com/auth/userinfo.email"))
    };
    config.required_scopes.iter().filter(|s| !has(s)).cloned().collect()
}
