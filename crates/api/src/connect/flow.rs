//! The steps of a connect: start (state, PKCE, cookie, redirect) and finish (exchange,
//! identity, scopes, save, answer the app). Ownership always comes from the stored state row,
//! never from the callback's query.

use super::{pages, random_token};
use crate::http::problem::{ApiError, ProblemCode};
use crate::state::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use patchbay_oauth::{AccountIdentity, ProviderConfig, ProviderId, TokenSet};
use patchbay_store::{
    ConnectMode, ConnectOutcome, ConnectSession, ConnectionId, ConnectionStatus, NewAuditEvent, NewJob, OAuthState,
    SaveGrant, StoreError, TenantScope,
};
use patchbay_token_vault::{Aad, Purpose};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// How long a state (and its cookie) is valid.
pub const STATE_TTL_MINUTES: i64 = 10;

/// The callback URL registered with each provider.
pub fn redirect_uri(public_url: &Url, provider: ProviderId) -> Url {
    let mut url = public_url.clone();
    url.set_path(&format!("/oauth/{}/callback", provider.as_str()));
    url.set_query(None);
    url
}

fn secure(public_url: &Url) -> bool {
    public_url.scheme() == "https"
}

/// The per-state cookie's name: `__Host-` prefixed over https.
pub fn cookie_name(state_sha256: &[u8; 32], public_url: &Url) -> String {
    let short = hex::encode(&state_sha256[..4]);
    if secure(public_url) {
        format!("__Host-pb_oauth_{short}")
    } else {
        format!("pb_oauth_{short}")
    }
}

fn pkce_aad(state_sha256: &[u8; 32]) -> Aad {
    Aad::new(Purpose::PkceVerifier).with("state", state_sha256)
}

/// Consumes a connect session's token and answers with the redirect to the provider.
pub async fn start(state: &AppState, session: ConnectSession) -> Response {
    let Some(config) = provider_config(state, &session.provider) else {
        return pages::error(StatusCode::BAD_REQUEST, "This provider is not enabled.");
    };
    let (oauth_state, state_sha256) = random_token();
    let (binding, binding_sha256) = random_token();
    let public_url = &state.settings.http.public_url;
    let redirect = redirect_uri(public_url, config.id);
    let (challenge, sealed_verifier) = if config.uses_pkce() {
        let pkce = patchbay_oauth::Pkce::generate();
        let sealed = state.tokens.vault().encrypt(pkce.verifier.expose_secret().as_bytes(), &pkce_aad(&state_sha256));
        (Some(pkce.challenge.clone()), Some(sealed))
    } else {
        (None, None)
    };
    let now = Utc::now();
    let row = OAuthState {
        state_sha256,
        provider: config.id.as_str().to_string(),
        tenant_id: session.tenant_id,
        user_id: session.user_id,
        session_id: session.id,
        pkce_verifier: sealed_verifier,
        binding_sha256,
        redirect_uri: redirect.to_string(),
        created_at: now,
        expires_at: now + chrono::Duration::minutes(STATE_TTL_MINUTES),
    };
    if let Err(e) = state.store.create_oauth_state(row).await {
        tracing::error!(error = %e, "could not store the OAuth state");
        return pages::error(StatusCode::SERVICE_UNAVAILABLE, "Patchbay could not start the connection; try again.");
    }
    let authorize = config.authorize_url(&oauth_state, challenge.as_deref(), &redirect);
    let cookie = format!(
        "{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
        cookie_name(&state_sha256, public_url),
        binding,
        STATE_TTL_MINUTES * 60,
        if secure(public_url) { "; Secure" } else { "" }
    );
    tracing::info!(provider = config.id.as_str(), "connect started");
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let (Ok(location), Ok(cookie)) = (HeaderValue::from_str(authorize.as_str()), HeaderValue::from_str(&cookie)) {
        headers.insert(header::LOCATION, location);
        headers.insert(header::SET_COOKIE, cookie);
    }
    if session.mode == ConnectMode::Popup {
        // Browsers apply COOP to redirect responses too: the default `same-origin` would sever the
        // popup from the app on its way to the provider (see pages::self_submitting).
        headers.insert("cross-origin-opener-policy", HeaderValue::from_static("unsafe-none"));
    }
    response
}

