//! `POST /webhooks/sources/{source_id}`: third-party deliveries. The order is the contract's
//! (architecture §4.4): size limit (413, from the body limit, before any signature work) → raw
//! bytes → verification → timestamp window → dedup insert committed → 204. A refused delivery
//! gets 401 with an empty body and the reason goes to the log only; a store that cannot commit
//! gets 503 so the sender retries. Nothing is parsed before it is verified.

use super::problem::{ApiError, ProblemCode};
use crate::http::client_ip::ClientAddr;
use crate::http::middleware::EmptyOnPurpose;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use patchbay_store::WebhookSourceId;
use patchbay_webhooks::{IngestError, Ingested};

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/sources/{source_id}", post(receive))
}

fn count(outcome: &'static str) {
    metrics::counter!("patchbay_webhook_events_total", "source_kind" => "source", "outcome" => outcome).increment(1);
}

async fn receive(
    State(state): State<AppState>,
    Path(source_id): Path<String>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            count("too_large");
            return ApiError::new(ProblemCode::PayloadTooLarge, "the webhook body is over the limit").into_response();
        }
        Err(rejection) => return ApiError::new(ProblemCode::BadRequest, rejection.body_text()).into_response(),
    };
    // A malformed id is answered like an unknown source: 401, nothing said.
    let Ok(source) = source_id.parse::<WebhookSourceId>() else {
        return refused(&IngestError::UnknownSource, &source_id, client);
    };
    match state.inbox.ingest(source, &headers, &body).await {
        Ok(Ingested::Stored(_)) => {
            count("stored");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Ingested::Duplicate) => {
            count("duplicate");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(IngestError::Unavailable(cause)) => {
            count("unavailable");
            let error = ApiError::from(patchbay_store::StoreError::Unavailable(cause));
            error.into_response()
        }
        Err(refusal) => refused(&refusal, &source_id, client),
    }
}

/// 401 with an empty body; the reason (never a secret, signature or body) is logged.
fn refused(reason: &IngestError, source: &str, client: ClientAddr) -> Response {
    count("rejected");
    let source: String = source.chars().take(40).collect();
    let ip = client.audit().unwrap_or_default();
    tracing::warn!(source = %source, ip = %ip, reason = %reason, "webhook delivery refused");
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    response.extensions_mut().insert(EmptyOnPurpose);
    response
}
