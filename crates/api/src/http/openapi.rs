//! The OpenAPI 3.1 document: generated from the handlers' annotations by utoipa-axum, so the
//! router and the document cannot drift apart; plus the problem schema and security schemes.

use super::problem::{Problem, ProblemCode};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Patchbay", description = "Self-hosted integration backend for Monday.com and Google: connections, sync, webhooks."),
    components(schemas(Problem, ProblemCode)),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "identity", description = "Who is calling"),
        (name = "connections", description = "Provider connections"),
        (name = "audit", description = "The tenant's audit log"),
        (name = "admin", description = "Operator views (PATCHBAY_ADMIN_TOKENS)"),
    )
)]
pub struct ApiDoc;

/// Completes the document once every route is merged in: security schemes, and which scheme
/// each path takes (a modifier on `ApiDoc` would run before the routes are added).
pub fn finish(doc: &mut Document) {
    {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A user JWT or a `pb_` API key"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("One of PATCHBAY_ADMIN_TOKENS"))
                    .build(),
            ),
        );
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        for (path, item) in doc.paths.paths.iter_mut() {
            let scheme = if path.starts_with("/v1/") {
                "bearer"
            } else if path.starts_with("/admin/") {
                "operator_token"
            } else {
                continue;
            };
            for op in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                op.security = Some(vec![SecurityRequirement::new(scheme, Vec::<String>::new())]);
            }
        }
    }
}

/// Every problem code, as the document lists them (for tests and docs).
pub fn problem_codes() -> Vec<&'static str> {
    ProblemCode::ALL.iter().map(|c| c.as_str()).collect()
}
