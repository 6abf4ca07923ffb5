//! One provider request on behalf of a connection: breaker check, budget, a fresh token from the
//! vault, the request, and the verdict (architecture §4.2's table). A 401 that a refresh can cure
//! refreshes once and retries once; a terminal answer marks the connection; a 429 holds the
//! budget until the provider's `Retry-After`; only transient failures count toward the breakers.

use crate::breaker::{connection_key, provider_key, Breakers};
use crate::budget::{Budgets, Spend};
use crate::{SyncDeps, SyncError};
use bytes::Bytes;
use chrono::Utc;
use patchbay_oauth::{classify, ErrorClass, MondayFlow, ResponseFacts};
use patchbay_store::{Connection, ConnectionStatus, ProviderId, StatusChange, TenantScope, TokenFlow};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use std::sync::atomic::{AtomicI64, Ordering};
use url::Url;

/// A request an engine, write-back or the proxy wants made.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub method: Method,
    pub url: Url,
    /// Extra headers (never `Authorization`: the session adds it).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Bytes>,
    pub spend: Spend,
}

/// A provider answer that was not an error (2xx; monday GraphQL bodies may still hold `errors`,
/// which the caller reads).
#[derive(Clone, Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A connection's provider calls during one run (or one API request). Counts its calls.
pub struct Session {
    deps: SyncDeps,
    connection: Connection,
    monday_flow: Option<MondayFlow>,
    budgets: Budgets,
    breakers: Breakers,
    calls: AtomicI64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("connection", &self.connection.id).finish_non_exhaustive()
    }
}

