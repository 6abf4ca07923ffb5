//! `/v1/connect-sessions`: the app starts a connect for one of its users and polls its outcome.

use super::extract::{ApiJson, ApiPath};
use super::openapi::ProviderSchema;
use super::problem::{ApiError, Problem};
use crate::auth::{Need, Principal, PrincipalKind};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use patchbay_connect::{ConnectError, SessionRequest, SessionStatus};
use patchbay_store::{ConnectMode, ConnectSession, ConnectSessionId, ConnectionId, EndUser, ProviderId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Discriminator, OneOfBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_session)).routes(routes!(get_session))
}

/// Who the connect is for, as the confirmation page shows it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndUserIn {
    /// At most 200 characters.
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
    /// At most 200 characters.
    #[schema(max_length = 200)]
    pub email: Option<String>,
}

/// Start a connect. What the server accepts; the document describes it as
/// [`ConnectSessionRedirectIn`] | [`ConnectSessionPopupIn`] (see the `ToSchema` impl below).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectSessionIn {
    pub provider: ProviderId,
    pub mode: ConnectMode,
    pub return_to: Option<String>,
    pub opener_origin: Option<String>,
    pub connection_id: Option<ConnectionId>,
    pub user_id: Option<UserId>,
    pub end_user: Option<EndUserIn>,
}

const CONNECT_SESSION_IN: &str = "Start a connect: `mode` chooses the variant. `user_id` depends on \
the caller, not on the body, so no schema can say it: it is required when the caller is an API key \
(400 `bad_request` without it) and refused when the caller is a user (400 `bad_request`).";

impl utoipa::PartialSchema for ConnectSessionIn {
    fn schema() -> RefOr<Schema> {
        let variant = |name: &str| format!("#/components/schemas/{name}");
        let mut discriminator = Discriminator::new("mode");
        discriminator.mapping.insert("redirect".into(), variant("ConnectSessionRedirectIn"));
        discriminator.mapping.insert("popup".into(), variant("ConnectSessionPopupIn"));
        OneOfBuilder::new()
            .item(Ref::from_schema_name("ConnectSessionRedirectIn"))
            .item(Ref::from_schema_name("ConnectSessionPopupIn"))
            .discriminator(Some(discriminator))
            .description(Some(CONNECT_SESSION_IN))
            .into()
    }
}

impl ToSchema for ConnectSessionIn {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((ConnectSessionRedirectIn::name().into(), ConnectSessionRedirectIn::schema()));
        schemas.push((ConnectSessionPopupIn::name().into(), ConnectSessionPopupIn::schema()));
        ConnectSessionRedirectIn::schemas(schemas);
        ConnectSessionPopupIn::schemas(schemas);
    }
}

/// Redirect mode.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum RedirectMode {
    Redirect,
}

/// Popup mode.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum PopupMode {
    Popup,
}

// Schema only: the server reads `ConnectSessionIn`.
/// Redirect mode: the browser comes back to `return_to` when the connect ends.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ConnectSessionRedirectIn {
    #[schema(value_type = ProviderSchema, example = "google")]
    provider: String,
    #[schema(inline, value_type = RedirectMode)]
    mode: String,
    /// Where the browser returns; its origin must be on PATCHBAY_RETURN_TO_ORIGINS.
    #[schema(format = "uri", example = "https://app.example/connected")]
    return_to: String,
    /// Checked against PATCHBAY_RETURN_TO_ORIGINS when given; unused in this mode.
    #[schema(format = "uri")]
    opener_origin: Option<String>,
    /// Reconnect this connection (the same provider account must consent).
    #[schema(format = Uuid)]
    connection_id: Option<String>,
    /// Required for API keys, refused for users: the user the connection will belong to.
    #[schema(format = Uuid)]
    user_id: Option<String>,
    /// Who the connect page says the account is connected for (default: the user's subject).
    end_user: Option<EndUserIn>,
}

// Schema only: the server reads `ConnectSessionIn`.
/// Popup mode: the result is posted to the page that opened the popup.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ConnectSessionPopupIn {
    #[schema(value_type = ProviderSchema, example = "google")]
    provider: String,
    #[schema(inline, value_type = PopupMode)]
    mode: String,
    /// The exact origin of the page that opened the popup; must be on PATCHBAY_RETURN_TO_ORIGINS.
    #[schema(format = "uri", example = "https://app.example")]
    opener_origin: String,
    /// Checked against PATCHBAY_RETURN_TO_ORIGINS when given.
    #[schema(format = "uri")]
    return_to: Option<String>,
    /// Reconnect this connection (the same provider account must consent).
    #[schema(format = Uuid)]
    connection_id: Option<String>,
    /// Required for API keys, refused for users: the user the connection will belong to.
    #[schema(format = Uuid)]
    user_id: Option<String>,
    /// Who the connect page says the account is connected for (default: the user's subject).
    end_user: Option<EndUserIn>,
}

