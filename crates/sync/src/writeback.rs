//! monday.com write-back (architecture §4.3, providers.md A2.3): `change_multiple_column_values`
//! through the write budget, with the pinned `API-Version`; a locked board is retried a few times;
//! on success the item the mutation returns is sealed and upserted, so the change feed shows it.
//! Patchbay-side idempotency keys are in [`idempotency`].

mod graphql;
pub mod idempotency;

use crate::call::Session;
use crate::seal::Sealer;
use crate::SyncError;
use chrono::{DateTime, Utc};
use graphql::{fold, safe_code, Answer, GraphqlError};
use patchbay_store::{RecordChange, RecordFields, RecordId, RecordKind, RecordWrite, TenantScope};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The mutation, with the budget probe: the item fields it returns are the local record's.
const MUTATION: &str = "mutation ($board: ID!, $item: ID!, $values: JSON!) { complexity { before after } \
change_multiple_column_values(board_id: $board, item_id: $item, column_values: $values) { \
id name state created_at updated_at board { id } group { id title } column_values { id type text value } } }";

/// What the mutation is expected to cost (monday prices writes dearly); reconciled afterwards
/// from `complexity { before after }`.
const ESTIMATED_COMPLEXITY: i64 = 1_100;

/// One write: provider ids and the column values (column id → value, as monday takes them).
#[derive(Clone, Debug)]
pub struct ColumnWrite {
    pub board_id: String,
    pub item_id: String,
    pub column_values: Map<String, Value>,
}

/// How a locked board (HTTP 423 "Resource is currently locked") is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockRetry {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first wait; doubled for every further retry.
    pub backoff: Duration,
}

