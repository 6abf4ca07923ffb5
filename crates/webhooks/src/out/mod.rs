//! Events out (architecture §4.5): the tenant's endpoints (URL checked against private
//! addresses, event types, a generated `whsec_` secret sealed by the vault and rotated with an
//! overlap), the dispatcher that turns each outbox event into one delivery per subscribed
//! endpoint, and the sender that signs every attempt with Standard Webhooks and retries on a
//! schedule. The loop runs as the `events.deliver` job ([`job::EventsDeliverJob`]).
//!
//! What is sent (one JSON object; `id` is also the `webhook-id` of every attempt):
//!
//! ```json
//! {"type": "connection.needs_reauth", "id": "<event uuid>", "timestamp": "<RFC 3339, when it happened>",
//!  "data": {"connection_id": "<uuid>|null", "sequence": 7, "object": {<the connection snapshot>}}}
//! ```

pub mod address;
pub mod job;
pub mod resolve;
pub mod schedule;

use crate::scheme::sign_standard;
use crate::secret::{self, SigningKey};
use address::{literal_ip, parse_endpoint_url, UrlRefusal};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use patchbay_store::{
    AttemptOutcome, DeliveryAttempt, EventDelivery, EventDeliveryFilter, EventDeliveryId, EventEndpoint,
    EventEndpointId, EventOutStore, EventType, NewEvent, NewEventEndpoint, OutboxEvent, Page, Paged,
    SealedWebhookSecret, StoreError, StoreResult, TenantId, TenantScope, WebhookScheme,
};
use patchbay_token_vault::{Aad, Purpose, Vault};
use resolve::{check_host, GuardedResolver, HostResolver};
use schedule::{judge, next_attempt, Answer, Verdict};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;

/// The longest rotation overlap a caller may ask for.
pub const MAX_OVERLAP: chrono::Duration = chrono::Duration::days(30);
/// Event types one endpoint may subscribe to at most (there are fewer kinds than this).
const MAX_EVENT_TYPES: usize = 32;
/// The longest error text kept on a delivery.
const MAX_ERROR_LEN: usize = 500;

/// Tunables (environment variables in `patchbay-api`'s config).
#[derive(Clone, Debug)]
pub struct OutSettings {
    /// `PATCHBAY_ALLOW_PRIVATE_ENDPOINTS`: private addresses and plain http allowed.
    pub allow_private: bool,
    /// Per attempt, connecting included.
    pub timeout: Duration,
    /// An endpoint whose attempts all failed for this long is disabled.
    pub disable_after: chrono::Duration,
    /// Deliveries claimed (and outbox events dispatched) per round.
    pub batch: u32,
    /// Attempts in flight at once.
    pub concurrency: usize,
}

impl Default for OutSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout: Duration::from_secs(10),
            disable_after: chrono::Duration::days(3),
            batch: 100,
            concurrency: 16,
        }
    }
}

/// Why an endpoint operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The request is not valid (the message names the field and rule).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<UrlRefusal> for EndpointError {
    fn from(refusal: UrlRefusal) -> Self {
        Self::Invalid(refusal.to_string())
    }
}

/// An endpoint just created or rotated, with its signing secret — shown once.
#[derive(Debug)]
pub struct EndpointWithSecret {
    pub endpoint: EventEndpoint,
    pub secret: SecretString,
}

/// What one round of [`EventsOut::run_once`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub dispatched_events: u32,
    pub created_deliveries: u32,
    pub attempted: u32,
    pub delivered: u32,
    pub retried: u32,
    pub exhausted: u32,
    pub disabled_endpoints: u32,
}

/// Endpoints, dispatch and delivery.
#[derive(Clone)]
pub struct EventsOut {
    store: Arc<dyn EventOutStore>,
    vault: Vault,
    settings: OutSettings,
    resolver: Arc<dyn HostResolver>,
    client: reqwest::Client,
}

impl std::fmt::Debug for EventsOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsOut").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// What an endpoint's secret is sealed bound to: tenant, endpoint and secret id.
pub fn endpoint_secret_aad(tenant: TenantId, endpoint: EventEndpointId, secret_id: uuid::Uuid) -> Aad {
    Aad::new(Purpose::EndpointSecret)
        .with("tenant", tenant.0.as_bytes())
        .with("endpoint", endpoint.0.as_bytes())
        .with("secret", secret_id.as_bytes())
}

