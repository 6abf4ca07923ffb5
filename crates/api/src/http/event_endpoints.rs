//! `/v1/event-endpoints`: where a tenant's events are delivered (tenant admins and `admin`
//! keys). Creating or rotating answers the `whsec_` signing secret once; nothing else shows it.
//! Deliveries are listed newest first with keyset pagination, and redriven one at a time.

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
use patchbay_store::{
    EventDelivery, EventDeliveryFilter, EventDeliveryId, EventDeliveryStatus, EventEndpoint, EventEndpointId,
};
use patchbay_webhooks::{EndpointError, EndpointWithSecret};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(get_endpoint, delete_endpoint))
        .routes(routes!(list_deliveries))
        .routes(routes!(redrive))
        .routes(routes!(send_test))
        .routes(routes!(rotate_secret))
}

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventEndpointIn {
    /// `https://…` on a public address (plain `http` and private addresses only with
    /// PATCHBAY_ALLOW_PRIVATE_ENDPOINTS=true); no user name or password, no fragment; at most
    /// 2048 characters.
    #[schema(example = "https://93.184.216.34/patchbay/events")]
    pub url: String,
    /// 1 to 32 of `connection.created`, `connection.needs_reauth`, `connection.revoked`,
    /// `connection.recovered`, `connection.deleted`, `sync.completed`, `sync.failed`,
    /// `webhook.received`, `endpoint.disabled`.
    #[schema(example = json!(["connection.needs_reauth", "sync.completed"]))]
    pub event_types: Vec<String>,
}

/// Rotation options (the body may be empty).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// Seconds the previous secrets keep signing (0 to 2592000); default
    /// PATCHBAY_WEBHOOK_SECRET_OVERLAP_SECONDS.
    pub overlap_seconds: Option<u32>,
}

/// One signing secret's lifetime (never its value).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointSecretOut {
    #[schema(format = Uuid)]
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// When it stops signing; `null` until a rotation replaces it.
    pub valid_until: Option<DateTime<Utc>>,
}

/// An endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventEndpointOut {
    #[schema(format = Uuid)]
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Set when it was disabled after failing too long (a redrive enables it again).
    pub disabled_at: Option<DateTime<Utc>>,
    /// Since when every attempt failed; `null` after any success.
    pub failing_since: Option<DateTime<Utc>>,
    /// Empty in lists.
    pub secrets: Vec<EndpointSecretOut>,
}

/// An endpoint with the secret its deliveries are signed with — shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventEndpointWithSecretOut {
    #[serde(flatten)]
    pub endpoint: EventEndpointOut,
    /// `whsec_` + base64 of 32 random bytes (Standard Webhooks). Not retrievable later.
    pub secret: String,
}

/// One event's delivery to the endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDeliveryOut {
    #[schema(format = Uuid)]
    pub id: String,
    /// The event's id: the `webhook-id` header and the body's `id` on every attempt.
    #[schema(format = Uuid)]
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `exhausted`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last HTTP status answered (`null` for a timeout or a network error).
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Query of the delivery list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Page size: at least 1 (0 is refused with 400); values over 500 are clamped; default 100.
    #[param(minimum = 1, example = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page of this list.
    #[param(pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
    /// Only deliveries in this state: `pending`, `delivered` or `exhausted`.
    pub status: Option<String>,
}

impl EventEndpointOut {
    fn new(e: EventEndpoint) -> Self {
        Self {
            id: e.id.to_string(),
            url: e.url,
            event_types: e.event_types.iter().map(|t| t.as_str().to_owned()).collect(),
            created_at: e.created_at,
            disabled_at: e.disabled_at,
            failing_since: e.failing_since,
            secrets: e
                .secrets
                .into_iter()
                .map(|s| EndpointSecretOut {
                    id: s.id.to_string(),
                    created_at: s.created_at,
                    valid_until: s.valid_until,
                })
                .collect(),
        }
    }
}

