//! `/v1/webhook-sources`: a tenant's third-party webhook sources (tenant admins and `admin`
//! keys). Creating or rotating answers the signing secret once; lists never show one.

use super::audit;
use super::extract::{optional_json, ApiJson, ApiPath, ApiQuery};
use super::pagination::{List, ListOut, ListQuery};
use super::problem::{ApiError, Problem, ProblemCode};
use crate::auth::{Need, Principal};
use crate::http::client_ip::ClientAddr;
use crate::http::middleware::RequestId;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use patchbay_store::{WebhookScheme, WebhookSource, WebhookSourceId};
use patchbay_webhooks::{SourceError, WithSecret};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_sources, create_source)).routes(routes!(rotate_secret))
}

/// How a source signs its deliveries: `standard_webhooks`, `github` or `generic_hmac`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SchemeIn {
    StandardWebhooks,
    Github,
    GenericHmac,
}

impl From<SchemeIn> for WebhookScheme {
    fn from(s: SchemeIn) -> Self {
        match s {
            SchemeIn::StandardWebhooks => Self::StandardWebhooks,
            SchemeIn::Github => Self::Github,
            SchemeIn::GenericHmac => Self::GenericHmac,
        }
    }
}

/// A new source.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSourceIn {
    /// 1 to 200 characters.
    #[schema(max_length = 200, example = "billing")]
    pub name: String,
    pub scheme: SchemeIn,
    /// Only for `generic_hmac` (required there): `signature_header`, `encoding` (`hex` |
    /// `base64`), `prefix`, `timestamp_header`, `id_header`.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

/// Rotation options (the body may be empty).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// Seconds the previous secrets keep verifying (0 to 2592000); default
    /// PATCHBAY_WEBHOOK_SECRET_OVERLAP_SECONDS.
    pub overlap_seconds: Option<u32>,
}

/// One signing secret's lifetime (never its value).
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretInfoOut {
    #[schema(format = Uuid)]
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// When it stops verifying; `null` until a rotation replaces it.
    pub valid_until: Option<DateTime<Utc>>,
}

/// A source.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSourceOut {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub scheme: SchemeIn,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// Where the sender posts: `{PATCHBAY_PUBLIC_URL}/webhooks/sources/{id}`.
    pub url: String,
    pub created_at: DateTime<Utc>,
    /// Empty in lists.
    pub secrets: Vec<SecretInfoOut>,
}

/// A source with the secret to configure at the sender — shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSourceWithSecretOut {
    #[serde(flatten)]
    pub source: WebhookSourceOut,
    /// `whsec_…` for Standard Webhooks, 64 hex characters otherwise. Not retrievable later.
    pub secret: String,
}

fn scheme_out(s: WebhookScheme) -> SchemeIn {
    match s {
        WebhookScheme::StandardWebhooks => SchemeIn::StandardWebhooks,
        WebhookScheme::Github => SchemeIn::Github,
        WebhookScheme::GenericHmac => SchemeIn::GenericHmac,
    }
}

/// The ingestion URL of a source.
pub fn source_url(public_url: &url::Url, id: WebhookSourceId) -> String {
    format!("{}/webhooks/sources/{id}", public_url.as_str().trim_end_matches('/'))
}

impl WebhookSourceOut {
    fn new(state: &AppState, s: WebhookSource) -> Self {
        Self {
            id: s.id.to_string(),
            name: s.name,
            scheme: scheme_out(s.scheme),
            settings: s.settings,
            url: source_url(&state.settings.http.public_url, s.id),
            created_at: s.created_at,
            secrets: s
                .secrets
                .into_iter()
                .map(|k| SecretInfoOut { id: k.id.to_string(), created_at: k.created_at, valid_until: k.valid_until })
                .collect(),
        }
    }
}

fn with_secret(state: &AppState, created: WithSecret) -> WebhookSourceWithSecretOut {
    let secret = created.secret.expose_secret().to_owned();
    WebhookSourceWithSecretOut { source: WebhookSourceOut::new(state, created.source), secret }
}

