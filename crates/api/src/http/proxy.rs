//! `GET|POST|PUT|PATCH|DELETE /v1/connections/{id}/proxy/{path}`: the authenticated provider
//! proxy (architecture §4.3). The path after `/proxy/` and the query are taken from the request
//! target as sent (never decoded and re-encoded here) and handed to `patchbay_sync::proxy`, which
//! allows monday `POST v2` and Google `calendar/v3/…` only, on the configured API host, adds the
//! connection's fresh token and draws on its budget and breaker. Request and response headers
//! pass through short allowlists (no credential, cookie or hop-by-hop header either way).
//!
//! The provider's answer (status, allowed headers, body) is passed back as it came, marked
//! [`Passthrough`] so the error layer does not rewrite a provider's 4xx into problem details;
//! Patchbay's own refusals are problem details. `GET`/`HEAD` need the `read` scope, the other
//! methods `write` (a monday `POST` may be a mutation).

use super::extract::ApiPath;
use super::problem::{ApiError, Problem, ProblemCode};
use crate::auth::{Need, Principal};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::Response;
use patchbay_store::ConnectionId;
use patchbay_sync::call::Session;
use patchbay_sync::proxy::{forward, ProxyRequest, MAX_REQUEST_BODY};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// The route as axum matches it (the rest of the path, slashes included, is the provider path).
pub const ROUTE: &str = "/v1/connections/{id}/proxy/{*path}";

/// Marks a response whose status and body are the provider's, passed back as they came.
#[derive(Clone, Copy, Debug)]
pub struct Passthrough;

/// The proxy's document: the annotation of [`proxy`] under the OpenAPI spelling of the path
/// (`{path}`); the router registers the handler under [`ROUTE`] (axum's catch-all), which
/// `utoipa_axum::routes!` cannot spell.
#[derive(OpenApi)]
#[openapi(paths(proxy))]
struct ProxyDoc;

pub fn router() -> OpenApiRouter<AppState> {
    let methods = axum::routing::get(proxy).post(proxy).put(proxy).patch(proxy).delete(proxy);
    OpenApiRouter::with_openapi(ProxyDoc::openapi()).route(ROUTE, methods)
}

#[utoipa::path(method(get, post, put, patch, delete), path = "/v1/connections/{id}/proxy/{path}", tag = "proxy",
    params(("id" = String, Path, format = Uuid, description = "Connection id"),
        ("path" = String, Path, description = "The provider API path, as sent (percent-encoding kept): `v2` for monday (POST only, no query), `calendar/v3/…` for Google. The query string is forwarded as sent")),
    responses((status = 200, description = "The provider's answer, passed back as it came: its status (any status the provider answered that is not an authentication, permission, rate or availability failure, which answer as Patchbay problems below), the allowed headers (`Content-Type`, `ETag`, `Last-Modified`, `Cache-Control`, `Retry-After`, `RateLimit`, `RateLimit-Policy`, `API-Version`, `Content-Language`) and its body"),
        (status = "default", description = "Any other status the provider answered, passed back as it came (its body is the provider's, not a Patchbay problem)"),
        (status = 400, description = "`invalid_path`: `id` is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without `read` (GET) or `write` (other methods); `provider_forbidden`: the provider denied this connection access", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such connection for this caller (another tenant's or user's included); `proxy_path_not_allowed`: a path or method the proxy does not forward (anything outside monday `POST v2` and Google `calendar/v3/…`, dot segments, encoded slashes, a path that would leave the API host)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`connection_unavailable`: the connection is not active (its user must reconnect)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`provider_unavailable`: the provider did not answer usefully; `proxy_response_too_large`: its answer is larger than the proxy passes back", body = Problem, content_type = "application/problem+json")),
    description = "Forwards the request to the connection's provider API with a fresh token, through the connection's budget and circuit breaker. Request bodies up to 1 MiB. Besides the client rate limit, 429 `rate_limited` (with `Retry-After`) also answers when the provider budget of the connection is spent, and 503 `circuit_open` (with `Retry-After`) when calls to the provider are paused after repeated failures.")]
async fn proxy(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, _)): ApiPath<(ConnectionId, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let method = request.method().clone();
    principal.require(if matches!(method, Method::GET | Method::HEAD) { Need::Read } else { Need::Write })?;
    let connection = state.store.get_connection(principal.scope(), id).await?;
    if principal.own_user().is_some_and(|me| me != connection.user_id) {
        return Err(ApiError::not_found());
    }
    let (parts, body) = request.into_parts();
    let path = provider_path(parts.uri.path())?;
    let query = parts.uri.query().map(str::to_owned);
    let body = axum::body::to_bytes(body, MAX_REQUEST_BODY).await.map_err(|error| {
        let too_large = std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
            .any(|e| e.to_string().contains("length limit"));
        if too_large {
            ApiError::new(
                ProblemCode::PayloadTooLarge,
                format!("the proxy forwards bodies up to {MAX_REQUEST_BODY} bytes"),
            )
        } else {
            ApiError::new(ProblemCode::BadRequest, "the request body could not be read")
        }
    })?;
    let session = Session::open(&state.sync, connection).await?;
    let forwarded = ProxyRequest { method, path, query, headers: parts.headers, body };
    let answer = forward(&session, forwarded).await?;
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    response.extensions_mut().insert(Passthrough);
    Ok(response)
}

/// The raw path after `/v1/connections/{id}/proxy/`, as the request target spelled it.
fn provider_path(raw: &str) -> Result<String, ApiError> {
    raw.strip_prefix("/v1/connections/")
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(_, rest)| rest.strip_prefix("proxy/"))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::internal("the proxy route matched a path it cannot split"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_path_is_the_raw_rest_of_the_target() {
        let id = "0193a1b2-0000-7000-8000-000000000000";
        let path = |p: &str| provider_path(&format!("/v1/connections/{id}/proxy/{p}")).unwrap();
        assert_eq!(path("calendar/v3/calendars/a%40b.test/events"), "calendar/v3/calendars/a%40b.test/events");
        assert_eq!(
            path("calendar/v3/%2e%2e/x"),
            "calendar/v3/%2e%2e/x",
            "escapes stay as sent for the domain to judge"
        );
        assert_eq!(path("/evil.example/x"), "/evil.example/x");
    }
}
