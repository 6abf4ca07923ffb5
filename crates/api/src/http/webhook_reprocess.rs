//! `POST /v1/webhook-events/{id}/reprocess`: sends one of the tenant's inbox events back to
//! `pending` (attempts and error cleared) with a new `webhook.process` job, in one transaction
//! (tenant admins and `admin` keys; audited). Meant for `failed` events once their cause is
//! fixed; a `processed` event is applied again (appliers are idempotent), a `pending` one only
//! gets its job back.

use super::audit;
use super::extract::ApiPath;
use super::problem::{ApiError, Problem};
use super::webhook_events::WebhookEventOut;
use crate::auth::{Need, Principal};
use crate::http::client_ip::ClientAddr;
use crate::http::middleware::RequestId;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::Utc;
use patchbay_store::WebhookEventId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(reprocess_event))
}

#[utoipa::path(post, path = "/v1/webhook-events/{id}/reprocess", tag = "webhooks",
    params(("id" = String, Path, format = Uuid, description = "Inbox event id")),
    responses((status = 202, description = "The event, back to `pending` with no attempts; a job applies it again", body = WebhookEventOut),
        (status = 400, description = "`invalid_path`: `id` is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: a user without the tenant admin role; `insufficient_scope`: an API key without the `admin` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such event in this tenant", body = Problem, content_type = "application/problem+json")))]
async fn reprocess_event(
    State(state): State<AppState>,
    principal: Principal,
    ip: ClientAddr,
    Extension(request_id): Extension<RequestId>,
    ApiPath(id): ApiPath<WebhookEventId>,
) -> Result<(StatusCode, Json<WebhookEventOut>), ApiError> {
    principal.require(Need::Admin)?;
    let event = state.store.reprocess_webhook_event(principal.scope(), id, Utc::now()).await?;
    let audit = audit::entry(&principal, "webhook_event.reprocess", format!("webhook_event:{id}"), &request_id, &ip);
    state.store.record_audit(audit).await?;
    Ok((StatusCode::ACCEPTED, Json(event.into())))
}
