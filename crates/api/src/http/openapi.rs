//! The OpenAPI 3.1 document: generated from the handlers' annotations by utoipa-axum, so the
//! router and the document cannot drift apart; plus the problem schema, the security schemes,
//! the statuses answered by layers rather than handlers, and the browser routes (served as HTML
//! outside the `OpenApiRouter`).

use super::middleware::{MAX_HEADER_BYTES, MAX_URI_BYTES};
use super::problem::{Problem, ProblemCode, PROBLEM_JSON};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathItemBuilder,
};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Required};
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(title = "Patchbay", description = "Self-hosted integration backend for Monday.com and Google: connections, sync, webhooks.

Every error is RFC 9457 problem details (`application/problem+json`) with a stable `code` \
(listed in the `ProblemCode` schema) and `type` = `urn:patchbay:problem:<code>`, except the \
browser routes' own error pages (HTML) and the `/readyz` answer."),
    components(schemas(Problem, ProblemCode, ConnectModeSchema)),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "identity", description = "Who is calling"),
        (name = "connect", description = "Starting a connect and polling its outcome"),
        (name = "connections", description = "Provider connections"),
        (name = "audit", description = "The tenant's audit log"),
        (name = "records", description = "Synced monday and Google records and their change feeds"),
        (name = "proxy", description = "The authenticated provider proxy"),
        (name = "webhooks", description = "Third-party webhook sources and the webhook inbox"),
        (name = "events", description = "Event endpoints: signed deliveries of the tenant's events, their retries and redrives"),
        (name = "admin", description = "Operator views (PATCHBAY_ADMIN_TOKENS)"),
        (name = "browser", description = "Browser routes: HTML pages and redirects for a person's browser, not for API clients (marked `x-patchbay-browser: true`)"),
    )
)]
pub struct ApiDoc;

/// A provider Patchbay connects to (`patchbay_store::ProviderId`).
#[derive(ToSchema)]
#[schema(as = Provider, rename_all = "lowercase")]
pub enum ProviderSchema {
    Google,
    Monday,
}

/// How the browser comes back from a connect (`patchbay_store::ConnectMode`).
#[derive(ToSchema)]
#[schema(as = ConnectMode, rename_all = "lowercase")]
pub enum ConnectModeSchema {
    Redirect,
    Popup,
}

/// A connection's state (`patchbay_store::ConnectionStatus`).
#[derive(ToSchema)]
#[schema(as = ConnectionStatus, rename_all = "snake_case")]
pub enum ConnectionStatusSchema {
    Active,
    InsufficientScope,
    NeedsReauth,
    Revoked,
    Disconnecting,
}

/// A circuit breaker's state (`patchbay_store::BreakerState`).
#[derive(ToSchema)]
#[schema(as = BreakerState, rename_all = "snake_case")]
pub enum BreakerStateSchema {
    Closed,
    Open,
    HalfOpen,
}

/// An API key scope (`patchbay_store::ApiKeyScope`).
#[derive(ToSchema)]
#[schema(as = ApiKeyScope, rename_all = "lowercase")]
pub enum ApiKeyScopeSchema {
    Read,
    Connect,
    Write,
    Admin,
}

/// The browser-route marker: an extension on each browser operation.
pub const BROWSER_EXTENSION: &str = "x-patchbay-browser";

/// A response defined once in `components.responses` and referenced by the operations that
/// can answer it.
struct Shared {
    name: &'static str,
    status: &'static str,
    description: &'static str,
    header: Option<(&'static str, &'static str)>,
}

const REQUEST_TIMEOUT: Shared = Shared {
    name: "RequestTimeout",
    status: "408",
    description:
        "`request_timeout`: the request (reading its body included) took longer than PATCHBAY_HTTP_TIMEOUT_SECONDS",
    header: None,
};
const PAYLOAD_TOO_LARGE: Shared = Shared {
    name: "PayloadTooLarge",
    status: "413",
    description:
        "`payload_too_large`: the request body is larger than PATCHBAY_HTTP_BODY_LIMIT_BYTES (checked on any method)",
    header: None,
};
const URI_TOO_LONG: Shared = Shared {
    name: "UriTooLong",
    status: "414",
    description:
        "`uri_too_long`: the request target (path and query) is longer than the limit (see the document's description)",
    header: None,
};
const HEADERS_TOO_LARGE: Shared = Shared {
    name: "HeadersTooLarge",
    status: "431",
    description: "`headers_too_large`: the header section is larger than the limit (see the document's description)",
    header: None,
};
const RATE_LIMITED: Shared = Shared {
    name: "RateLimited",
    status: "429",
    description: "`rate_limited`: too many requests from this client address (or API key, or tenant)",
    header: Some(("Retry-After", "Seconds to wait before retrying")),
};
const UNAVAILABLE: Shared = Shared {
    name: "Unavailable",
    status: "503",
    description: "`unavailable`: the database or the identity provider's keys cannot be reached; retry shortly",
    header: Some(("Retry-After", "Seconds to wait before retrying")),
};
const METHOD_NOT_ALLOWED: Shared = Shared {
    name: "MethodNotAllowed",
    status: "405",
    description: "`method_not_allowed`: the path exists but not with this method; `Allow` lists the methods it has",
    header: Some(("Allow", "The methods this path answers")),
};

