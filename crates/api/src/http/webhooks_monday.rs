//! `POST /webhooks/monday/{id}` (board webhooks) and `POST /webhooks/monday/lifecycle`
//! (architecture §4.4): size limit (413) → raw bytes → challenge echoed (nothing stored) → JWT
//! verified (HS256, signing secret, `exp`, `aud` = this URL, `accountId` = the webhook's
//! account) → dedup insert committed → 200. Refusals are an empty 401 with the reason logged;
//! a store that cannot commit answers 503. The lifecycle route checks the client secret and
//! `uninstall` revokes the account's connections in every tenant.

use super::problem::{ApiError, ProblemCode};
use crate::http::client_ip::ClientAddr;
use crate::http::middleware::EmptyOnPurpose;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use patchbay_webhooks::{MondayIngestError, MondayIngested};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/monday/lifecycle", post(lifecycle))
        .route("/webhooks/monday/{webhook_id}", post(board))
}

fn count(outcome: &'static str) {
    metrics::counter!("patchbay_webhook_events_total", "source_kind" => "monday", "outcome" => outcome).increment(1);
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// The body, or the 413 / 400 answer.
fn raw(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Box<Response>> {
    match body {
        Ok(body) => Ok(body),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            count("too_large");
            Err(Box::new(
                ApiError::new(ProblemCode::PayloadTooLarge, "the webhook body is over the limit").into_response(),
            ))
        }
        Err(rejection) => Err(Box::new(ApiError::new(ProblemCode::BadRequest, rejection.body_text()).into_response())),
    }
}

async fn board(
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match raw(body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    match state.monday_hooks.ingest_board(&webhook_id, authorization(&headers), &body).await {
        Ok(MondayIngested::Challenge(echo)) => {
            count("challenge");
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], echo).into_response()
        }
        Ok(MondayIngested::Stored(_)) => {
            count("stored");
            StatusCode::OK.into_response()
        }
        Ok(MondayIngested::Duplicate) => {
            count("duplicate");
            StatusCode::OK.into_response()
        }
        Err(error) => failed(&error, &webhook_id, client),
    }
}

async fn lifecycle(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match raw(body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    match state.monday_hooks.ingest_lifecycle(authorization(&headers), &body).await {
        Ok(_) => {
            count("lifecycle");
            StatusCode::OK.into_response()
        }
        Err(error) => failed(&error, "lifecycle", client),
    }
}

/// 503 when the store is down; otherwise 401 with an empty body and the reason (never a token
/// or body) in the log.
fn failed(error: &MondayIngestError, webhook: &str, client: ClientAddr) -> Response {
    if let MondayIngestError::Unavailable(cause) = error {
        count("unavailable");
        return ApiError::from(patchbay_store::StoreError::Unavailable(cause.clone())).into_response();
    }
    count("rejected");
    let webhook: String = webhook.chars().take(40).collect();
    let ip = client.audit().unwrap_or_default();
    tracing::warn!(webhook = %webhook, ip = %ip, reason = %error, "monday webhook delivery refused");
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    response.extensions_mut().insert(EmptyOnPurpose);
    response
}