impl Default for LockRetry {
    fn default() -> Self {
        Self { retries: 3, backoff: Duration::from_millis(250) }
    }
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// `InvalidColumnIdException`: the board has no such column.
    #[error("the board has no column {}", column_name(.0))]
    InvalidColumn(Option<String>),
    /// `ColumnValueException` and kin: a value the column does not take.
    #[error("the value for column {} is not valid for its type", column_name(.0))]
    InvalidValue(Option<String>),
    /// The board or the item does not exist (any more) at monday.
    #[error("the item or its board no longer exists at monday")]
    NotFound,
    /// The board stayed locked by a concurrent update through every retry.
    #[error("the board is locked by another update; retry shortly")]
    Locked,
    /// Budget, breaker, token, transport or another refusal.
    #[error(transparent)]
    Sync(#[from] SyncError),
}

fn column_name(column: &Option<String>) -> String {
    column.as_ref().map_or_else(|| "(unnamed)".to_owned(), |c| format!("`{c}`"))
}

impl WriteError {
    /// Whether the answer is definitive for this request (remember it under its idempotency
    /// key); otherwise the same request may be retried (budget, breaker, lock, transient).
    pub fn is_final(&self) -> bool {
        match self {
            Self::InvalidColumn(_) | Self::InvalidValue(_) | Self::NotFound => true,
            Self::Sync(SyncError::Rejected { .. } | SyncError::Permission(_)) => true,
            Self::Locked | Self::Sync(_) => false,
        }
    }
}

/// The item as written, from the mutation's answer.
#[derive(Clone, Debug)]
pub struct WrittenItem {
    pub id: RecordId,
    pub provider_id: String,
    pub board_id: RecordId,
    pub board_provider_id: String,
    /// The item object monday returned (what the record seals).
    pub item: Value,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Writes `write`'s column values to monday and upserts the local item record.
pub async fn change_column_values(
    session: &Session,
    sealer: &Sealer,
    write: &ColumnWrite,
    retry: LockRetry,
) -> Result<WrittenItem, WriteError> {
    let deps = session.deps();
    let values = Value::Object(write.column_values.clone()).to_string();
    let variables = json!({ "board": write.board_id, "item": write.item_id, "values": values });
    let spend = session.monday_spend(true, ESTIMATED_COMPLEXITY);
    let request = graphql::post(
        &deps.settings.monday_api_url,
        &deps.settings.monday_api_version,
        MUTATION,
        variables,
        spend.clone(),
    );
    let mut attempt = 0;
    let answer = loop {
        let response = session.call_passthrough(&request).await?;
        let answer = graphql::read(&response)?;
        if let Some(charged) = answer.charged {
            session.budgets().reconcile(&spend, charged).await?;
        }
        match refusal(&answer) {
            None => break answer,
            Some(WriteError::Locked) if attempt < retry.retries => {
                tokio::time::sleep(retry.backoff * 2u32.saturating_pow(attempt)).await;
                attempt += 1;
            }
            Some(error) => return Err(error),
        }
    };
    let item = answer
        .data
        .get("change_multiple_column_values")
        .filter(|i| i.is_object())
        .cloned()
        .ok_or_else(|| SyncError::Protocol("change_multiple_column_values answered no item".into()))?;
    upsert_item(session, sealer, &write.board_id, item).await
}

/// Why monday refused, when it did.
fn refusal(answer: &Answer) -> Option<WriteError> {
    let locked = |e: &GraphqlError| {
        e.code.as_deref().is_some_and(|c| fold(c) == "resourcelocked")
            || fold(&e.message).contains("resourceiscurrentlylocked")
    };
    if answer.status == 423 || answer.errors.iter().any(locked) {
        return Some(WriteError::Locked);
    }
    let error = answer.errors.first()?;
    let column = || error.data.get("column_id").and_then(Value::as_str).map(str::to_owned);
    let code = error.code.as_deref().map(fold).unwrap_or_default();
    Some(match code.as_str() {
        "invalidcolumnidexception" => WriteError::InvalidColumn(column()),
        "columnvalueexception" | "correctedvalueexception" | "jsonparseexception" | "itemnametoolongexception" => {
            WriteError::InvalidValue(column())
        }
        "invalidboardidexception" | "invaliditemidexception" | "resourcenotfoundexception" => WriteError::NotFound,
        _ => WriteError::Sync(SyncError::Rejected {
            code: safe_code(error.code.as_deref(), "graphql_error"),
            message: format!("HTTP {}", answer.status),
        }),
    })
}

/// Seals the returned item and upserts it (a new `change_seq` when it changed).
async fn upsert_item(session: &Session, sealer: &Sealer, board: &str, item: Value) -> Result<WrittenItem, WriteError> {
    let connection = session.connection();
    let provider_id = match item.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        _ => return Err(SyncError::Protocol("the written item has no id".into()).into()),
    };
    let board_provider_id = item.pointer("/board/id").and_then(Value::as_str).unwrap_or(board).to_owned();
    let id = RecordId::derive(connection.id, RecordKind::MondayItem, &provider_id);
    let board_id = RecordId::derive(connection.id, RecordKind::MondayBoard, &board_provider_id);
    let updated_at = item
        .get("updated_at")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let sealed = sealer.seal(connection.tenant_id, connection.id, RecordKind::MondayItem, id, &item);
    let record = RecordWrite {
        kind: RecordKind::MondayItem,
        id,
        provider_id: provider_id.clone(),
        parent_id: Some(board_id),
        change: RecordChange::Upsert(RecordFields {
            hash: sealed.hash,
            sealed: sealed.sealed,
            key_id: sealed.key_id,
            status: item.get("state").and_then(Value::as_str).map(str::to_owned),
            provider_updated_at: updated_at,
            ..RecordFields::default()
        }),
    };
    let deps = session.deps();
    let scope = TenantScope::new(connection.tenant_id);
    deps.store.upsert_records(scope, connection.id, vec![record], deps.clock.now()).await.map_err(SyncError::from)?;
    Ok(WrittenItem { id, provider_id, board_id, board_provider_id, item, updated_at })
}
