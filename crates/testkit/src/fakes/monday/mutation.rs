//! The write-back mutations (providers.md A2.3): `change_multiple_column_values` with its
//! `column_values` JSON *string*, plus `change_column_value` and `change_simple_column_value`.
//! All-or-nothing: every column is checked before any is written.

use super::errors::app_error;
use super::schema::{caller, complexity, meter, require, shared, Complexity};
use super::types::ItemObject;
use super::{cost, Shared};
use async_graphql::{Context, InputValueError, InputValueResult, Object, Result, Scalar, ScalarType, ID};
use serde_json::{json, Map, Value};

/// monday's `JSON` scalar: a string holding JSON (a JSON value is taken too). Parsed by the
/// resolver, so bad JSON is monday's `JsonParseException`, not a GraphQL type error.
pub(super) struct Json(async_graphql::Value);

#[Scalar(name = "JSON")]
impl ScalarType for Json {
    fn parse(value: async_graphql::Value) -> InputValueResult<Self> {
        match value {
            async_graphql::Value::Null => Err(InputValueError::custom("JSON must not be null")),
            value => Ok(Json(value)),
        }
    }

    fn to_value(&self) -> async_graphql::Value {
        self.0.clone()
    }
}

impl Json {
    pub(super) fn decode(&self) -> Result<Value> {
        match &self.0 {
            async_graphql::Value::String(text) => serde_json::from_str(text).map_err(|_| {
                let data = json!({ "json": text.chars().take(40).collect::<String>() });
                app_error("JsonParseException", "Syntax error in JSON input", 400, data)
            }),
            other => other.clone().into_json().map_err(|e| async_graphql::Error::new(e.to_string())),
        }
    }
}

pub(super) struct MutationRoot;

#[Object(name = "Mutation", rename_fields = "snake_case", rename_args = "snake_case")]
impl MutationRoot {
    /// The complexity budget around this request; free.
    #[graphql(complexity = 0)]
    async fn complexity(&self, ctx: &Context<'_>) -> Option<Complexity> {
        Some(complexity(ctx))
    }

    #[graphql(complexity = "cost::mutation(child_complexity)")]
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        board_id: ID,
        url: String,
        event: super::webhooks::WebhookEventType,
        config: Option<Json>,
    ) -> Result<Option<super::webhooks::WebhookObject>> {
        super::webhooks::create(ctx, board_id, url, event, config).await
    }

    #[graphql(complexity = "cost::mutation(child_complexity)")]
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> Result<Option<super::webhooks::WebhookObject>> {
        super::webhooks::delete(ctx, id)
    }

    #[graphql(complexity = "cost::mutation(child_complexity)")]
    async fn change_multiple_column_values(
        &self,
        ctx: &Context<'_>,
        board_id: ID,
        item_id: Option<ID>,
        column_values: Json,
        create_labels_if_missing: Option<bool>,
    ) -> Result<Option<ItemObject>> {
        let _ = create_labels_if_missing;
        let Value::Object(values) = column_values.decode()? else {
            return Err(app_error("ColumnValueException", "column_values must be a JSON object", 200, json!({})));
        };
        write(ctx, &board_id, item_id.as_ref(), values).map(Some)
    }

    #[graphql(complexity = "cost::mutation(child_complexity)")]
    async fn change_column_value(
        &self,
        ctx: &Context<'_>,
        board_id: ID,
        item_id: Option<ID>,
        column_id: String,
        value: Json,
        create_labels_if_missing: Option<bool>,
    ) -> Result<Option<ItemObject>> {
        let _ = create_labels_if_missing;
        let values = Map::from_iter([(column_id, value.decode()?)]);
        write(ctx, &board_id, item_id.as_ref(), values).map(Some)
    }

    #[graphql(complexity = "cost::mutation(child_complexity)")]
    async fn change_simple_column_value(
        &self,
        ctx: &Context<'_>,
        board_id: ID,
        item_id: Option<ID>,
        column_id: String,
        value: Option<String>,
        create_labels_if_missing: Option<bool>,
    ) -> Result<Option<ItemObject>> {
        let _ = create_labels_if_missing;
        let values = Map::from_iter([(column_id, value.map_or(Value::Null, Value::String))]);
        write(ctx, &board_id, item_id.as_ref(), values).map(Some)
    }
}

fn write(ctx: &Context<'_>, board_id: &ID, item_id: Option<&ID>, values: Map<String, Value>) -> Result<ItemObject> {
    require(ctx, "boards:write")?;
    let account_id = caller(ctx).account_id;
    let shared: &Shared = shared(ctx);
    let mut st = shared.lock().unwrap();
    let now = st.clock.now();
    let ws = &mut st.api.workspace;
    let board_data = json!({ "board_id": board_id.as_str() });
    let Some(board) =
        board_id.parse().ok().and_then(|id: u64| ws.boards.get(&id)).filter(|b| b.account_id == account_id)
    else {
        return Err(app_error("InvalidBoardIdException", "The board does not exist", 200, board_data));
    };
    if board.locked {
        let mut meter = meter(ctx).lock().unwrap();
        meter.status = Some(423);
        meter.retry_after = Some(1);
        return Err(app_error("ResourceLocked", "Resource is currently locked", 423, board_data));
    }
    let item = item_id
        .and_then(|id| id.parse().ok())
        .and_then(|id: u64| ws.items.get(&id))
        .filter(|item| item.board_id == board.id);
    let Some(item) = item else {
        let data = json!({ "item_id": item_id.map(|id| id.as_str()) });
        return Err(app_error("ResourceNotFoundException", "Item not found in board", 200, data));
    };
    for (column_id, value) in &values {
        if column_id == "name" {
            continue;
        }
        let Some(column) = board.columns.iter().find(|c| &c.id == column_id) else {
            let data = json!({ "column_id": column_id, "board_id": board.id });
            return Err(app_error("InvalidColumnIdException", "This column ID doesn't exist for the board", 200, data));
        };
        let numeric = match value {
            Value::Number(_) | Value::Null => true,
            Value::String(s) => s.is_empty() || s.parse::<f64>().is_ok(),
            _ => false,
        };
        if column.kind == "numbers" && !numeric {
            let data =
                json!({ "column_id": column_id, "column_value": value.to_string(), "column_type": "NumericColumn" });
            return Err(app_error(
                "ColumnValueException",
                "invalid value, please check our API documentation for the correct data structure for this column.",
                200,
                data,
            ));
        }
    }
    let item_id = item.id;
    let item = ws.item_mut(item_id);
    for (column_id, value) in values {
        match (column_id.as_str(), value) {
            ("name", Value::String(name)) => item.name = name,
            (_, Value::Null) => {
                item.values.remove(&column_id);
            }
            (_, value) => {
                item.values.insert(column_id, value);
            }
        }
    }
    ws.touch(item_id, now);
    let item = &ws.items[&item_id];
    Ok(ItemObject::of(&ws.boards[&item.board_id], item))
}
