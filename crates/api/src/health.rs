//! Liveness and readiness: `/healthz` does no I/O; the public `/readyz` is cached for about a
//! second so load balancers cannot turn it into database load; the detailed one on the metrics
//! listener always measures.

use chrono::{DateTime, Utc};
use patchbay_store::Store;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// The three readiness states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Healthy,
    Degraded,
    Unhealthy,
}

/// Database facts in the detailed readiness answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DatabaseHealth {
    pub connected: bool,
    pub latency_ms: f64,
    pub version: Option<String>,
}

/// One readiness measurement.
#[derive(Clone, Debug)]
pub struct Probe {
    pub status: HealthStatus,
    pub at: DateTime<Utc>,
    pub database: DatabaseHealth,
}

/// Readiness state of this instance: draining flag and the cached probe.
pub struct Readiness {
    draining: AtomicBool,
    cache: Mutex<Option<(Instant, Probe)>>,
    cache_for: Duration,
    degraded_after: Duration,
    started: Instant,
}

impl Readiness {
    pub fn new(cache_for: Duration, degraded_after: Duration) -> Self {
        Self {
            draining: AtomicBool::new(false),
            cache: Mutex::new(None),
            cache_for,
            degraded_after,
            started: Instant::now(),
        }
    }

    /// Turns `/readyz` to 503 so load balancers stop sending traffic (first step of shutdown).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// A probe no older than the cache period (the public endpoint).
    pub async fn cached(&self, store: &dyn Store) -> Probe {
        if let Some((at, probe)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if at.elapsed() < self.cache_for {
                return self.with_draining(probe.clone());
            }
        }
        let probe = self.measure(store).await;
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), probe.clone()));
        probe
    }

    /// A fresh probe (the detailed endpoint and `patchbay healthcheck`).
    pub async fn measure(&self, store: &dyn Store) -> Probe {
        let started = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(2), store.ping()).await;
        let latency = started.elapsed();
        let latency_ms = (latency.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
        let (status, database) = match result {
            Ok(Ok(version)) => {
                let status = if latency > self.degraded_after { HealthStatus::Degraded } else { HealthStatus::Healthy };
                (status, DatabaseHealth { connected: true, latency_ms, version: Some(version) })
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness probe: database unreachable");
                (HealthStatus::Unhealthy, DatabaseHealth { connected: false, latency_ms, version: None })
            }
            Err(_) => {
                tracing::warn!("readiness probe: database ping timed out");
                (HealthStatus::Unhealthy, DatabaseHealth { connected: false, latency_ms, version: None })
            }
        };
        self.with_draining(Probe { status, at: Utc::now(), database })
    }

    fn with_draining(&self, mut probe: Probe) -> Probe {
        if self.is_draining() {
            probe.status = HealthStatus::Unhealthy;
        }
        probe
    }
}
