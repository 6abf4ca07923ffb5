//! Layers every response passes through: request ids, security headers, limits on the request
//! head (414, 431), problem details for errors produced outside handlers (404, 405, 408, 413,
//! 429 from layers), JSON charset, and HTTP metrics by route template.

use super::problem::{problem_response, ApiError, ProblemCode, PROBLEM_JSON};
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

/// The longest request target (path and query) answered normally, in bytes; longer ones answer
/// 414 `uri_too_long`. Hyper refuses targets over 65 534 bytes itself with a bare 414, so this
/// limit, well below it, is the one clients meet.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The largest header section answered normally, in bytes, counted as on the wire (`name: value`
/// plus CRLF per field); larger ones answer 431 `headers_too_large`. Hyper refuses a request
/// head over about 408 KiB, or with more than 100 header fields, itself with a bare 431: this
/// limit is well below the first; the second is hyper's alone.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses a request whose target or headers exceed [`MAX_URI_BYTES`] / [`MAX_HEADER_BYTES`]
/// with problem details, before any handler, rate limiter or authentication sees it.
pub async fn limit_request_head(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let uri_bytes = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        let detail = format!("the request target is {uri_bytes} bytes; the limit is {MAX_URI_BYTES}");
        return ApiError::new(ProblemCode::UriTooLong, detail).into_response();
    }
    let header_bytes: usize =
        request.headers().iter().map(|(name, value)| name.as_str().len() + value.as_bytes().len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES {
        let detail = format!("the request headers are {header_bytes} bytes; the limit is {MAX_HEADER_BYTES}");
        return ApiError::new(ProblemCode::HeadersTooLarge, detail).into_response();
    }
    next.run(request).await
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
/// Marks an error response whose empty body is the contract (webhook refusals), so it is not
/// turned into problem details.
#[derive(Clone, Copy, Debug)]
pub struct EmptyOnPurpose;

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
    // A provider's own answer passed back by the proxy keeps its body, whatever its type.
    if response.extensions().get::<super::proxy::Passthrough>().is_some() {
        return response;
    }
    // A refused webhook delivery is an empty 401 on purpose (security.md J3).
    if response.extensions().get::<EmptyOnPurpose>().is_some() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn plain(status: StatusCode) -> Response {
        let mut response = (status, "provider text").into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        response
    }

    #[test]
    fn a_proxied_provider_error_keeps_its_body_and_a_layer_error_becomes_a_problem() {
        let mut proxied = plain(StatusCode::NOT_FOUND);
        proxied.extensions_mut().insert(super::super::proxy::Passthrough);
        let proxied = problemify(proxied);
        assert_eq!(proxied.headers()[header::CONTENT_TYPE], "text/plain");
        let layer = problemify(plain(StatusCode::NOT_FOUND));
        assert_eq!(layer.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