/// A connect session: open `connect_url` in the browser (once, within 10 minutes).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectSessionCreated {
    #[schema(format = Uuid)]
    pub id: String,
    /// Single use; only its hash is stored.
    pub token: String,
    #[schema(format = "uri")]
    pub connect_url: String,
    pub expires_at: DateTime<Utc>,
}

/// Where a connect session stands.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ConnectSessionStatus {
    Pending,
    Connected,
    Error,
}

/// A connect session's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectSessionOut {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(value_type = ProviderSchema)]
    pub provider: String,
    #[schema(value_type = ConnectSessionStatus)]
    pub status: &'static str,
    /// Set when connected, and with `insufficient_scope` (the connection exists but will not sync).
    #[schema(format = Uuid)]
    pub connection_id: Option<String>,
    /// The error code when `status` is `error` (`access_denied`, `insufficient_scope`, `expired`, …).
    pub error: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/v1/connect-sessions", tag = "connect",
    request_body(content = ConnectSessionIn, content_type = "application/json", description = "Redirect or popup mode"),
    responses((status = 201, description = "The session: open `connect_url` in the browser", body = ConnectSessionCreated),
        (status = 400, description = "`invalid_json`: the body is not JSON of this shape (unknown fields included); `bad_request`: a rule the schema cannot carry (a provider that is not enabled, a target off the allowlist, `user_id` missing for an API key or sent by a user)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without the `connect` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: `user_id` or `connection_id` names nothing this caller can see", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json")))]
async fn create_session(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<ConnectSessionIn>,
) -> Result<(StatusCode, Json<ConnectSessionCreated>), ApiError> {
    principal.require(Need::Connect)?;
    let user_id = match (&principal.kind, input.user_id) {
        (PrincipalKind::User { user_id, .. }, None) => *user_id,
        (PrincipalKind::User { .. }, Some(_)) => return Err(ConnectError::UserIdNotAllowed.into()),
        (PrincipalKind::ApiKey { .. }, Some(user)) => state.store.get_user(principal.scope(), user).await?.id,
        (PrincipalKind::ApiKey { .. }, None) => return Err(ConnectError::UserIdRequired.into()),
    };
    let end_user = input.end_user.unwrap_or_default();
    let created = state
        .connect
        .create_session(SessionRequest {
            scope: principal.scope(),
            user_id,
            provider: input.provider,
            mode: input.mode,
            return_to: input.return_to,
            opener_origin: input.opener_origin,
            reconnect: input.connection_id,
            end_user: EndUser { display_name: end_user.display_name, email: end_user.email },
        })
        .await?;
    let out = ConnectSessionCreated {
        id: created.session.id.to_string(),
        token: created.token,
        connect_url: created.connect_url.to_string(),
        expires_at: created.session.expires_at,
    };
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/v1/connect-sessions/{id}", tag = "connect",
    params(("id" = String, Path, format = Uuid, description = "Connect session id")),
    responses((status = 200, description = "The session's outcome so far", body = ConnectSessionOut),
        (status = 400, description = "`invalid_path`: `id` is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no credential, or one that is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without the `connect` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such session for this caller (another tenant's or user's id included)", body = Problem, content_type = "application/problem+json")))]
async fn get_session(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectSessionId>,
) -> Result<Json<ConnectSessionOut>, ApiError> {
    principal.require(Need::Connect)?;
    let session = state.store.get_connect_session(principal.scope(), id).await?;
    if principal.own_user().is_some_and(|me| me != session.user_id) {
        return Err(ApiError::not_found());
    }
    let status = state.connect.status(&session, Utc::now()).await;
    Ok(Json(session_out(session, status)))
}

fn session_out(session: ConnectSession, status: SessionStatus) -> ConnectSessionOut {
    let (status, connection_id, error) = match status {
        SessionStatus::Pending => ("pending", None, None),
        SessionStatus::Connected(id) => ("connected", Some(id.to_string()), None),
        SessionStatus::Failed { code, connection_id } => ("error", connection_id.map(|c| c.to_string()), Some(code)),
    };
    ConnectSessionOut {
        id: session.id.to_string(),
        provider: session.provider.to_string(),
        status,
        connection_id,
        error,
        expires_at: session.expires_at,
    }
}
