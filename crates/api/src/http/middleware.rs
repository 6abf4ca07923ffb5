//! Layers every response passes through: request ids, security headers, problem details for
//! errors produced outside handlers (404, 405, 408, 413, 429 from layers), JSON charset, and
//! HTTP metrics by route template.

use super::problem::{problem_response, ProblemCode, PROBLEM_JSON};
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// The request id header, set on every response.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the current request (in request extensions).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Keeps a caller's `X-Request-Id` when it is short and printable, else makes one, and echoes
/// it on the response.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    request.headers_mut().insert(X_REQUEST_ID.clone(), value.clone());
    request.extensions_mut().insert(RequestId(id));
    let mut response = next.run(request).await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    response
}

const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

/// Set unless the handler chose its own (the connect pages pin their scripts by hash; the
/// popup page needs `Cross-Origin-Opener-Policy: unsafe-none`).
const DEFAULT_HEADERS: [(&str, &str); 2] = [
    ("content-security-policy", "default-src 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    ("cross-origin-opener-policy", "same-origin"),
];

/// Security headers (security.md Q1) on every response; `Cache-Control: no-store` unless a
/// handler chose otherwise; `charset=utf-8` on JSON; errors without a problem body get one.
pub async fn harden(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let response = problemify(response);
    finish_headers(response)
}

fn problemify(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // Handlers answer errors as problem+json already; the bodies that are not problems are the
    // readiness document (`/readyz` 503 keeps its contract shape) and the connect flow's HTML
    // error pages, which a person reads in the browser.
    let is_json = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        ct.starts_with(PROBLEM_JSON) || ct.starts_with("application/json") || ct.starts_with("text/html")
    });
    if is_json {
        return response;
    }
    // A layer (router fallback, body limit, timeout, rate limiter) answered in plain text:
    // replace the body, keep the headers that matter to the client.
    let code = ProblemCode::for_status(status);
    let mut replacement = problem_response(code, None);
    *replacement.status_mut() = status;
    for name in [header::RETRY_AFTER, header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(value) = response.headers().get(&name) {
            replacement.headers_mut().insert(name, value.clone());
        }
    }
    replacement
}

fn finish_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    for (name, value) in DEFAULT_HEADERS {
        headers.entry(HeaderName::from_static(name)).or_insert(HeaderValue::from_static(value));
    }
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    let plain_json = headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == b"application/json");
    if plain_json {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    }
    headers.remove(header::SERVER);
    response
}

/// `patchbay_http_requests_total{route,method,status}` and
/// `patchbay_http_request_duration_seconds{route}`, labelled by route template only.
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("patchbay_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("patchbay_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
