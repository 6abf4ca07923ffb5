//! Item paging (providers.md A2.2): `items_page` on a board filters active items by
//! `query_params`, orders them (`__last_updated__`, `__creation_log__`, a column, else by id) and
//! takes a snapshot of the matching ids; each page hands out a fresh cursor to the rest of the
//! snapshot, read by root `next_items_page`, and `null` after the last page. A cursor dies
//! `cursor_lifetime` (default 60 minutes) after the snapshot's first page. Items archived or
//! deleted after the snapshot are left out of later pages.

use super::boards::{text_of, Item, Lifecycle};
use super::errors::app_error;
use super::schema::{caller, shared};
use super::state::MondayState;
use super::types::{Direction, ItemObject, ItemsQuery, ItemsResponse, QueryOperator, Rule, RuleOperator};
use crate::fakes::common::random_token;
use async_graphql::{Context, Error, ErrorExtensions as _, Result, ID};
use serde_json::{json, Value};
use std::sync::Arc;

/// The most `items_page` / `next_items_page` return at once.
pub(super) const MAX_PAGE: i32 = 500;

/// A cursor: where in which snapshot the next page starts.
pub(super) struct Cursor {
    pub account_id: u64,
    pub ids: Arc<Vec<u64>>,
    pub pos: usize,
    /// Unix seconds of the snapshot's first page.
    pub issued: u64,
}

fn check_limit(limit: i32) -> Result<usize> {
    match usize::try_from(limit) {
        Ok(n) if (1..=500).contains(&limit) => Ok(n),
        _ => Err(app_error(
            "InvalidArgumentException",
            &format!("limit must be between 1 and {MAX_PAGE}"),
            200,
            json!({ "limit": limit }),
        )),
    }
}

pub(super) fn first_page(
    ctx: &Context<'_>,
    board_id: &ID,
    limit: i32,
    cursor: Option<String>,
    query: Option<ItemsQuery>,
) -> Result<ItemsResponse> {
    if let Some(cursor) = cursor {
        if query.is_some() {
            return Err(app_error(
                "InvalidArgumentException",
                "cursor and query_params cannot be used together; the cursor carries the query",
                200,
                json!({}),
            ));
        }
        return next_page(ctx, &cursor, limit);
    }
    let limit = check_limit(limit)?;
    let account_id = caller(ctx).account_id;
    let mut st = shared(ctx).lock().unwrap();
    let board_id: u64 = board_id.parse().unwrap_or_default();
    let ids = matching(&st, board_id, query.unwrap_or_default())?;
    let now = st.clock.unix();
    let cursor = Cursor { account_id, ids: Arc::new(ids), pos: 0, issued: now };
    Ok(page(&mut st, cursor, limit))
}

pub(super) fn next_page(ctx: &Context<'_>, token: &str, limit: i32) -> Result<ItemsResponse> {
    let limit = check_limit(limit)?;
    let account_id = caller(ctx).account_id;
    let mut st = shared(ctx).lock().unwrap();
    let now = st.clock.unix();
    let lifetime = st.api.cursor_lifetime.as_secs();
    let Some(cursor) = st.api.cursors.get(token).filter(|c| c.account_id == account_id) else {
        return Err(app_error("InvalidCursorException", "The cursor is not valid", 200, json!({ "cursor": token })));
    };
    if now >= cursor.issued + lifetime {
        let message = "The cursor provided for pagination has expired. Please refresh your query and try again.";
        return Err(app_error("CursorExpiredError", message, 200, json!({ "cursor": token })));
    }
    let cursor = Cursor { ids: cursor.ids.clone(), ..*cursor };
    Ok(page(&mut st, cursor, limit))
}

/// The page of `limit` ids at the cursor, and a cursor to what follows (if anything does).
fn page(st: &mut MondayState, cursor: Cursor, limit: usize) -> ItemsResponse {
    let end = (cursor.pos + limit).min(cursor.ids.len());
    let ws = &st.api.workspace;
    let items = cursor.ids[cursor.pos..end]
        .iter()
        .filter_map(|id| ws.items.get(id))
        .filter(|item| item.state == Lifecycle::Active)
        .filter_map(|item| ws.boards.get(&item.board_id).map(|board| ItemObject::of(board, item)))
        .collect();
    let next = (end < cursor.ids.len()).then(|| {
        let token = random_token("");
        st.api.cursors.insert(token.clone(), Cursor { pos: end, ..cursor });
        token
    });
    ItemsResponse { cursor: next, items }
}

