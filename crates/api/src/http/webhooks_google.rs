//! `POST /webhooks/google/calendar`: Google Calendar push notifications (architecture §4.4,
//! providers.md B7). Google sends no body; the headers carry everything. The channel is
//! authenticated by `X-Goog-Channel-ID` + `X-Goog-Channel-Token` (+ `X-Goog-Resource-ID` once
//! known); `sync` confirms the channel; `exists` is committed to the inbox before the 200.
//! Unknown, stopped and expired channels get 200 and are ignored (logged). A bad token or
//! resource id gets 401 with an empty body (Google drops a message answered with a 4xx, so the
//! forger learns nothing and a real channel loses nothing: its token never changes). A store
//! that cannot answer gets 503, which Google retries with backoff. `X-Goog-Resource-URI` is
//! never fetched.

use super::problem::ApiError;
use crate::http::client_ip::ClientAddr;
use crate::http::middleware::EmptyOnPurpose;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use patchbay_webhooks::{GoogleError, GoogleOutcome, GooglePushIn};

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/google/calendar", post(receive))
}

fn count(outcome: &'static str) {
    metrics::counter!("patchbay_webhook_events_total", "source_kind" => "google", "outcome" => outcome).increment(1);
}

async fn receive(State(state): State<AppState>, client: ClientAddr, headers: HeaderMap) -> Response {
    let inbox = &state.inbox;
    let push =
        GooglePushIn::new(state.store.clone(), inbox.vault().clone(), inbox.batcher().clone(), inbox.clock().clone());
    let channel: String =
        headers.get("x-goog-channel-id").and_then(|v| v.to_str().ok()).unwrap_or_default().chars().take(64).collect();
    match push.ingest(&headers).await {
        Ok(outcome) => {
            match outcome {
                GoogleOutcome::Confirmed => count("confirmed"),
                GoogleOutcome::Stored(_) => count("stored"),
                GoogleOutcome::Duplicate => count("duplicate"),
                GoogleOutcome::Ignored(reason) => {
                    count("ignored");
                    tracing::info!(channel = %channel, reason, "Google notification ignored");
                }
            }
            StatusCode::OK.into_response()
        }
        Err(GoogleError::Unavailable(cause)) => {
            count("unavailable");
            ApiError::from(patchbay_store::StoreError::Unavailable(cause)).into_response()
        }
        Err(GoogleError::Rejected(reason)) => {
            count("rejected");
            let ip = client.audit().unwrap_or_default();
            tracing::warn!(channel = %channel, ip = %ip, reason = %reason, "Google notification refused");
            let mut response = StatusCode::UNAUTHORIZED.into_response();
            response.extensions_mut().insert(EmptyOnPurpose);
            response
        }
    }
}
