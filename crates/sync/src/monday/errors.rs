//! monday's GraphQL error answers (providers.md A2.1, A3): application errors come with HTTP 200,
//! either as `errors[]` with `extensions.code` (API ≥ 2025-01) or as the legacy top-level
//! `error_code` / `error_message` / `status_code` (older versions, and the 2024-10 transition
//! that sends both). Both are read; the worst error decides what the caller is told.

use serde_json::Value;

/// One error of a GraphQL answer, reduced to what decides its handling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GraphqlError {
    /// The provider's code as sent (`extensions.code`, or legacy `error_code`), if any.
    pub code: Option<String>,
    /// The provider's message as sent; only ever reported after [`sanitize_message`].
    pub message: String,
    /// `retry_in_seconds`, or the seconds named by a legacy "reset in N seconds" message.
    pub retry_in: Option<u64>,
    /// `status_code` the body states (not the HTTP status, which is 200 here).
    pub status_code: Option<u64>,
}

/// What an error means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ErrorKind {
    /// The provider refused this request itself (bad argument, expired cursor, …).
    Rejected,
    /// The token may not read or write this resource.
    Permission,
    /// The provider is passing through trouble (`API_TEMPORARILY_BLOCKED`, a stated 5xx).
    Transient,
    /// A rate limit (complexity budget, minute, daily, concurrency): wait `retry_in`.
    RateLimited,
}

// Folded (lower-case alphanumeric) spellings, because monday spells the same code several ways
// (`COMPLEXITY_BUDGET_EXHAUSTED`, `complexityBudgetExhausted`, legacy `ComplexityException`).
const RATE_CODES: &[&str] = &[
    "complexitybudgetexhausted",
    "complexityexception",
    "dailylimitexceeded",
    "maxconcurrencyexceeded",
    "concurrencylimitexceeded",
    "fieldlimitexceeded",
    "ratelimitexceeded",
    "minutelimitexceeded",
    "ipratelimitexceeded",
];
const RATE_MESSAGES: &[&str] = &[
    "ratelimitexceeded",
    "minutelimitrateexceeded",
    "complexitybudgetexhausted",
    "concurrencylimitexceeded",
    "dailylimitexceeded",
    "calllimitexceeded",
];
const TRANSIENT_CODES: &[&str] = &["apitemporarilyblocked", "internalservererror", "servererror"];
const PERMISSION_CODES: &[&str] = &[
    "userunauthorizedexception",
    "missingrequiredpermissions",
    "useraccessdenied",
    "forbidden",
    "permissiondenied",
    "insufficientscope",
];

/// Lower-case ASCII letters and digits only.
pub(crate) fn fold(text: &str) -> String {
    text.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

impl GraphqlError {
    /// How to treat this error.
    pub fn kind(&self) -> ErrorKind {
        let code = self.code.as_deref().map(fold).unwrap_or_default();
        let message = fold(&self.message);
        if RATE_CODES.contains(&code.as_str())
            || RATE_MESSAGES.iter().any(|m| message.contains(m))
            || self.status_code == Some(429)
        {
            ErrorKind::RateLimited
        } else if TRANSIENT_CODES.contains(&code.as_str()) || self.status_code.is_some_and(|s| s >= 500) {
            ErrorKind::Transient
        } else if PERMISSION_CODES.contains(&code.as_str()) || self.status_code == Some(403) {
            ErrorKind::Permission
        } else {
            ErrorKind::Rejected
        }
    }

    /// The code fit to report: only code-like text survives, anything else becomes a label.
    pub fn safe_code(&self) -> String {
        self.code.as_deref().map_or_else(|| "graphql_error".to_owned(), |c| sanitize_code(c, "graphql_error"))
    }
}

/// Every error a body reports, in both shapes; empty when the answer is not an error.
pub(crate) fn read_errors(body: &Value) -> Vec<GraphqlError> {
    let mut found: Vec<GraphqlError> = body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|error| {
            let ext = error.get("extensions");
            let field = |name: &str| ext.and_then(|e| e.get(name)).or_else(|| error.get(name));
            let message = text(error.get("message"));
            GraphqlError {
                code: field("code").or_else(|| error.get("error_code")).and_then(Value::as_str).map(str::to_owned),
                retry_in: retry_of(field("retry_in_seconds"), field("error_data"), &message),
                status_code: field("status_code").and_then(number),
                message,
            }
        })
        .collect();
    let legacy_code = body.get("error_code").and_then(Value::as_str);
    let legacy_message = body.get("error_message").and_then(Value::as_str);
    if legacy_code.is_some() || legacy_message.is_some() {
        let message = legacy_message.unwrap_or_default().to_owned();
        found.push(GraphqlError {
            code: legacy_code.map(str::to_owned),
            retry_in: retry_of(body.get("retry_in_seconds"), body.get("error_data"), &message),
            status_code: body.get("status_code").and_then(number),
            message,
        });
    }
    found
}

/// The error that decides the answer: a rate limit over trouble over permission over a refusal.
pub(crate) fn worst(errors: Vec<GraphqlError>) -> Option<GraphqlError> {
    errors.into_iter().rev().max_by_key(GraphqlError::kind)
}

fn text(value: Option<&Value>) -> String {
    value.and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f.ceil() as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `retry_in_seconds` beside the code or in `error_data`, else the legacy message's
/// "… reset in 23 seconds".
fn retry_of(direct: Option<&Value>, data: Option<&Value>, message: &str) -> Option<u64> {
    direct.and_then(number).or_else(|| data.and_then(|d| d.get("retry_in_seconds")).and_then(number)).or_else(|| {
        let rest = &message[message.find("reset in ")? + "reset in ".len()..];
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Keeps a code only if it looks like one; anything else becomes `fallback`.
pub(crate) fn sanitize_code(code: &str, fallback: &str) -> String {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok { code } else { fallback }.to_owned()
}

/// A provider message fit for logs and run rows: quoted parts (where monday echoes values,
/// names and cursors) are dropped, non-ASCII and control characters too, and it is cut short.
pub(crate) fn sanitize_message(message: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' || c == '`' => {
                quote = Some(c);
                out.push('…');
            }
            None if c.is_ascii_graphic() || c == ' ' => out.push(c),
            None => {}
        }
    }
    let mut out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > 160 {
        out = out.chars().take(160).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests;
