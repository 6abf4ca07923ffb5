//! `POST /v1/connections/{id}/monday/boards/{board}/items/{item}/column-values`: monday
//! write-back (architecture §4.3). Patchbay ids in the path (the synced board and item), the
//! column values in the body; the write goes through `patchbay_sync::writeback` (write budget,
//! locked-board retries, the local item and its change feed updated on success).
//!
//! `Idempotency-Key` is required: the same key with the same body answers the first answer again
//! (status and bytes, with `Idempotent-Replayed: true`) without calling monday; with another body
//! 422 `idempotency_key_reused`; while the first request still runs 409
//! `idempotency_key_in_flight`. Only definitive answers are remembered (the item written, or a
//! refusal monday will repeat: bad column, bad value, gone item, permission); waits and passing
//! failures (budget, breaker, lock, provider down) forget the key so the same request can be
//! retried with it.

use super::extract::{ApiJson, ApiPath};
use super::problem::{problem_body, ApiError, Problem, ProblemCode, PROBLEM_JSON};
use super::records::views::{ItemFields, View};
use super::records::{connection_of, sealer};
use crate::auth::{Need, Principal};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use patchbay_store::{ConnectionId, ConnectionStatus, ProviderId, RecordId, RecordKind};
use patchbay_sync::call::Session;
use patchbay_sync::writeback::idempotency::{request_hash, valid_key, Claim, Keys};
use patchbay_sync::writeback::{change_column_values, ColumnWrite, LockRetry};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(write_column_values))
}

/// The request header naming an idempotent request.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on an answer replayed from an earlier request with the same key.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Most columns one write may change.
const MAX_COLUMNS: usize = 100;

/// The column values to write.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnValuesIn {
    /// Column id → value (see the schema's description).
    #[schema(schema_with = column_values_schema)]
    pub column_values: Map<String, Value>,
}

/// The schema of `column_values`: a free-form object, with the example the rest of the document's
/// properties carry (`example`, as the derive writes it).
#[allow(deprecated)]
fn column_values_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .description(Some(
            "Column id → value, as monday's `change_multiple_column_values` takes them (a string for \
             simple columns, an object for structured ones). 1 to 100 columns.",
        ))
        .min_properties(Some(1))
        .max_properties(Some(MAX_COLUMNS))
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(true)))
        .example(Some(serde_json::json!({"text0": "hello", "status": {"label": "Done"}})))
        .build()
}

/// The hash an `Idempotency-Key` of this route is bound to: the target item and the body.
pub fn idempotency_hash(board: RecordId, item: RecordId, body: &Value) -> Vec<u8> {
    let (board, item) = (board.to_string(), item.to_string());
    request_hash(&["monday.column-values", &board, &item], body)
}

#[utoipa::path(post, path = "/v1/connections/{id}/monday/boards/{board}/items/{item}/column-values", tag = "records",
    params(("id" = String, Path, format = Uuid, description = "Connection id (a monday connection)"),
        ("board" = String, Path, format = Uuid, description = "The board's Patchbay id"),
        ("item" = String, Path, format = Uuid, description = "The item's Patchbay id (an item of that board)"),
        ("Idempotency-Key" = String, Header, description = "Required: 1 to 255 visible ASCII characters naming this write. The same key with the same body answers the first answer again for 24 hours")),
    request_body = ColumnValuesIn,
    responses((status = 200, description = "Written at monday; the item as stored locally (its change feed entry is written too). A replay carries `Idempotent-Replayed: true`", body = View<ItemFields>),
        (status = 400, description = "`invalid_path`, `invalid_json` (also: no column or more than 100), or `invalid_idempotency_key`: the header is missing or malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: an API key without `write`; `provider_forbidden`: monday denied this connection the write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such monday connection for this caller (another tenant's, another user's, or a Google connection), no such synced board or item on it, or the item no longer exists at monday", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`connection_unavailable`: the connection is not active (its user must reconnect); `idempotency_key_in_flight`: the first request with this key is still running; `board_locked`: monday kept the board locked through the retries (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: the key was used with another body or item; `invalid_column` / `invalid_column_value`: monday refused a column or a value; `provider_rejected`: monday refused the write otherwise", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`provider_unavailable`: monday did not answer usefully", body = Problem, content_type = "application/problem+json")),
    description = "Besides the client rate limit, 429 `rate_limited` (with `Retry-After`) also answers when the monday write budget of the connection's account is spent, and 503 `circuit_open` (with `Retry-After`) when calls to monday are paused after repeated failures. Neither is remembered under the idempotency key.")]