/// The provider config for a stored provider name, if that provider is enabled.
pub fn provider_config<'a>(state: &'a AppState, provider: &str) -> Option<&'a ProviderConfig> {
    let id: ProviderId = provider.parse().ok()?;
    state.settings.providers.registry.get(id)
}

/// What the callback carried besides the state.
pub struct CallbackParams {
    pub code: Option<SecretString>,
    pub error: Option<String>,
    pub iss: Vec<String>,
}

/// Finishes a connect whose state row was consumed: checks, exchange, save. Returns the
/// connection or a stable error code for the app.
pub async fn finish(
    state: &AppState,
    config: &ProviderConfig,
    row: &OAuthState,
    session: &ConnectSession,
    params: CallbackParams,
) -> Result<ConnectionId, &'static str> {
    // RFC 9207: more than one `iss`, or one that is not exactly the expected issuer, aborts
    // before the code goes anywhere.
    match params.iss.as_slice() {
        [] => {}
        [iss] if *iss == config.issuer => {}
        _ => return Err("issuer_mismatch"),
    }
    if let Some(error) = params.error {
        tracing::info!(provider = config.id.as_str(), error = %error.chars().take(64).collect::<String>(), "provider returned an error");
        return Err(if error == "access_denied" { "access_denied" } else { "provider_error" });
    }
    let code = params.code.ok_or("missing_code")?;
    let verifier = match &row.pkce_verifier {
        Some(sealed) => Some(
            state.tokens.vault().decrypt_string(sealed, &pkce_aad(&row.state_sha256)).map_err(|_| "internal_error")?,
        ),
        None => None,
    };
    let redirect = Url::parse(&row.redirect_uri).map_err(|_| "internal_error")?;
    let tokens = state.oauth.exchange_code(config, &code, verifier.as_ref(), &redirect).await.map_err(|e| {
        tracing::warn!(provider = config.id.as_str(), reason = e.reason(), "code exchange failed");
        "exchange_failed"
    })?;
    let identity = state.oauth.identity(config, &tokens.access_token).await.map_err(|e| {
        tracing::warn!(provider = config.id.as_str(), reason = e.reason(), "identity lookup failed");
        "identity_failed"
    })?;
    save(state, config, session, tokens, identity).await
}

/// Google reports `email` as its long form; either satisfies the requirement.
fn missing_scopes(config: &ProviderConfig, granted: &[String]) -> Vec<String> {
    let has = |scope: &str| {
        granted.iter().any(|g| g == scope)
            || (scope == "email" && granted.iter().any(|g| g == "https://www.googleapis.com/auth/userinfo.email"))
    };
    config.required_scopes.iter().filter(|s| !has(s)).cloned().collect()
}