/// The ids of the board's active items that `query` selects, in its order.
fn matching(st: &MondayState, board_id: u64, query: ItemsQuery) -> Result<Vec<u64>> {
    let ws = &st.api.workspace;
    let wanted: Option<Vec<u64>> = query.ids.map(|ids| ids.iter().filter_map(|id| id.parse().ok()).collect());
    let rules = query.rules.unwrap_or_default();
    let any = query.operator == Some(QueryOperator::Or);
    let mut items = Vec::new();
    for item in ws.items_of(board_id).filter(|i| i.state == Lifecycle::Active) {
        if wanted.as_ref().is_some_and(|ids| !ids.contains(&item.id)) {
            continue;
        }
        let results = rules.iter().map(|rule| rule_matches(item, rule)).collect::<Result<Vec<bool>>>()?;
        let selected = results.is_empty() || if any { results.contains(&true) } else { !results.contains(&false) };
        if selected {
            items.push(item);
        }
    }
    if let Some(order) = query.order_by.as_ref().and_then(|o| o.first()) {
        match order.column_id.as_str() {
            "__last_updated__" => items.sort_by_key(|i| i.touched),
            "__creation_log__" => items.sort_by_key(|i| i.id),
            column => items.sort_by_key(|i| (column_text(i, column), i.id)),
        }
        if order.direction == Direction::Desc {
            items.reverse();
        }
    }
    Ok(items.into_iter().map(|i| i.id).collect())
}

fn column_text(item: &Item, column: &str) -> String {
    if column == "name" {
        return item.name.clone();
    }
    item.values.get(column).map(text_of).unwrap_or_default()
}

/// One rule of `query_params`; operators the fake does not implement are an error, so a test
/// never passes on a filter that was silently ignored.
fn rule_matches(item: &Item, rule: &Rule) -> Result<bool> {
    let values: Vec<Value> = match &rule.compare_value.0 {
        Value::Array(values) => values.clone(),
        other => vec![other.clone()],
    };
    let strings: Vec<String> = values.iter().map(text_of).collect();
    let column = rule.column_id.as_str();
    if column == "__last_updated__" || column == "__creation_log__" {
        let at = if column == "__last_updated__" { item.updated_at } else { item.created_at };
        let at = chrono::DateTime::<chrono::Utc>::from(at).timestamp();
        let bounds: Vec<i64> = strings
            .iter()
            .filter_map(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp())
            .collect();
        return compare(rule.operator, at, &bounds);
    }
    let text = column_text(item, column);
    Ok(match rule.operator {
        RuleOperator::AnyOf => strings.contains(&text),
        RuleOperator::NotAnyOf => !strings.contains(&text),
        RuleOperator::IsEmpty => text.is_empty(),
        RuleOperator::IsNotEmpty => !text.is_empty(),
        RuleOperator::ContainsText => strings.iter().any(|s| text.contains(s.as_str())),
        RuleOperator::NotContainsText => !strings.iter().any(|s| text.contains(s.as_str())),
        other => {
            let number = |s: &str| s.parse::<f64>().ok().map(|n| (n * 1000.0) as i64);
            let Some(value) = number(&text) else { return Ok(false) };
            let bounds: Vec<i64> = strings.iter().filter_map(|s| number(s)).collect();
            return compare(other, value, &bounds);
        }
    })
}

fn compare(operator: RuleOperator, value: i64, bounds: &[i64]) -> Result<bool> {
    let unsupported = || {
        Error::new(format!("The fake monday does not implement {operator:?} with these values"))
            .extend_with(|_, e| e.set("code", "UNSUPPORTED_BY_FAKE"))
    };
    let first = bounds.first().copied().ok_or_else(unsupported)?;
    Ok(match operator {
        RuleOperator::GreaterThan => value > first,
        RuleOperator::GreaterThanOrEquals => value >= first,
        RuleOperator::LowerThan => value < first,
        RuleOperator::LowerThanOrEqual => value <= first,
        RuleOperator::Between => bounds.get(1).is_some_and(|last| (first..=*last).contains(&value)),
        _ => return Err(unsupported()),
    })
}
