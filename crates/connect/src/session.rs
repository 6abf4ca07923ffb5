//! Connect sessions: created by the app, shown on the confirmation page, consumed once by the
//! browser's POST, which answers the redirect to the provider.

use crate::targets::{OpenerOrigin, ReturnTo};
use crate::{random_token, sha256, Connect, ConnectError, SESSION_TTL_MINUTES, STATE_TTL_MINUTES};
use chrono::{DateTime, Utc};
use patchbay_oauth::{Pkce, ProviderConfig, ProviderId};
use patchbay_store::{
    ConnectMode, ConnectSession, ConnectionId, EndUser, NewConnectSession, OAuthState, TenantScope, UserId,
};
use patchbay_token_vault::{Aad, Purpose};
use secrecy::ExposeSecret;
use url::Url;

/// The longest `end_user` field accepted.
const MAX_END_USER: usize = 200;

/// What the app asks for (the API layer has already resolved the user).
#[derive(Clone, Debug)]
pub struct SessionRequest {
    pub scope: TenantScope,
    pub user_id: UserId,
    pub provider: ProviderId,
    pub mode: ConnectMode,
    pub return_to: Option<String>,
    pub opener_origin: Option<String>,
    pub reconnect: Option<ConnectionId>,
    pub end_user: EndUser,
}

/// A created session: its token is shown once.
#[derive(Debug)]
pub struct CreatedSession {
    pub session: ConnectSession,
    pub token: String,
    pub connect_url: Url,
}

/// What the confirmation page shows before anything is consumed.
#[derive(Clone, Debug)]
pub struct Confirmation {
    pub session: ConnectSession,
    pub app_name: String,
    /// Who the account will be connected for.
    pub end_user: String,
    pub provider_name: &'static str,
    /// In plain words, what Patchbay will read.
    pub reads: Vec<&'static str>,
    /// In plain words, what Patchbay will change (empty without write-back).
    pub writes: Vec<&'static str>,
    /// Where the form's redirect goes (for the page's `form-action`).
    pub provider_origin: String,
}

/// The per-state cookie that binds a callback to the browser that started the connect.
#[derive(Clone, Debug)]
pub struct StateCookie {
    pub name: String,
    pub value: String,
    pub max_age_seconds: i64,
    pub secure: bool,
}

impl StateCookie {
    /// The `Set-Cookie` value.
    pub fn header(&self) -> String {
        format!(
            "{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            self.name,
            self.value,
            self.max_age_seconds,
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that deletes the cookie `name`.
    pub fn clearing(name: &str, secure: bool) -> String {
        format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}", if secure { "; Secure" } else { "" })
    }
}

/// The answer to `POST /connect/{token}`.
#[derive(Debug)]
pub struct ProviderRedirect {
    pub location: Url,
    pub cookie: StateCookie,
    /// Popup sessions keep their opener on the way to the provider (COOP `unsafe-none`).
    pub keep_opener: bool,
}

/// The per-state cookie's name: `__Host-` prefixed over https.
pub fn cookie_name(state_sha256: &[u8; 32], secure: bool) -> String {
    let short = hex::encode(&state_sha256[..4]);
    if secure {
        format!("__Host-pb_oauth_{short}")
    } else {
        format!("pb_oauth_{short}")
    }
}

pub(crate) fn pkce_aad(state_sha256: &[u8; 32]) -> Aad {
    Aad::new(Purpose::PkceVerifier).with("state", state_sha256)
}

fn bounded(field: &Option<String>) -> Result<(), ConnectError> {
    match field {
        Some(text) if text.chars().count() > MAX_END_USER => Err(ConnectError::EndUserTooLong),
        _ => Ok(()),
    }
}

impl Connect {
    /// Starts a connect: checks the provider, the way back and a reconnect target, and stores a
    /// session whose token only the caller sees.
    pub async fn create_session(&self, request: SessionRequest) -> Result<CreatedSession, ConnectError> {
        self.provider(request.provider)?;
        bounded(&request.end_user.display_name)?;
        bounded(&request.end_user.email)?;
        let allowed = &self.settings.return_to_origins;
        // `return_to` is validated in every mode when given, so nothing unchecked is stored.
        let return_to = request.return_to.as_deref().map(|t| ReturnTo::parse(t, allowed)).transpose()?;
        let opener = request.opener_origin.as_deref().map(|t| OpenerOrigin::parse(t, allowed)).transpose()?;
        let (return_to, opener_origin) = match request.mode {
            ConnectMode::Redirect => (Some(return_to.ok_or(ConnectError::MissingReturnTo)?), None),
            ConnectMode::Popup => (return_to, Some(opener.ok_or(ConnectError::MissingOpenerOrigin)?)),
        };
        if let Some(id) = request.reconnect {
            let connection = self.store.get_connection(request.scope, id).await?;
            if connection.user_id != request.user_id || connection.provider != request.provider {
                return Err(ConnectError::NotFound);
            }
        }
        let (token, token_sha256) = random_token();
        let session = self
            .store
            .create_connect_session(NewConnectSession {
                token_sha256,
                tenant_id: request.scope.tenant_id(),
                user_id: request.user_id,
                provider: request.provider,
                mode: request.mode,
                return_to: return_to.map(|r| r.as_url().to_string()),
                opener_origin: opener_origin.map(|o| o.as_str().to_string()),
                reconnect_connection_id: request.reconnect,
                end_user: request.end_user,
                expires_at: Utc::now() + chrono::Duration::minutes(SESSION_TTL_MINUTES),
            })
            .await?;
        let mut connect_url = self.settings.public_url.clone();
        connect_url.set_path(&format!("/connect/{token}"));
        connect_url.set_query(None);
        Ok(CreatedSession { session, token, connect_url })
    }