async fn write_column_values(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, board, item)): ApiPath<(ConnectionId, RecordId, RecordId)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ColumnValuesIn>,
) -> Result<Response, ApiError> {
    principal.require(Need::Write)?;
    if body.column_values.is_empty() || body.column_values.len() > MAX_COLUMNS {
        return Err(ApiError::new(ProblemCode::InvalidJson, "`column_values` names 1 to 100 columns"));
    }
    let key = idempotency_key(&headers)?;
    let connection = connection_of(&state, &principal, id, ProviderId::Monday).await?;
    let scope = principal.scope();
    let board = state.store.get_record(scope, id, RecordKind::MondayBoard, board).await?;
    let item = state.store.get_record(scope, id, RecordKind::MondayItem, item).await?;
    if item.parent_id != Some(board.id) || board.deleted_at.is_some() || item.deleted_at.is_some() {
        return Err(ApiError::not_found());
    }
    if connection.status != ConnectionStatus::Active {
        return Err(ApiError::new(
            ProblemCode::ConnectionUnavailable,
            "the connection is not active: its user must reconnect first",
        ));
    }

    let canonical = serde_json::json!({ "column_values": body.column_values });
    let hash = idempotency_hash(board.id, item.id, &canonical);
    let vault = state.tokens.vault().clone();
    let keys = Keys { store: &*state.store, vault: &vault, tenant: connection.tenant_id, connection: connection.id };
    match keys.claim(&key, &hash, Utc::now()).await? {
        Claim::Started => {}
        Claim::Replay { status, body } => return Ok(replay(status, body)),
        Claim::Mismatch => {
            return Err(ApiError::new(
                ProblemCode::IdempotencyKeyReused,
                "this Idempotency-Key was first used with another body or item; use a new key",
            ))
        }
        Claim::InFlight => {
            return Err(ApiError::new(
                ProblemCode::IdempotencyKeyInFlight,
                "the first request with this Idempotency-Key has not finished; retry shortly",
            )
            .with_retry_after(1))
        }
    }

    let write = ColumnWrite {
        board_id: board.provider_id.clone(),
        item_id: item.provider_id.clone(),
        column_values: body.column_values,
    };
    let outcome = match Session::open(&state.sync, connection).await {
        Ok(session) => change_column_values(&session, &sealer(&state), &write, LockRetry::default()).await,
        Err(error) => Err(error.into()),
    };
    match outcome {
        Ok(written) => {
            let stored = state.store.get_record(scope, id, RecordKind::MondayItem, written.id).await;
            let bytes = match stored {
                Ok(record) => serde_json::to_vec(&View::<ItemFields>::open(&sealer(&state), &record)),
                Err(error) => {
                    // Written at monday, but the answer cannot be built: forget the key, so a
                    // retry with it writes the same values again and gets the answer.
                    log_key_failure(&keys, keys.abandon(&key).await);
                    return Err(error.into());
                }
            }
            .map_err(ApiError::internal)?;
            log_key_failure(&keys, keys.finish(&key, 200, &bytes).await);
            Ok(json_response(StatusCode::OK, bytes, false))
        }
        Err(error) if error.is_final() => {
            let problem: ApiError = error.into();
            let status = problem.code.status().as_u16();
            let bytes = problem_body(problem.code, problem.detail.clone());
            log_key_failure(&keys, keys.finish(&key, status, &bytes).await);
            Err(problem)
        }
        Err(error) => {
            log_key_failure(&keys, keys.abandon(&key).await);
            Err(error.into())
        }
    }
}

/// The `Idempotency-Key` header, or the 400 that says what is wrong with it (never echoing it).
fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let mut values = headers.get_all(&IDEMPOTENCY_KEY).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::new(
            ProblemCode::InvalidIdempotencyKey,
            "send exactly one `Idempotency-Key` header: a write is only made with one",
        ));
    };
    match value.to_str() {
        Ok(key) if valid_key(key) => Ok(key.to_owned()),
        _ => Err(ApiError::new(
            ProblemCode::InvalidIdempotencyKey,
            "`Idempotency-Key` must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// A key's bookkeeping failed after the write: the answer still goes out; the key stays
/// in flight until it goes stale (a retry meanwhile answers 409).
fn log_key_failure(keys: &Keys<'_>, result: Result<(), patchbay_sync::SyncError>) {
    if let Err(error) = result {
        tracing::error!(connection = %keys.connection, error = %error, "an idempotency key could not be updated");
    }
}

/// A remembered answer, as first sent.
fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = json_response(status, body, status.is_client_error() || status.is_server_error());
    response.headers_mut().insert(IDEMPOTENT_REPLAYED.clone(), HeaderValue::from_static("true"));
    response
}

fn json_response(status: StatusCode, body: Vec<u8>, problem: bool) -> Response {
    let content_type = if problem { PROBLEM_JSON } else { "application/json" };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