impl From<SourceError> for ApiError {
    fn from(error: SourceError) -> Self {
        match error {
            SourceError::Invalid(detail) => ApiError::new(ProblemCode::BadRequest, detail),
            SourceError::Store(store) => store.into(),
        }
    }
}

#[utoipa::path(get, path = "/v1/webhook-sources", tag = "webhooks", params(ListQuery),
    responses((status = 200, description = "One page of the tenant's sources (no secrets)", body = ListOut<WebhookSourceOut>),
        (status = 400, description = "`invalid_query`: `limit` is 0 or not a number, or `cursor` is not one this list returned", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: a user without the tenant admin role; `insufficient_scope`: an API key without the `admin` scope", body = Problem, content_type = "application/problem+json")))]
async fn list_sources(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListOut<WebhookSourceOut>>, ApiError> {
    principal.require(Need::Admin)?;
    let page = state.inbox.sources().list(principal.scope(), query.page(List::WebhookSources)?).await?;
    Ok(Json(ListOut::from_page(List::WebhookSources, page, |s| WebhookSourceOut::new(&state, s))))
}

#[utoipa::path(post, path = "/v1/webhook-sources", tag = "webhooks",
    request_body(content = WebhookSourceIn, content_type = "application/json"),
    responses((status = 201, description = "The source, its URL and its secret (shown once)", body = WebhookSourceWithSecretOut),
        (status = 400, description = "`invalid_json`: the body is not JSON of this shape; `bad_request`: an empty name, `settings` missing for `generic_hmac` or sent for another scheme, a bad header name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: a user without the tenant admin role; `insufficient_scope`: an API key without the `admin` scope", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json")))]
async fn create_source(
    State(state): State<AppState>,
    principal: Principal,
    ip: ClientAddr,
    Extension(request_id): Extension<RequestId>,
    ApiJson(input): ApiJson<WebhookSourceIn>,
) -> Result<(StatusCode, Json<WebhookSourceWithSecretOut>), ApiError> {
    principal.require(Need::Admin)?;
    let sources = state.inbox.sources();
    let created =
        sources.create(principal.scope(), &input.name, input.scheme.into(), input.settings, Utc::now()).await?;
    audit::record(
        &state,
        &principal,
        "webhook_source.create",
        format!("webhook_source:{}", created.source.id),
        &request_id,
        &ip,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(with_secret(&state, created))))
}

#[utoipa::path(post, path = "/v1/webhook-sources/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path, format = Uuid, description = "Webhook source id")),
    request_body(content = Option<RotateIn>, content_type = "application/json", description = "Optional; an empty body takes the default overlap"),
    responses((status = 200, description = "The source with its new secret (shown once); older secrets end after the overlap", body = WebhookSourceWithSecretOut),
        (status = 400, description = "`invalid_path`: `id` is not a UUID; `invalid_json`: the body is not JSON of this shape; `bad_request`: `overlap_seconds` over 30 days", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: a user without the tenant admin role; `insufficient_scope`: an API key without the `admin` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such source in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: a body that is not `application/json`", body = Problem, content_type = "application/problem+json")))]
async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    ip: ClientAddr,
    Extension(request_id): Extension<RequestId>,
    ApiPath(id): ApiPath<WebhookSourceId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookSourceWithSecretOut>, ApiError> {
    principal.require(Need::Admin)?;
    let input: RotateIn = optional_json(&headers, &body)?;
    let overlap = input
        .overlap_seconds
        .map_or(state.settings.webhooks.secret_overlap, |s| chrono::Duration::seconds(i64::from(s)));
    let rotated = state.inbox.sources().rotate(principal.scope(), id, overlap, Utc::now()).await?;
    audit::record(
        &state,
        &principal,
        "webhook_source.rotate_secret",
        format!("webhook_source:{}", id),
        &request_id,
        &ip,
    )
    .await?;
    Ok(Json(with_secret(&state, rotated)))
}