impl Shared {
    fn response(&self) -> Response {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
        let mut response = ResponseBuilder::new().description(self.description).content(PROBLEM_JSON, content);
        if let Some((name, description)) = self.header {
            let kind = if name == "Retry-After" { Type::Integer } else { Type::String };
            response = response
                .header(name, Header::builder().schema(Object::with_type(kind)).description(Some(description)).build());
        }
        response.build()
    }

    fn reference(&self) -> RefOr<Response> {
        RefOr::Ref(Ref::from_response_name(self.name))
    }
}

/// Which statuses a route answers from the layers in front of its handler (see `super::router`
/// and `super::with_layers`), by path: the annotations declare what handlers answer.
fn layer_statuses(path: &str) -> Vec<&'static Shared> {
    // Every route: the head limits and the body limit (from `Content-Length`, before routing).
    let mut statuses = vec![&PAYLOAD_TOO_LARGE, &URI_TOO_LONG, &HEADERS_TOO_LARGE];
    // Every route whose handler waits on anything (`/healthz` answers at once).
    if path != "/healthz" {
        statuses.push(&REQUEST_TIMEOUT);
    }
    // The rate-limited route classes (`/v1` and `/admin/v1` share one limiter, the browser
    // routes have theirs); their handlers also reach the store or the identity provider.
    let api = path.starts_with("/v1/") || path.starts_with("/admin/");
    if api || is_browser_path(path) {
        statuses.push(&RATE_LIMITED);
    }
    if api {
        statuses.push(&UNAVAILABLE);
    }
    statuses
}

fn is_browser_path(path: &str) -> bool {
    path.starts_with("/connect/") || path.starts_with("/oauth/")
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

/// Completes the document once every route is merged in: security schemes, and which scheme
/// each path takes (a modifier on `ApiDoc` would run before the routes are added), the browser
/// routes, and the statuses the layers answer.
pub fn finish(doc: &mut Document) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            Http::builder().scheme(HttpAuthScheme::Bearer).description(Some("A user JWT or a `pb_` API key")).build(),
        ),
    );
    components.add_security_scheme(
        "operator_token",
        SecurityScheme::Http(
            Http::builder().scheme(HttpAuthScheme::Bearer).description(Some("One of PATCHBAY_ADMIN_TOKENS")).build(),
        ),
    );
    for shared in [
        &REQUEST_TIMEOUT,
        &PAYLOAD_TOO_LARGE,
        &URI_TOO_LONG,
        &HEADERS_TOO_LARGE,
        &RATE_LIMITED,
        &UNAVAILABLE,
        &METHOD_NOT_ALLOWED,
    ] {
        components.responses.insert(shared.name.to_string(), RefOr::T(shared.response()));
    }
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let description = doc.info.description.get_or_insert_with(String::new);
    description.push_str(&format!(
        "\n\nLimits on every route: a request body larger than PATCHBAY_HTTP_BODY_LIMIT_BYTES \
         (default 1 MiB) answers 413 `payload_too_large`, whatever the method; a request target \
         (path and query) over {MAX_URI_BYTES} bytes answers 414 `uri_too_long`; a header section \
         over {MAX_HEADER_BYTES} bytes (counted as `name: value` plus CRLF per field) answers 431 \
         `headers_too_large`. The HTTP/1 parser itself refuses a request head over about 408 KiB, \
         a target over 65534 bytes, or more than 100 header fields, with a bare 431 or 414 before \
         Patchbay sees the request. A request that takes longer than PATCHBAY_HTTP_TIMEOUT_SECONDS \
         answers 408 `request_timeout`. A method a path does not list answers 405 \
         `method_not_allowed` with an `Allow` header; a path no route matches answers 404 \
         `route_not_found`."
    ));

    for (path, item) in browser_paths() {
        doc.paths.paths.insert(path.to_string(), item);
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let scheme = if path.starts_with("/v1/") {
            Some("bearer")
        } else if path.starts_with("/admin/") {
            Some("operator_token")
        } else {
            None
        };
        let layers = layer_statuses(path);
        for op in operations_mut(item) {
            if let Some(scheme) = scheme {
                op.security = Some(vec![SecurityRequirement::new(scheme, Vec::<String>::new())]);
            }
            for shared in &layers {
                op.responses.responses.insert(shared.status.to_string(), shared.reference());
            }
        }
        item.description = Some(
            "Methods this path does not list answer 405 `method_not_allowed` (see `components.responses.MethodNotAllowed`)."
                .to_string(),
        );
    }
}