    /// What the confirmation page shows for a connect link; never consumes it (link scanners
    /// prefetch URLs). An expired or used link is [`ConnectError::LinkUsed`].
    pub async fn confirmation(&self, token: &str, now: DateTime<Utc>) -> Result<Confirmation, ConnectError> {
        let session = self.store.peek_connect_session(&sha256(token), now).await?.ok_or(ConnectError::LinkUsed)?;
        let config = self.provider(session.provider)?;
        let end_user = match (&session.end_user.display_name, &session.end_user.email) {
            (Some(name), Some(email)) => format!("{name} ({email})"),
            (Some(name), None) => name.clone(),
            (None, Some(email)) => email.clone(),
            (None, None) => self.store.get_user(TenantScope::new(session.tenant_id), session.user_id).await?.subject,
        };
        let (provider_name, reads, writes) = plain_words(config);
        Ok(Confirmation {
            app_name: self.settings.app_name.clone(),
            end_user,
            provider_name,
            reads,
            writes,
            provider_origin: config.authorize_url.origin().ascii_serialization(),
            session,
        })
    }

    /// Consumes the session and prepares the redirect to the provider: a single-use state with a
    /// sealed PKCE verifier, and the cookie that binds the callback to this browser.
    pub async fn begin(&self, token: &str, now: DateTime<Utc>) -> Result<ProviderRedirect, ConnectError> {
        let session = self.store.consume_connect_session(&sha256(token), now).await?.ok_or(ConnectError::LinkUsed)?;
        let config = self.provider(session.provider)?;
        let (state, state_sha256) = random_token();
        let (binding, binding_sha256) = random_token();
        let redirect = self.redirect_uri(config.id);
        let (challenge, sealed_verifier) = if config.uses_pkce() {
            let pkce = Pkce::generate();
            let sealed =
                self.tokens.vault().encrypt(pkce.verifier.expose_secret().as_bytes(), &pkce_aad(&state_sha256));
            (Some(pkce.challenge.clone()), Some(sealed))
        } else {
            (None, None)
        };
        self.store
            .create_oauth_state(OAuthState {
                state_sha256,
                provider: config.id,
                tenant_id: session.tenant_id,
                user_id: session.user_id,
                session_id: session.id,
                pkce_verifier: sealed_verifier,
                binding_sha256,
                redirect_uri: redirect.to_string(),
                created_at: now,
                expires_at: now + chrono::Duration::minutes(STATE_TTL_MINUTES),
            })
            .await?;
        tracing::info!(provider = config.id.as_str(), "connect started");
        Ok(ProviderRedirect {
            location: config.authorize_url(&state, challenge.as_deref(), &redirect),
            cookie: StateCookie {
                name: cookie_name(&state_sha256, self.secure()),
                value: binding,
                max_age_seconds: STATE_TTL_MINUTES * 60,
                secure: self.secure(),
            },
            keep_opener: session.mode == ConnectMode::Popup,
        })
    }
}

/// The provider's name and, in plain words, what its configured scopes let Patchbay do.
fn plain_words(config: &ProviderConfig) -> (&'static str, Vec<&'static str>, Vec<&'static str>) {
    let has = |scope: &str| config.scopes.iter().any(|s| s == scope);
    match config.id {
        ProviderId::Google => {
            let mut reads = vec!["your name and email address"];
            if config.scopes.iter().any(|s| s.contains("calendar")) {
                reads.push("your calendars and their events");
            }
            let writes = if has("https://www.googleapis.com/auth/calendar")
                || has("https://www.googleapis.com/auth/calendar.events")
            {
                vec!["events in your calendars"]
            } else {
                Vec::new()
            };
            ("Google", reads, writes)
        }
        ProviderId::Monday => {
            let reads = vec!["your name, email address and account", "your boards, their items, columns and groups"];
            let mut writes = Vec::new();
            if has("webhooks:write") {
                writes.push("webhooks on your boards, so changes arrive quickly");
            }
            if has("boards:write") {
                writes.push("column values of items on your boards");
            }
            ("monday.com", reads, writes)
        }
    }
}