impl From<EventDelivery> for EventDeliveryOut {
    fn from(d: EventDelivery) -> Self {
        Self {
            id: d.id.to_string(),
            event_id: d.event_id.to_string(),
            event_type: d.event_type.as_str().to_owned(),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

fn with_secret(created: EndpointWithSecret) -> EventEndpointWithSecretOut {
    let secret = created.secret.expose_secret().to_owned();
    EventEndpointWithSecretOut { endpoint: EventEndpointOut::new(created.endpoint), secret }
}

impl From<EndpointError> for ApiError {
    fn from(error: EndpointError) -> Self {
        match error {
            EndpointError::Invalid(detail) => ApiError::new(ProblemCode::BadRequest, detail),
            EndpointError::Store(store) => store.into(),
        }
    }
}

const AUTH_401: &str = "`unauthorized`: no credential, or one that is invalid, expired or revoked";
const AUTH_403: &str =
    "`forbidden`: a user without the tenant admin role; `insufficient_scope`: an API key without the `admin` scope";

#[utoipa::path(get, path = "/v1/event-endpoints", tag = "events", params(ListQuery),
    responses((status = 200, description = "One page of the tenant's endpoints (no secrets)", body = ListOut<EventEndpointOut>),
        (status = 400, description = "`invalid_query`: `limit` is 0 or not a number, or `cursor` is not one this list returned", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = AUTH_403, body = Problem, content_type = "application/problem+json")))]
async fn list_endpoints(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListOut<EventEndpointOut>>, ApiError> {
    principal.require(Need::Admin)?;
    let page = state.events_out.list(principal.scope(), query.page(List::EventEndpoints)?).await?;
    Ok(Json(ListOut::from_page(List::EventEndpoints, page, EventEndpointOut::new)))
}

#[utoipa::path(post, path = "/v1/event-endpoints", tag = "events",
    request_body(content = EventEndpointIn, content_type = "application/json"),
    responses((status = 201, description = "The endpoint and its signing secret (shown once)", body = EventEndpointWithSecretOut),
        (status = 400, description = "`invalid_json`: the body is not JSON of this shape; `bad_request`: a URL that is not https, carries credentials or a fragment, does not resolve, or points to a private, loopback, link-local, unique-local, CGNAT, multicast or unspecified address; an unknown or empty list of event types", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = AUTH_403, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json")))]
async fn create_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    ip: ClientAddr,
    Extension(request_id): Extension<RequestId>,
    ApiJson(input): ApiJson<EventEndpointIn>,
) -> Result<(StatusCode, Json<EventEndpointWithSecretOut>), ApiError> {
    principal.require(Need::Admin)?;
    let created = state.events_out.create(principal.scope(), &input.url, &input.event_types, Utc::now()).await?;
    let target = format!("event_endpoint:{}", created.endpoint.id);
    audit::record(&state, &principal, "event_endpoint.create", target, &request_id, &ip).await?;
    Ok((StatusCode::CREATED, Json(with_secret(created))))
}

#[utoipa::path(get, path = "/v1/event-endpoints/{id}", tag = "events",
    params(("id" = String, Path, format = Uuid, description = "Event endpoint id")),
    responses((status = 200, description = "The endpoint with its secrets' lifetimes (never their values)", body = EventEndpointOut),
        (status = 400, description = "`invalid_path`: `id` is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = AUTH_403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such endpoint in this tenant", body = Problem, content_type = "application/problem+json")))]
async fn get_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<EventEndpointId>,
) -> Result<Json<EventEndpointOut>, ApiError> {
    principal.require(Need::Admin)?;
    Ok(Json(EventEndpointOut::new(state.events_out.get(principal.scope(), id).await?)))
}

#[utoipa::path(delete, path = "/v1/event-endpoints/{id}", tag = "events",
    params(("id" = String, Path, format = Uuid, description = "Event endpoint id")),
    responses((status = 204, description = "Deleted with its secrets and deliveries; nothing more is sent to it"),
        (status = 400, description = "`invalid_path`: `id` is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = AUTH_403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such endpoint in this tenant", body = Problem, content_type = "application/problem+json")))]