async fn save(
    state: &AppState,
    config: &ProviderConfig,
    session: &ConnectSession,
    mut tokens: TokenSet,
    identity: AccountIdentity,
) -> Result<ConnectionId, &'static str> {
    let scope = TenantScope::new(session.tenant_id);
    let provider = config.id.as_str();
    let internal = |e: StoreError| {
        tracing::error!(error = %e, "saving the connection failed");
        "internal_error"
    };
    for attempt in 0..2 {
        let existing = match session.reconnect_connection_id {
            Some(id) => {
                let connection = state.store.get_connection(scope, id).await.map_err(|_| "connection_not_found")?;
                if connection.provider != provider || connection.provider_account_id != identity.account_id {
                    return Err("account_mismatch");
                }
                Some(connection)
            }
            None => state
                .store
                .find_connection_by_account(scope, session.user_id, provider, &identity.account_id)
                .await
                .map_err(internal)?,
        };
        let connection_id = existing.as_ref().map_or_else(ConnectionId::new, |c| c.id);
        if tokens.refresh_token.is_none() {
            // Google sends a refresh token only on first consent: keep the stored one.
            if let Some(old) = existing.as_ref() {
                if let Ok(credential) = state.store.get_credential(scope, old.id).await {
                    tokens.refresh_token = state.tokens.open(&credential).ok().and_then(|t| t.refresh_token);
                }
            }
        }
        let missing = missing_scopes(config, &tokens.scopes);
        let (status, reason) = if missing.is_empty() {
            (ConnectionStatus::Active, None)
        } else {
            (ConnectionStatus::InsufficientScope, Some(format!("missing scopes: {}", missing.join(" "))))
        };
        let flow =
            config.monday_flow.map_or("google", |f| if f == patchbay_oauth::MondayFlow::V2 { "v2" } else { "legacy" });
        let now = Utc::now();
        let initial_job = (status == ConnectionStatus::Active).then(|| {
            let mut job = NewJob::new(
                "sync.initial",
                serde_json::json!({"tenant_id": session.tenant_id, "connection_id": connection_id}),
                now,
            );
            job.priority = -10;
            job.dedup_key = Some(format!("sync.initial:{connection_id}"));
            job.concurrency_key = Some(format!("sync:{connection_id}"));
            job
        });
        let grant = SaveGrant {
            connection_id,
            is_new: existing.is_none(),
            tenant_id: session.tenant_id,
            user_id: session.user_id,
            provider: provider.to_string(),
            provider_account_id: identity.account_id.clone(),
            provider_user_id: identity.user_id.clone(),
            account_name: identity.name.clone(),
            account_email: identity.email.clone(),
            scopes: tokens.scopes.clone(),
            status,
            status_reason: reason,
            credential: state.tokens.seal(session.tenant_id, connection_id, flow, &tokens),
            initial_job,
            audit: NewAuditEvent {
                tenant_id: Some(session.tenant_id),
                actor: format!("user:{}", session.user_id),
                action: "connection.connect".into(),
                target: Some(format!("connection:{connection_id}")),
                request_id: None,
                ip: None,
            },
            now,
        };
        match state.store.save_grant(grant).await {
            Ok(connection) => return Ok(connection.id),
            // A concurrent callback for the same account inserted first: update it instead.
            Err(StoreError::Conflict(_)) if attempt == 0 => continue,
            Err(e) => return Err(internal(e)),
        }
    }
    Err("internal_error")
}

/// Records the outcome on the session and answers the browser as the session's mode asks.
pub async fn respond(
    state: &AppState,
    session: &ConnectSession,
    outcome: Result<ConnectionId, &'static str>,
) -> Response {
    let stored = match &outcome {
        Ok(id) => ConnectOutcome::Connected(*id),
        Err(code) => ConnectOutcome::Failed((*code).to_string()),
    };
    if let Err(e) = state.store.finish_connect_session(session.id, stored, Utc::now()).await {
        tracing::warn!(error = %e, "could not record the connect outcome");
    }
    match &outcome {
        Ok(id) => tracing::info!(provider = %session.provider, connection = %id, "connect succeeded"),
        Err(code) => tracing::info!(provider = %session.provider, error = code, "connect failed"),
    }
    let message = match &outcome {
        Ok(id) => serde_json::json!({"patchbay_status": "connected", "connection_id": id.to_string()}),
        Err(code) => serde_json::json!({"patchbay_status": "error", "error": code}),
    };
    match (session.mode, &session.return_to, &session.opener_origin) {
        (ConnectMode::Redirect, Some(return_to), _) => {
            let Ok(mut target) = Url::parse(return_to) else {
                return pages::error(StatusCode::BAD_REQUEST, "The app's return address is not valid.");
            };
            {
                let mut query = target.query_pairs_mut();
                match &outcome {
                    Ok(id) => {
                        query.append_pair("patchbay_status", "connected").append_pair("connection_id", &id.to_string());
                    }
                    Err(code) => {
                        query.append_pair("patchbay_status", "error").append_pair("error", code);
                    }
                }
            }
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(target.as_str()) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        (ConnectMode::Popup, _, Some(origin)) => pages::popup_result(origin, &message),
        _ => pages::error(StatusCode::BAD_REQUEST, "The connect session has no way back to the app."),
    }
}

/// Deletes the per-state cookie on the callback's response.
pub fn clear_cookie(response: &mut Response, name: &str, public_url: &Url) {
    let value = format!(
        "{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        if secure(public_url) { "; Secure" } else { "" }
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The problem a connect-session request gets for a provider that is not enabled.
pub fn provider_disabled(provider: &str) -> ApiError {
    ApiError::new(
        ProblemCode::BadRequest,
        format!(
            "provider `{}` is not enabled (set its PATCHBAY_*_CLIENT_ID)",
            provider.chars().take(32).collect::<String>()
        ),
    )
}
