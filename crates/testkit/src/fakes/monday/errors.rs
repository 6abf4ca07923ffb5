//! monday's error answers (providers.md A2.1, A3): application errors raised by resolvers, the
//! engine's validation and parse errors reworded as monday words them, and the body shape a
//! switch picks — the current `errors[]` shape, the legacy top-level `error_code` /
//! `error_message` / `status_code` shape, or the 2024-10 transition that carries both.

use async_graphql::{Error, ErrorExtensions};
use serde_json::{json, Value};

/// How application errors are laid out in the body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorShape {
    /// API ≥ 2025-01: `errors: [{message, locations, path, extensions: {code, error_data,
    /// status_code}}]`, partial `data`.
    #[default]
    Current,
    /// Before 2024-10: `{error_code, status_code, error_message, error_data, account_id}` at the
    /// top level and no `errors` (GraphQL validation errors keep `errors[]`, as then).
    Legacy,
    /// 2024-10: the current `errors[]` and the legacy top-level fields together.
    Transitional,
}

/// The private extension key carrying an error's legacy rendering until the body is shaped.
const LEGACY: &str = "__legacy";

/// An application error: `code` in `extensions`, `status_code` and `error_data` beside it.
pub(super) fn app_error(code: &str, message: &str, status_code: u16, error_data: Value) -> Error {
    let legacy = json!({ "error_code": code, "status_code": status_code, "error_message": message,
        "error_data": error_data });
    Error::new(message).extend_with(|_, e| {
        e.set("code", code);
        e.set("error_data", async_graphql::Value::from_json(error_data.clone()).unwrap_or_default());
        e.set("status_code", status_code);
        e.set(LEGACY, async_graphql::Value::from_json(legacy.clone()).unwrap_or_default());
    })
}

/// `COMPLEXITY_BUDGET_EXHAUSTED` (≥ 2025-07 shape); legacy `ComplexityException`.
pub(super) fn budget_exhausted(cost: u64, remaining: u64, limit: u64, retry_in: u64) -> Error {
    let legacy_message = format!(
        "Complexity budget exhausted, query cost {cost} budget remaining {remaining} out of {limit} reset in {retry_in} seconds"
    );
    let legacy = json!({ "error_code": "ComplexityException", "status_code": 429,
        "error_message": legacy_message, "error_data": {} });
    Error::new("Complexity budget exhausted").extend_with(|_, e| {
        e.set("code", "COMPLEXITY_BUDGET_EXHAUSTED");
        e.set("retry_in_seconds", retry_in);
        e.set(LEGACY, async_graphql::Value::from_json(legacy.clone()).unwrap_or_default());
    })
}

/// `Permission Denied!` for a token without `scope` (HTTP 200).
pub(super) fn missing_scope(scope: &str) -> Error {
    let message = format!("Permission Denied! Your token doesn't grant access to {scope}");
    app_error("missingRequiredPermissions", &message, 403, json!({ "missing_scope": scope }))
}

/// A body for an error answered before the query ran (rate limits), in the chosen shape.
pub(super) fn refusal_body(shape: ErrorShape, error: Value, legacy: Value, account_id: u64) -> Value {
    let mut body = match shape {
        ErrorShape::Current => json!({ "errors": [error] }),
        ErrorShape::Legacy => legacy,
        ErrorShape::Transitional => {
            let mut body = legacy;
            body["errors"] = json!([error]);
            body
        }
    };
    body["account_id"] = account_id.into();
    body
}

/// Rewords engine errors as monday does and lays application errors out in `shape`. `query`
/// is the request's query text (to name the token a parse error stopped at).
pub(super) fn shape_body(mut body: Value, shape: ErrorShape, parse_failed: bool, query: &str) -> Value {
    let Some(errors) = body.get_mut("errors").and_then(Value::as_array_mut) else {
        return body;
    };
    let mut legacy = None;
    for error in errors.iter_mut() {
        if let Some(found) =
            error.pointer_mut("/extensions").and_then(Value::as_object_mut).and_then(|e| e.remove(LEGACY))
        {
            legacy = legacy.or(Some(found));
        } else if parse_failed {
            *error = parse_error(error, query);
        } else {
            reword(error);
        }
    }
    match (shape, legacy) {
        (ErrorShape::Current, _) | (_, None) => body,
        (ErrorShape::Legacy, Some(legacy)) => legacy,
        (ErrorShape::Transitional, Some(mut legacy)) => {
            legacy["errors"] = body["errors"].take();
            if let Some(data) = body.get_mut("data") {
                legacy["data"] = data.take();
            }
            legacy
        }
    }
}

/// `Parse error on "}" (RCURLY) at [1, 10]`, graphql-ruby's wording, which monday answers with
/// HTTP 200.
fn parse_error(error: &Value, query: &str) -> Value {
    let line = error.pointer("/locations/0/line").and_then(Value::as_u64).unwrap_or(1);
    let column = error.pointer("/locations/0/column").and_then(Value::as_u64).unwrap_or(1);
    let rest: String = query
        .lines()
        .nth(usize::try_from(line).unwrap_or(1).saturating_sub(1))
        .map(|l| l.chars().skip(usize::try_from(column).unwrap_or(1).saturating_sub(1)).collect())
        .unwrap_or_default();
    let token = match rest.trim_start().chars().next() {
        None => {
            return json!({ "message": "Unexpected end of document", "locations": error["locations"],
            "extensions": { "code": "PARSING_ERROR" } })
        }
        Some(c) => match c {
            '{' => ("{".to_owned(), "LCURLY"),
            '}' => ("}".to_owned(), "RCURLY"),
            '(' => ("(".to_owned(), "LPAREN"),
            ')' => (")".to_owned(), "RPAREN"),
            '[' => ("[".to_owned(), "LBRACKET"),
            ']' => ("]".to_owned(), "RBRACKET"),
            ':' => (":".to_owned(), "COLON"),
            _ => {
                let word: String = rest.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if word.is_empty() {
                    (c.to_string(), "UNKNOWN_CHAR")
                } else {
                    (word, "IDENTIFIER")
                }
            }
        },
    };
    json!({ "message": format!("Parse error on {:?} ({}) at [{line}, {column}]", token.0, token.1),
        "locations": error["locations"], "extensions": { "code": "PARSING_ERROR" } })
}

/// Engine validation messages in graphql-ruby's words, with its `extensions.code`.
fn reword(error: &mut Value) {
    let message = error["message"].as_str().unwrap_or_default().to_owned();
    let quoted: Vec<&str> = message.split('"').skip(1).step_by(2).collect();
    let (text, code) = if message.starts_with("Unknown field") && quoted.len() >= 2 {
        (format!("Field '{}' doesn't exist on type '{}'", quoted[0], quoted[1]), "undefinedField")
    } else if message.starts_with("Unknown argument") && quoted.len() >= 2 {
        (format!("Field '{}' doesn't accept argument '{}'", quoted[1], quoted[0]), "argumentNotAccepted")
    } else if message.contains("is required but not provided") {
        (message.clone(), "missingRequiredArguments")
    } else if message.starts_with("Invalid value for argument") {
        (message.clone(), "argumentLiteralsIncompatible")
    } else if error.pointer("/extensions/code").is_some() {
        return;
    } else {
        (message.clone(), "validationError")
    };
    error["message"] = text.into();
    error["extensions"] = json!({ "code": code });
}