/// The JSON body of an event's delivery (the same bytes shape on every attempt).
pub fn delivery_body(event: &OutboxEvent) -> serde_json::Value {
    serde_json::json!({
        "type": event.event_type,
        "id": event.id,
        "timestamp": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": {
            "connection_id": event.connection_id,
            "sequence": event.sequence,
            "object": event.payload,
        },
    })
}

fn truncated(mut text: String) -> String {
    if text.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// A client error in words, its source chain included, never its URL (security.md I4).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    truncated(text)
}

impl EventsOut {
    /// Builds the sender's HTTP client: no redirects, no proxy (a proxy would connect to
    /// addresses nobody checked), the guarded resolver, the attempt timeout.
    pub fn new(
        store: Arc<dyn EventOutStore>,
        vault: Vault,
        settings: OutSettings,
        resolver: Arc<dyn HostResolver>,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(resolver.clone(), settings.allow_private)))
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("Patchbay-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("events-out HTTP client: {}", describe(e)))?;
        Ok(Self { store, vault, settings, resolver, client })
    }

    pub fn settings(&self) -> &OutSettings {
        &self.settings
    }

    /// Checks a URL as registration does: form, scheme, and every address of its host.
    pub async fn check_url(&self, text: &str) -> Result<url::Url, EndpointError> {
        let url = parse_endpoint_url(text, self.settings.allow_private)?;
        if literal_ip(&url)?.is_none() && !self.settings.allow_private {
            let host = url.host_str().unwrap_or_default();
            check_host(self.resolver.as_ref(), host, false)
                .await
                .map_err(|refusal| EndpointError::Invalid(format!("`url`: {refusal}")))?;
        }
        Ok(url)
    }

    /// Creates an endpoint for `event_types` (dotted names; `endpoint.test` is not one).
    pub async fn create(
        &self,
        scope: TenantScope,
        url: &str,
        event_types: &[String],
        now: DateTime<Utc>,
    ) -> Result<EndpointWithSecret, EndpointError> {
        let url = self.check_url(url).await?;
        let event_types = checked_types(event_types)?;
        let id = EventEndpointId::new();
        let secret = secret::generate(WebhookScheme::StandardWebhooks);
        let sealed = self.seal(scope.tenant_id(), id, &secret, now);
        let endpoint =
            NewEventEndpoint { id, tenant_id: scope.tenant_id(), url: url.to_string(), event_types, secret: sealed };
        let endpoint = self.store.create_event_endpoint(endpoint).await?;
        Ok(EndpointWithSecret { endpoint, secret })
    }

    /// Adds a new secret; older ones keep signing (every attempt carries a signature per valid
    /// secret) until `now + overlap`.
    pub async fn rotate(
        &self,
        scope: TenantScope,
        id: EventEndpointId,
        overlap: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<EndpointWithSecret, EndpointError> {
        if overlap < chrono::Duration::zero() || overlap > MAX_OVERLAP {
            return Err(EndpointError::Invalid("`overlap_seconds` must be between 0 and 2592000 (30 days)".into()));
        }
        self.store.get_event_endpoint(scope, id).await?;
        let secret = secret::generate(WebhookScheme::StandardWebhooks);
        let sealed = self.seal(scope.tenant_id(), id, &secret, now);
        let endpoint = self.store.rotate_event_endpoint_secret(scope, id, sealed, now + overlap, now).await?;
        Ok(EndpointWithSecret { endpoint, secret })
    }

    pub async fn get(&self, scope: TenantScope, id: EventEndpointId) -> StoreResult<EventEndpoint> {
        self.store.get_event_endpoint(scope, id).await
    }

    pub async fn list(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<EventEndpoint>> {
        self.store.list_event_endpoints(scope, page).await
    }

    pub async fn delete(&self, scope: TenantScope, id: EventEndpointId) -> StoreResult<()> {
        self.store.delete_event_endpoint(scope, id).await
    }

    pub async fn deliveries(
        &self,
        scope: TenantScope,
        id: EventEndpointId,
        filter: &EventDeliveryFilter,
        page: Page,
    ) -> StoreResult<Paged<EventDelivery>> {
        self.store.list_event_deliveries(scope, id, filter, page).await
    }

    pub async fn redrive(
        &self,
        scope: TenantScope,
        id: EventEndpointId,
        delivery: EventDeliveryId,
        now: DateTime<Utc>,
    ) -> StoreResult<EventDelivery> {
        self.store.redrive_event_delivery(scope, id, delivery, now).await
    }

    /// Queues an `endpoint.test` event for this endpoint only (sent by the next round).
    pub async fn test(
        &self,
        scope: TenantScope,
        id: EventEndpointId,
        now: DateTime<Utc>,
    ) -> StoreResult<EventDelivery> {
        let event = NewEvent {
            tenant_id: scope.tenant_id(),
            connection_id: None,
            event_type: EventType::EndpointTest,
            payload: serde_json::json!({ "endpoint_id": id, "message": "A test event from Patchbay." }),
        };
        self.store.create_test_delivery(scope, id, event, now).await
    }

    /// The signing keys of every secret of `endpoint` valid at `now`; a secret that does not
    /// open is skipped and logged.
    pub fn keys(&self, endpoint: &EventEndpoint, now: DateTime<Utc>) -> Vec<SigningKey> {
        endpoint
            .secrets
            .iter()
            .filter(|s| s.is_valid_at(now))
            .filter_map(|s| {
                let aad = endpoint_secret_aad(endpoint.tenant_id, endpoint.id, s.id);
                let opened = self.vault.decrypt_string(&s.ciphertext, &aad).map_err(|e| e.to_string());
                let key = opened.and_then(|text| {
                    SigningKey::from_secret(WebhookScheme::StandardWebhooks, &text).map_err(|e| e.to_string())
                });
                key.inspect_err(|e| tracing::warn!(endpoint = %endpoint.id, secret = %s.id, error = %e, "an endpoint secret does not open"))
                    .ok()
            })
            .collect()
    }

    /// One round: dispatch what the outbox holds (a few batches at most), then one batch of
    /// due deliveries, `concurrency` attempts at a time.
    pub async fn run_once(&self, now: DateTime<Utc>) -> StoreResult<RoundReport> {
        let mut report = RoundReport::default();
        for _ in 0..10 {
            let done = self.store.dispatch_events(self.settings.batch, now).await?;
            report.dispatched_events += done.events;
            report.created_deliveries += done.deliveries;
            if done.events < self.settings.batch {
                break;
            }
        }
        let lease =
            chrono::Duration::from_std(self.settings.timeout * 2).unwrap_or_default() + chrono::Duration::minutes(1);
        let claimed = self.store.claim_due_deliveries(now, now + lease, self.settings.batch).await?;
        let results: Vec<StoreResult<Attempted>> = futures::stream::iter(claimed)
            .map(|delivery| self.attempt(delivery, now))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for result in results {
            let attempted = result?;
            report.attempted += 1;
            match attempted.outcome {
                AttemptOutcome::Delivered => report.delivered += 1,
                AttemptOutcome::Retry(_) => report.retried += 1,
                AttemptOutcome::Exhausted => report.exhausted += 1,
            }
            report.disabled_endpoints += u32::from(attempted.disabled);
        }
        Ok(report)
    }

    async fn attempt(&self, delivery: EventDelivery, now: DateTime<Utc>) -> StoreResult<Attempted> {
        let endpoint = match self.store.find_event_endpoint(delivery.endpoint_id).await {
            Ok(endpoint) => endpoint,
            // Deleted since the claim: its deliveries went with it.
            Err(StoreError::NotFound) => return Ok(Attempted { outcome: AttemptOutcome::Exhausted, disabled: false }),
            Err(e) => return Err(e),
        };
        let attempt = match self.store.find_outbox_event(delivery.event_id).await {
            Ok(event) => self.send(&endpoint, &delivery, &event, now).await,
            Err(StoreError::NotFound) => DeliveryAttempt {
                status: None,
                error: Some("the event is no longer in the outbox".into()),
                outcome: AttemptOutcome::Exhausted,
            },
            Err(e) => return Err(e),
        };
        let outcome = attempt.outcome.clone();
        let updated = self.store.record_delivery_attempt(delivery.id, attempt, now).await?;
        metrics::counter!("patchbay_event_deliveries_total", "outcome" => outcome_label(&outcome)).increment(1);
        let mut disabled = false;
        if let Some(since) = updated.failing_since {
            if outcome != AttemptOutcome::Delivered && now - since >= self.settings.disable_after {
                disabled = self.disable(&updated, since, now).await?;
            }
        }
        Ok(Attempted { outcome, disabled })
    }

    async fn disable(&self, endpoint: &EventEndpoint, since: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<bool> {
        let event = NewEvent {
            tenant_id: endpoint.tenant_id,
            connection_id: None,
            event_type: EventType::EndpointDisabled,
            payload: serde_json::json!({
                "endpoint_id": endpoint.id,
                "failing_since": since,
                "disabled_at": now,
                "reason": "every delivery attempt failed for longer than the configured period",
            }),
        };
        let disabled = self.store.disable_event_endpoint(endpoint.id, event, now).await?;
        if disabled {
            tracing::warn!(endpoint = %endpoint.id, tenant = %endpoint.tenant_id, %since, "event endpoint disabled after failing too long");
        }
        Ok(disabled)
    }

    /// Signs and posts one attempt and judges the answer.
    async fn send(
        &self,
        endpoint: &EventEndpoint,
        delivery: &EventDelivery,
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> DeliveryAttempt {
        let number = delivery.attempts + 1;
        let answer = self.post(endpoint, event, now).await;
        let (status, error) = match &answer {
            Answer::Status(code, _) => {
                (Some(i32::from(*code)), (!(200..300).contains(code)).then(|| format!("HTTP {code}")))
            }
            Answer::Timeout => (None, Some(format!("no answer within {} s", self.settings.timeout.as_secs_f32()))),
            Answer::Network(text) => (None, Some(text.clone())),
        };
        let outcome = match judge(&answer, now) {
            Verdict::Delivered => AttemptOutcome::Delivered,
            Verdict::GiveUp => AttemptOutcome::Exhausted,
            Verdict::Retry { at_least } => match next_attempt(number, now, at_least) {
                Some(at) => AttemptOutcome::Retry(at),
                None => AttemptOutcome::Exhausted,
            },
        };
        tracing::info!(delivery = %delivery.id, endpoint = %endpoint.id, event = %event.id, attempt = number,
            status = ?status, outcome = ?outcome, "event delivery attempt");
        DeliveryAttempt { status, error, outcome }
    }

    async fn post(&self, endpoint: &EventEndpoint, event: &OutboxEvent, now: DateTime<Utc>) -> Answer {
        // The stored URL passed at registration, but the override may have been turned off
        // since, and an IP literal never reaches the resolver: check the form again.
        let url = match parse_endpoint_url(&endpoint.url, self.settings.allow_private) {
            Ok(url) => url,
            Err(refusal) => return Answer::Network(format!("refused: {refusal}")),
        };
        let keys = self.keys(endpoint, now);
        if keys.is_empty() {
            return Answer::Network("the endpoint has no valid signing secret".into());
        }
        let body = match serde_json::to_vec(&delivery_body(event)) {
            Ok(body) => body,
            Err(e) => return Answer::Network(format!("the event does not serialize: {e}")),
        };
        let id = event.id.to_string();
        let timestamp = now.timestamp();
        let signatures: Vec<String> = keys.iter().map(|key| sign_standard(key, &id, timestamp, &body)).collect();
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures.join(" "))
            .body(body);
        match request.send().await {
            Ok(response) => {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Answer::Status(response.status().as_u16(), retry_after)
            }
            Err(e) if e.is_timeout() => Answer::Timeout,
            Err(e) => Answer::Network(describe(e)),
        }
    }

    fn seal(
        &self,
        tenant: TenantId,
        id: EventEndpointId,
        secret: &SecretString,
        now: DateTime<Utc>,
    ) -> SealedWebhookSecret {
        let secret_id = uuid::Uuid::now_v7();
        let aad = endpoint_secret_aad(tenant, id, secret_id);
        SealedWebhookSecret {
            id: secret_id,
            key_id: self.vault.ring().primary_id(),
            ciphertext: self.vault.encrypt(secret.expose_secret().as_bytes(), &aad),
            created_at: now,
            valid_until: None,
        }
    }
}

/// The `outcome` label of `patchbay_event_deliveries_total`.
fn outcome_label(outcome: &AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Retry(_) => "retry",
        AttemptOutcome::Exhausted => "exhausted",
    }
}

struct Attempted {
    outcome: AttemptOutcome,
    disabled: bool,
}

/// Parses, deduplicates and checks event types (1 to 32 known, subscribable names).
pub fn checked_types(names: &[String]) -> Result<Vec<EventType>, EndpointError> {
    if names.is_empty() || names.len() > MAX_EVENT_TYPES {
        return Err(EndpointError::Invalid("`event_types` must list 1 to 32 event types".into()));
    }
    let mut types = Vec::new();
    for name in names {
        let parsed: EventType = name.parse().ok().filter(|t| *t != EventType::EndpointTest).ok_or_else(|| {
            EndpointError::Invalid(format!("`event_types`: `{}` is not an event type", truncated(name.clone())))
        })?;
        if !types.contains(&parsed) {
            types.push(parsed);
        }
    }
    types.sort();
    Ok(types)
}