fn html(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Object::with_type(Type::String))).build();
    RefOr::T(ResponseBuilder::new().description(description).content("text/html", content).build())
}

fn redirect(description: &str) -> RefOr<Response> {
    let location =
        Header::builder().schema(Object::with_type(Type::String)).description(Some("Where the browser goes next"));
    RefOr::T(ResponseBuilder::new().description(description).header("Location", location.build()).build())
}

fn browser_operation(id: &str, summary: &str, description: &str, param: (&str, &str)) -> OperationBuilder {
    let parameter = ParameterBuilder::new()
        .name(param.0)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(param.1))
        .schema(Some(Object::with_type(Type::String)));
    OperationBuilder::new()
        .tag("browser")
        .operation_id(Some(id))
        .summary(Some(summary))
        .description(Some(description))
        .parameter(parameter)
        .extensions(Some(ExtensionsBuilder::new().add(BROWSER_EXTENSION, true).build()))
}

/// `GET/POST /connect/{token}` and `GET /oauth/{provider}/callback` (served by `super::browser`).
fn browser_paths() -> Vec<(&'static str, PathItem)> {
    let token = ("token", "The single-use token of `connect_url`");
    let unavailable = "Error page: the store cannot be reached (`Retry-After`)";
    let confirm = browser_operation(
        "connect_page",
        "The connect confirmation page",
        "Names the app, the person and what will be read and changed, with one button that posts \
         `POST /connect/{token}`. Never consumes the token.",
        token,
    )
    .response("200", html("The confirmation page"))
    .response("400", html("Error page: the session's provider is not enabled"))
    .response("404", html("Error page: the link is unknown, expired or already used"))
    .response("503", html(unavailable));
    let submit = browser_operation(
        "connect_submit",
        "Consume the connect token and go to the provider",
        "Sets the per-state cookie and redirects to the provider's authorization page.",
        token,
    )
    .response("303", redirect("To the provider's authorization page"))
    .response("400", html("Error page: the session's provider is not enabled"))
    .response("404", html("Error page: the session is gone"))
    .response("410", html("Error page: the link is unknown, expired or already used"))
    .response("503", html(unavailable));
    let callback = browser_operation(
        "oauth_callback",
        "The provider's authorization response",
        "Finishes the connect: checks state, cookie binding and `iss`, exchanges the code, stores \
         the connection; then sends the browser back to the app (redirect mode) or posts the result \
         to the opener (popup mode). Query parameters are the provider's (`code`, `state`, `iss`, \
         `error`).",
        ("provider", "`google` or `monday`"),
    )
    .response("200", html("Popup mode: the page that posts the result to the opener and closes"))
    .response("303", redirect("Redirect mode: back to the app's `return_to`, with the outcome in the query"))
    .response("400", html("Error page: no valid state, a state for another provider, or no way back to the app"))
    .response("404", html("Error page: the session of this state is gone"))
    .response("503", html(unavailable));
    vec![
        (
            "/connect/{token}",
            PathItemBuilder::new().operation(HttpMethod::Get, confirm).operation(HttpMethod::Post, submit).build(),
        ),
        ("/oauth/{provider}/callback", PathItem::new(HttpMethod::Get, callback)),
    ]
}

/// Every problem code, as the document lists them (for tests and docs).
pub fn problem_codes() -> Vec<&'static str> {
    ProblemCode::ALL.iter().map(|c| c.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn enum_values<T: ToSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn schema_enums_match_the_store_types() {
        use patchbay_store::{ApiKeyScope, BreakerState, ConnectMode, ConnectionStatus, ProviderId};
        let strs = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
        assert_eq!(enum_values::<ProviderSchema>(), strs(ProviderId::ALL.iter().map(|p| p.as_str()).collect()));
        assert_eq!(
            enum_values::<ConnectModeSchema>(),
            strs(vec![ConnectMode::Redirect.as_str(), ConnectMode::Popup.as_str()])
        );
        assert_eq!(
            enum_values::<ConnectionStatusSchema>(),
            strs(ConnectionStatus::ALL.iter().map(|s| s.as_str()).collect())
        );
        assert_eq!(enum_values::<BreakerStateSchema>(), strs(BreakerState::ALL.iter().map(|s| s.as_str()).collect()));
        let scopes = [ApiKeyScope::Read, ApiKeyScope::Connect, ApiKeyScope::Write, ApiKeyScope::Admin];
        assert_eq!(enum_values::<ApiKeyScopeSchema>(), strs(scopes.iter().map(|s| s.as_str()).collect()));
        // Serialization agrees with the names too (the API writes these values).
        assert_eq!(serde_json::to_value(ConnectionStatus::NeedsReauth).unwrap(), Value::from("needs_reauth"));
        assert_eq!(serde_json::to_value(ProviderId::Monday).unwrap(), Value::from("monday"));
    }
}
