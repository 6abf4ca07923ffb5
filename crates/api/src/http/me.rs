//! `GET /v1/me`: who is calling, as Patchbay sees it.

use super::openapi::ApiKeyScopeSchema;
use super::problem::Problem;
use crate::auth::{Principal, PrincipalKind};
use crate::state::AppState;
use axum::Json;
use patchbay_store::ApiKeyScope;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_me))
}

/// The caller as Patchbay sees it: the internal ids, and who the credential names.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeOut {
    #[schema(format = Uuid)]
    pub tenant_id: String,
    /// The tenant's external key, for end users: `org:<tenant claim>` in claim mode, else
    /// `user:<iss>|<sub>`.
    #[schema(example = "org:acme")]
    pub tenant_key: Option<String>,
    /// `user` (an end user), `admin` (a tenant admin) or `api_key`.
    #[schema(value_type = Role, example = "user")]
    pub role: String,
    /// Set for end users.
    #[schema(format = Uuid)]
    pub user_id: Option<String>,
    /// Set for end users: who their token names.
    pub user: Option<UserOut>,
    /// Set for API keys.
    pub api_key: Option<ApiKeyOut>,
}

/// An end user as their token names them.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    /// The token's `sub`.
    pub subject: String,
    /// The token's `iss` (empty when the token carries none and no issuer is configured).
    pub issuer: String,
}

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    /// Any of `read`, `connect`, `write`, `admin`.
    #[schema(value_type = Vec<ApiKeyScopeSchema>)]
    pub scopes: Vec<String>,
}

/// What the caller is to Patchbay.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
    ApiKey,
}

#[utoipa::path(get, path = "/v1/me", tag = "identity",
    responses((status = 200, description = "The caller", body = MeOut),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json")))]
async fn get_me(principal: Principal) -> Json<MeOut> {
    let tenant_id = principal.tenant_id.to_string();
    Json(match principal.kind {
        PrincipalKind::User { user_id, admin, identity } => MeOut {
            tenant_id,
            tenant_key: Some(identity.tenant_key),
            role: if admin { "admin" } else { "user" }.into(),
            user_id: Some(user_id.to_string()),
            user: Some(UserOut { subject: identity.subject, issuer: identity.issuer }),
            api_key: None,
        },
        PrincipalKind::ApiKey { key_id, name, scopes } => MeOut {
            tenant_id,
            tenant_key: None,
            role: "api_key".into(),
            user_id: None,
            user: None,
            api_key: Some(ApiKeyOut {
                id: key_id.to_string(),
                name,
                scopes: scopes.iter().map(|s: &ApiKeyScope| s.as_str().to_string()).collect(),
            }),
        },
    })
}
