//! Prometheus metrics on the private listener, named as architecture §7 lists them, with the
//! detailed `/readyz`.

use crate::health::{DatabaseHealth, HealthStatus};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use patchbay_store::JobStatus;
use serde::Serialize;
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .expect("bucket list is not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness); ours still renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The metrics listener's router.
pub fn router(state: AppState) -> Router {
    Router::new().route("/metrics", get(render)).route("/readyz", get(detailed_readyz)).with_state(state)
}

async fn render(State(state): State<AppState>) -> impl IntoResponse {
    // Job gauges are read from the store at scrape time: the queue is shared by the fleet, so
    // any instance reports the same numbers.
    match state.store.job_counts().await {
        Ok(counts) => {
            for kind in counts.iter().map(|c| c.kind.clone()).collect::<std::collections::BTreeSet<_>>() {
                for status in JobStatus::ALL {
                    let count = counts.iter().find(|c| c.kind == kind && c.status == status).map_or(0, |c| c.count);
                    metrics::gauge!("patchbay_jobs", "kind" => kind.clone(), "status" => status.as_str())
                        .set(count as f64);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not count jobs"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle().render())
}

/// The operator's readiness answer.
#[derive(Debug, Serialize)]
pub struct DetailedReadyOut {
    pub status: HealthStatus,
    pub timestamp: DateTime<Utc>,
    pub database: DatabaseHealth,
    pub version: &'static str,
    pub uptime_seconds: u64,
}

async fn detailed_readyz(State(state): State<AppState>) -> (StatusCode, Json<DetailedReadyOut>) {
    let probe = state.readiness.measure(state.store.as_ref()).await;
    let code = if probe.status == HealthStatus::Unhealthy { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (
        code,
        Json(DetailedReadyOut {
            status: probe.status,
            timestamp: probe.at,
            database: probe.database,
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: state.readiness.uptime().as_secs(),
        }),
    )
}
