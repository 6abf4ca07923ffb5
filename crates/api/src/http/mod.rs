//! The HTTP surface: one router built from per-resource modules, wrapped in the layers every
//! response passes through. Only this crate speaks HTTP.

pub mod admin;
pub mod audit;
pub mod browser;
pub mod client_ip;
pub mod connect_sessions;
pub mod connections;
pub mod event_endpoints;
pub mod extract;
pub mod health_routes;
pub mod me;
pub mod middleware;
pub mod openapi;
pub mod pages;
pub mod pagination;
pub mod problem;
pub mod proxy;
pub mod records;
pub mod sync_errors;
pub mod sync_runs;
pub mod webhook_events;
pub mod webhook_reprocess;
pub mod webhook_sources;
pub mod webhooks_google;
pub mod webhooks_in;
pub mod webhooks_monday;
pub mod writeback;

use crate::config::{RateLimit, Settings};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Router;
use client_ip::ClientIp;
use problem::{problem_response, ApiError, ProblemCode};
use std::sync::Arc;
use std::time::Duration;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::{GovernorError, GovernorLayer};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::{SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

type Limiter = Arc<GovernorConfig<ClientIp, governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>>>;

/// Per-client-address limiters, one per route class (each config is its own limiter).
#[derive(Clone)]
pub struct RateLimiters {
    pub v1: Limiter,
    pub connect: Limiter,
    pub webhooks: Limiter,
}

impl RateLimiters {
    pub fn new(settings: &Settings) -> Self {
        let ip = ClientIp::new(settings.http.trusted_proxies.clone());
        let limits = settings.http.rate_limits;
        Self {
            v1: limiter(&ip, limits.v1),
            connect: limiter(&ip, limits.connect),
            webhooks: limiter(&ip, limits.webhooks),
        }
    }

    /// Forgets idle clients (called periodically so the key maps stay small).
    pub fn retain_recent(&self) {
        for config in [&self.v1, &self.connect, &self.webhooks] {
            config.limiter().retain_recent();
        }
    }
}

fn limiter(ip: &ClientIp, limit: RateLimit) -> Limiter {
    let period = Duration::from_secs_f64(1.0 / limit.per_second).max(Duration::from_nanos(1));
    let config = GovernorConfigBuilder::default()
        .period(period)
        .burst_size(limit.burst)
        .key_extractor(ip.clone())
        .error_handler(rate_limited)
        .finish()
        .expect("rate limit period and burst are validated at start-up");
    Arc::new(config)
}

fn rate_limited(error: GovernorError) -> Response<Body> {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            ApiError::new(ProblemCode::RateLimited, "too many requests from this address")
                .with_retry_after(wait_time.max(1))
                .into_response()
        }
        GovernorError::UnableToExtractKey => ApiError::internal("rate limiter: no client address").into_response(),
        GovernorError::Other { code, .. } => problem_response(ProblemCode::for_status(code), None),
    }
}

/// The whole public router with its layers.
pub fn router(state: AppState, limiters: &RateLimiters) -> Router {
    let settings = state.settings.clone();
    let v1 = me::router()
        .merge(connections::router())
        .merge(records::router())
        .merge(sync_runs::router())
        .merge(writeback::router())
        .merge(proxy::router())
        .merge(audit::router())
        .merge(connect_sessions::router())
        .merge(admin::router())
        .merge(webhook_sources::router())
        .merge(webhook_events::router())
        .merge(event_endpoints::router())
        .merge(webhook_reprocess::router())
        .layer(GovernorLayer { config: limiters.v1.clone() });
    let (router, mut document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health_routes::router())
        .merge(v1)
        .split_for_parts();
    openapi::finish(&mut document);
    let document = Arc::new(document);
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move { axum::Json(document.as_ref().clone()) }
            }),
        )
        .merge(browser::router().layer(GovernorLayer { config: limiters.connect.clone() }))
        .merge(webhooks_in::router().layer(GovernorLayer { config: limiters.webhooks.clone() }))
        .merge(webhooks_google::router().layer(GovernorLayer { config: limiters.webhooks.clone() }))
        .merge(webhooks_monday::router().layer(GovernorLayer { config: limiters.webhooks.clone() }))
        .fallback(|| async { ApiError::new(ProblemCode::RouteNotFound, "no route matches this path") })
        .with_state(state);
    with_layers(router, &settings)
}

const SENSITIVE_REQUEST_HEADERS: [HeaderName; 7] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("x-goog-channel-token"),
    HeaderName::from_static("webhook-signature"),
    HeaderName::from_static("x-hub-signature-256"),
    HeaderName::from_static("x-goog-channel-token"),
];

fn with_layers(router: Router, settings: &Settings) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            // Route template only: a raw URI would carry OAuth codes and states into the logs.
            let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
            let request_id = request.headers().get(&middleware::X_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("http", method = %request.method(), route = route.as_deref().unwrap_or("unmatched"), request_id, tenant = tracing::field::Empty)
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(tower_http::LatencyUnit::Millis));

    let client_ip = ClientIp::new(settings.http.trusted_proxies.clone());
    let mut router = router
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(axum::middleware::from_fn_with_state(client_ip, client_ip::record))
        .layer(RequestBodyLimitLayer::new(settings.http.body_limit_bytes))
        .layer(axum::middleware::from_fn(middleware::limit_request_head))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, settings.http.request_timeout));
    if !settings.http.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> =
            settings.http.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static("idempotency-key"),
                ])
                .expose_headers([middleware::X_REQUEST_ID.clone(), header::RETRY_AFTER])
                .max_age(Duration::from_secs(600)),
        );
    }
    router
        .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
        .layer(trace)
        .layer(SetSensitiveRequestHeadersLayer::new(SENSITIVE_REQUEST_HEADERS))
        .layer(axum::middleware::from_fn(middleware::harden))
        .layer(axum::middleware::from_fn(middleware::request_id))
}