impl Session {
    /// A session for an active connection.
    pub async fn open(deps: &SyncDeps, connection: Connection) -> Result<Self, SyncError> {
        if connection.status != ConnectionStatus::Active {
            return Err(SyncError::Inactive);
        }
        let scope = TenantScope::new(connection.tenant_id);
        let credential = deps.store.get_credential(scope, connection.id).await.map_err(|e| match e {
            patchbay_store::StoreError::NotFound => SyncError::Inactive,
            other => SyncError::Store(other),
        })?;
        let monday_flow = match credential.flow {
            TokenFlow::Google => None,
            TokenFlow::MondayLegacy => Some(MondayFlow::Legacy),
            TokenFlow::MondayV2 => Some(MondayFlow::V2),
        };
        let store: std::sync::Arc<dyn patchbay_store::BudgetStore> = deps.store.clone();
        Ok(Self {
            budgets: Budgets::new(store.clone(), deps.settings.clone(), deps.clock.clone()),
            breakers: Breakers::new(store, deps.settings.breaker, deps.clock.clone()),
            deps: deps.clone(),
            connection,
            monday_flow,
            calls: AtomicI64::new(0),
        })
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    pub fn deps(&self) -> &SyncDeps {
        &self.deps
    }

    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// Provider requests made so far.
    pub fn api_calls(&self) -> i64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// What a Google call of this connection draws on.
    pub fn google_spend(&self) -> Spend {
        Spend::Google {
            user: self
                .connection
                .provider_user_id
                .clone()
                .unwrap_or_else(|| self.connection.provider_account_id.clone()),
            project: self.deps.settings.google_client_id.clone(),
        }
    }

    /// What a monday call of this connection draws on.
    pub fn monday_spend(&self, write: bool, complexity: i64) -> Spend {
        Spend::Monday { account: self.connection.provider_account_id.clone(), write, complexity }
    }

    fn breaker_keys(&self) -> [String; 2] {
        [connection_key(self.connection.id), provider_key(self.connection.provider)]
    }

    /// Makes `request`, following the rules in the module doc.
    pub async fn call(&self, request: &ApiRequest) -> Result<ApiResponse, SyncError> {
        self.call_with(request, false).await
    }

    /// Like [`Session::call`], but a 4xx the provider refused the request itself with (not
    /// auth, permission or rate limits) comes back as the answer rather than
    /// [`SyncError::Rejected`]: write-back reads monday's 423, the proxy passes the answer on.
    pub async fn call_passthrough(&self, request: &ApiRequest) -> Result<ApiResponse, SyncError> {
        self.call_with(request, true).await
    }

    async fn call_with(&self, request: &ApiRequest, pass_rejections: bool) -> Result<ApiResponse, SyncError> {
        let keys = self.breaker_keys();
        self.breakers.admit(&keys).await?;
        let scope = TenantScope::new(self.connection.tenant_id);
        let mut refreshed = false;
        loop {
            self.budgets.acquire(&request.spend).await?;
            let token = if refreshed {
                self.deps.tokens.refresh(scope, self.connection.id, self.connection.provider, None).await
            } else {
                self.deps.tokens.fresh_access_token(scope, self.connection.id).await
            }
            .map_err(token_error)?;
            let slot = self.take_slot(&request.spend).await?;
            let sent = self.send(request, token.expose_secret()).await;
            if let Some((key, holder)) = slot {
                self.budgets.store().release_slot(&key, holder).await?;
            }
            self.calls.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("patchbay_provider_calls_total", "provider" => self.connection.provider.as_str())
                .increment(1);
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    self.breakers.failure(&keys).await?;
                    return Err(SyncError::Transient(error));
                }
            };
            let facts = ResponseFacts {
                provider: self.connection.provider,
                monday_flow: self.monday_flow,
                token_endpoint: false,
                status: response.status.as_u16(),
                headers: &response.headers,
                body: &response.body,
            };
            let Some(verdict) = classify(&facts) else {
                self.breakers.success(&keys).await?;
                return Ok(response);
            };
            match verdict.class {
                ErrorClass::RefreshAndRetry if !refreshed => refreshed = true,
                ErrorClass::RefreshAndRetry | ErrorClass::Terminal => {
                    return Err(self.mark(ConnectionStatus::NeedsReauth, &verdict.reason).await)
                }
                ErrorClass::Revoked => return Err(self.mark(ConnectionStatus::Revoked, &verdict.reason).await),
                ErrorClass::RateLimited { retry_after } => {
                    let wait = retry_after.unwrap_or(std::time::Duration::from_secs(10));
                    let until = self.deps.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
                    self.budgets.hold_until(&request.spend, until).await?;
                    metrics::counter!("patchbay_provider_rate_limited_total", "provider" => self.connection.provider.as_str()).increment(1);
                    return Err(SyncError::RateLimited(until));
                }
                ErrorClass::Permission => return Err(SyncError::Permission(verdict.reason)),
                ErrorClass::Transient { .. } => {
                    self.breakers.failure(&keys).await?;
                    return Err(SyncError::Transient(verdict.reason));
                }
                // A 2xx with GraphQL errors, or a 4xx: the caller reads the body.
                _ if response.status.is_success() || pass_rejections => {
                    self.breakers.success(&keys).await?;
                    return Ok(response);
                }
                _ => {
                    return Err(SyncError::Rejected {
                        code: verdict.reason,
                        message: format!("HTTP {}", response.status),
                    })
                }
            }
        }
    }

    async fn take_slot(&self, spend: &Spend) -> Result<Option<(patchbay_store::BucketKey, uuid::Uuid)>, SyncError> {
        let Some((key, slots)) = self.budgets.concurrency(spend) else { return Ok(None) };
        let holder = uuid::Uuid::new_v4();
        let deadline = std::time::Instant::now() + self.deps.settings.max_budget_wait;
        loop {
            let now = self.deps.clock.now();
            let until = now + chrono::Duration::from_std(self.deps.settings.request_timeout * 2).unwrap_or_default();
            if self.budgets.store().acquire_slot(&key, slots, holder, until, now).await? {
                return Ok(Some((key, holder)));
            }
            if std::time::Instant::now() >= deadline {
                return Err(SyncError::RateLimited(now + chrono::Duration::seconds(1)));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    async fn send(&self, request: &ApiRequest, token: &str) -> Result<ApiResponse, String> {
        let mut builder = self
            .deps
            .http
            .request(request.method.clone(), request.url.clone())
            .timeout(self.deps.settings.request_timeout);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let auth = match self.connection.provider {
            // monday takes the raw token for legacy tokens, `Bearer` for OAuth 2.1 (A2.1).
            ProviderId::Monday if self.monday_flow == Some(MondayFlow::Legacy) => token.to_owned(),
            _ => format!("Bearer {token}"),
        };
        let mut auth =
            HeaderValue::from_str(&auth).map_err(|_| "the access token is not a valid header value".to_owned())?;
        auth.set_sensitive(true);
        builder = builder.header(AUTHORIZATION, auth);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = builder.send().await.map_err(|e| describe(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| describe(&e))?;
        Ok(ApiResponse { status, headers, body })
    }

    async fn mark(&self, status: ConnectionStatus, reason: &str) -> SyncError {
        let change = StatusChange { status, reason: Some(reason.to_owned()), actor: "sync".into(), now: Utc::now() };
        let scope = TenantScope::new(self.connection.tenant_id);
        if let Err(e) = self.deps.store.set_connection_status(scope, self.connection.id, change).await {
            return SyncError::Store(e);
        }
        SyncError::NeedsReauth(reason.to_owned())
    }
}

/// A transport error without its URL (which may carry query parameters).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".into()
    } else if error.is_connect() {
        "connection error".into()
    } else {
        "transport error".into()
    }
}

fn token_error(error: patchbay_token_vault::TokenError) -> SyncError {
    use patchbay_token_vault::TokenError;
    match error {
        TokenError::NotFound => SyncError::Inactive,
        TokenError::NeedsReauth(reason) => SyncError::NeedsReauth(reason),
        TokenError::Decrypt(_) => SyncError::Decrypt,
        TokenError::Provider(e) => SyncError::Transient(e.to_string()),
        TokenError::Busy => SyncError::Transient("another instance is refreshing the token".into()),
        TokenError::Store(e) => SyncError::Store(e),
    }
}