async fn delete_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    ip: ClientAddr,
    Extension(request_id): Extension<RequestId>,
    ApiPath(id): ApiPath<EventEndpointId>,
) -> Result<StatusCode, ApiError> {
    principal.require(Need::Admin)?;
    state.events_out.delete(principal.scope(), id).await?;
    audit::record(&state, &principal, "event_endpoint.delete", format!("event_endpoint:{id}"), &request_id, &ip)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/event-endpoints/{id}/deliveries", tag = "events",
    params(("id" = String, Path, format = Uuid, description = "Event endpoint id"), DeliveriesQuery),
    responses((status = 200, description = "One page of the endpoint's deliveries, newest first", body = ListOut<EventDeliveryOut>),
        (status = 400, description = "`invalid_path`: `id` is not a UUID; `invalid_query`: `limit` is 0 or not a number, `cursor` is not one this list returned, or `status` is not a state", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = AUTH_403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such endpoint in this tenant", body = Problem, content_type = "application/problem+json")))]
async fn list_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<EventEndpointId>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<ListOut<EventDeliveryOut>>, ApiError> {
    principal.require(Need::Admin)?;
    let page = List::EventDeliveries.page(query.limit, query.cursor.as_deref())?;
    let status = match query.status.as_deref() {
        Some(text) => {
            Some(text.parse::<EventDeliveryStatus>().map_err(|e| ApiError::new(ProblemCode::InvalidQuery, e))?)
        }
        None => None,
    };
    let found = state.events_out.deliveries(principal.scope(), id, &EventDeliveryFilter { status }, page).await?;
    Ok(Json(ListOut::from_page(List::EventDeliveries, found, EventDeliveryOut::from)))
}

#[utoipa::path(post, path = "/v1/event-endpoints/{id}/deliveries/{delivery_id}/redrive", tag = "events",
    params(("id" = String, Path, format = Uuid, description = "Event endpoint id"),
        ("delivery_id" = String, Path, format = Uuid, description = "Delivery id")),
    responses((status = 200, description = "Pending again with a fresh schedule, due now (a disabled endpoint is enabled again)", body = EventDeliveryOut),
        (status = 400, description = "`invalid_path`: an id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = AUTH_403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such endpoint or delivery in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`conflict`: the delivery is still pending", body = Problem, content_type = "application/problem+json")))]
async fn redrive(
    State(state): State<AppState>,
    principal: Principal,
    ip: ClientAddr,
    Extension(request_id): Extension<RequestId>,
    ApiPath((id, delivery)): ApiPath<(EventEndpointId, EventDeliveryId)>,
) -> Result<Json<EventDeliveryOut>, ApiError> {
    principal.require(Need::Admin)?;
    let redriven = state.events_out.redrive(principal.scope(), id, delivery, Utc::now()).await?;
    audit::record(&state, &principal, "event_delivery.redrive", format!("event_delivery:{delivery}"), &request_id, &ip)
        .await?;
    Ok(Json(redriven.into()))
}

#[utoipa::path(post, path = "/v1/event-endpoints/{id}/test", tag = "events",
    params(("id" = String, Path, format = Uuid, description = "Event endpoint id")),
    responses((status = 202, description = "An `endpoint.test` event queued for this endpoint only; follow it in the deliveries", body = EventDeliveryOut),
        (status = 400, description = "`invalid_path`: `id` is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = AUTH_403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such endpoint in this tenant", body = Problem, content_type = "application/problem+json")))]
async fn send_test(
    State(state): State<AppState>,
    principal: Principal,
    ip: ClientAddr,
    Extension(request_id): Extension<RequestId>,
    ApiPath(id): ApiPath<EventEndpointId>,
) -> Result<(StatusCode, Json<EventDeliveryOut>), ApiError> {
    principal.require(Need::Admin)?;
    let queued = state.events_out.test(principal.scope(), id, Utc::now()).await?;
    audit::record(&state, &principal, "event_endpoint.test", format!("event_endpoint:{id}"), &request_id, &ip).await?;
    Ok((StatusCode::ACCEPTED, Json(queued.into())))
}

#[utoipa::path(post, path = "/v1/event-endpoints/{id}/rotate-secret", tag = "events",
    params(("id" = String, Path, format = Uuid, description = "Event endpoint id")),
    request_body(content = Option<RotateIn>, content_type = "application/json", description = "Optional; an empty body takes the default overlap"),
    responses((status = 200, description = "The endpoint with its new secret (shown once); during the overlap every attempt carries a signature per valid secret", body = EventEndpointWithSecretOut),
        (status = 400, description = "`invalid_path`: `id` is not a UUID; `invalid_json`: the body is not JSON of this shape; `bad_request`: `overlap_seconds` over 30 days", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = AUTH_401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = AUTH_403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such endpoint in this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: a body that is not `application/json`", body = Problem, content_type = "application/problem+json")))]
async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    ip: ClientAddr,
    Extension(request_id): Extension<RequestId>,
    ApiPath(id): ApiPath<EventEndpointId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<EventEndpointWithSecretOut>, ApiError> {
    principal.require(Need::Admin)?;
    let input: RotateIn = optional_json(&headers, &body)?;
    let overlap = input
        .overlap_seconds
        .map_or(state.settings.webhooks.secret_overlap, |s| chrono::Duration::seconds(i64::from(s)));
    let rotated = state.events_out.rotate(principal.scope(), id, overlap, Utc::now()).await?;
    audit::record(&state, &principal, "event_endpoint.rotate_secret", format!("event_endpoint:{id}"), &request_id, &ip)
        .await?;
    Ok(Json(with_secret(rotated)))
}
