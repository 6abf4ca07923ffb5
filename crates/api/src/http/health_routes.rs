//! `/healthz` and the public `/readyz`.

use crate::health::HealthStatus;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveOut {
    pub status: &'static str,
}

/// Public readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyOut {
    pub status: HealthStatus,
    pub timestamp: DateTime<Utc>,
}

/// The process is alive (no I/O).
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = LiveOut)))]
async fn healthz() -> Json<LiveOut> {
    Json(LiveOut { status: "ok" })
}

/// Whether this instance should receive traffic: 503 when the database is unreachable or the
/// instance is draining. Cached for about a second.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Healthy or degraded", body = ReadyOut),
        (status = 503, description = "Unhealthy or draining (the readiness document, not a problem)", body = ReadyOut)))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<ReadyOut>) {
    let probe = state.readiness.cached(state.store.as_ref()).await;
    let code = if probe.status == HealthStatus::Unhealthy { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (code, Json(ReadyOut { status: probe.status, timestamp: probe.at }))
}
