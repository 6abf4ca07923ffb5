//! Provider error classification (architecture §4.2): a pure function from the facts of one
//! answer to what the caller should do about it.
//!
//! Provider error codes come in several spellings (`COMPLEXITY_BUDGET_EXHAUSTED`,
//! `complexityBudgetExhausted`, legacy `ComplexityException`), so codes and messages are compared
//! after folding to lower-case alphanumerics. monday.com reports application errors with HTTP 200,
//! in the current shape (`errors[].extensions.code`) or the legacy one (`error_code`,
//! `error_message`, `status_code` at the top level); both are read.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

use crate::{
    error::{sanitize_code, ErrorClass},
    provider::{MondayFlow, ProviderId},
};

#[cfg(test)]
mod tests;

/// Everything classification looks at: one answer from one provider.
#[derive(Debug, Clone, Copy)]
pub struct ResponseFacts<'a> {
    /// Which provider answered.
    pub provider: ProviderId,
    /// monday.com's flow (decides whether a 401 can be cured by a refresh).
    pub monday_flow: Option<MondayFlow>,
    /// Whether this was a token endpoint call (exchange, refresh, revoke, migrate) rather than an API call.
    pub token_endpoint: bool,
    /// The HTTP status.
    pub status: u16,
    /// The response headers (`Retry-After`).
    pub headers: &'a HeaderMap,
    /// The raw body.
    pub body: &'a [u8],
}

/// The verdict on a failed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// What to do.
    pub class: ErrorClass,
    /// The provider's error code (sanitised) or a fixed label; never body text.
    pub reason: String,
}

// Folded (lower-case alphanumeric) spellings.
const TERMINAL_GRANT: &[&str] = &["invalidgrant", "invalidclient", "unauthorizedclient", "invalidtoken"];
const RATE_CODES: &[&str] = &[
    "complexitybudgetexhausted",
    "complexityexception",
    "dailylimitexceeded",
    "maxconcurrencyexceeded",
    "concurrencylimitexceeded",
    "fieldlimitexceeded",
    "ipratelimitexceeded",
    "ratelimitexceeded",
    "userratelimitexceeded",
    "minutelimitexceeded",
    "quotaexceeded",
    "toomanyrequests",
];
const RATE_MESSAGES: &[&str] = &[
    "ratelimitexceeded",
    "complexitybudgetexhausted",
    "minutelimitrateexceeded",
    "concurrencylimitexceeded",
    "calllimitexceeded",
    "dailylimitexceeded",
];
const TRANSIENT_CODES: &[&str] =
    &["apitemporarilyblocked", "temporaryunavailable", "temporarilyunavailable", "servererror", "backenderror"];
const PERMISSION_CODES: &[&str] = &[
    "userunauthorizedexception",
    "missingrequiredpermissions",
    "useraccessdenied",
    "forbidden",
    "forbiddenfornonorganizer",
    "insufficientpermissions",
    "insufficientscope",
    "accesstokenscopeinsufficient",
    "permissiondenied",
];
const IP_RESTRICTED: &str = "ipisrestricted";

fn fold(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// Codes, messages and retry hints found in an error body, in any of the known shapes.
#[derive(Default)]
struct Signals {
    /// Raw codes, in order of appearance.
    codes: Vec<String>,
    /// Folded messages (for matching only; never reported).
    messages: Vec<String>,
    retry_in: Option<Duration>,
}

impl Signals {
    fn from_body(body: &[u8]) -> Self {
        let mut signals = Self::default();
        match serde_json::from_slice::<Value>(body) {
            Ok(json) => signals.read_json(&json),
            Err(_) => {
                let text = fold(&String::from_utf8_lossy(&body[..body.len().min(512)]));
                if !text.is_empty() {
                    signals.messages.push(text);
                }
            }
        }
        signals
    }

    fn read_json(&mut self, json: &Value) {
        match json.get("error") {
            // OAuth: {"error": "invalid_grant", "error_description": "..."}
            Some(Value::String(code)) => self.codes.push(code.clone()),
            // Google API: {"error": {"errors": [{"reason"}], "status", "message"}}
            Some(error @ Value::Object(_)) => {
                for item in error.get("errors").and_then(Value::as_array).into_iter().flatten() {
                    self.code(item.get("reason"));
                    self.message(item.get("message"));
                }
                self.code(error.get("status"));
                self.message(error.get("message"));
            }
            _ => {}
        }
        // monday.com legacy top-level shape.
        self.code(json.get("error_code"));
        self.message(json.get("error_message"));
        self.retry(json.get("retry_in_seconds"));
        self.retry(json.get("error_data").and_then(|d| d.get("retry_in_seconds")));
        // GraphQL errors (monday.com current shape).
        for item in json.get("errors").and_then(Value::as_array).into_iter().flatten() {
            self.message(item.get("message"));
            self.code(item.get("error_code"));
            if let Some(ext) = item.get("extensions") {
                self.code(ext.get("code"));
                self.retry(ext.get("retry_in_seconds"));
                self.retry(ext.get("error_data").and_then(|d| d.get("retry_in_seconds")));
            }
        }
    }

    fn code(&mut self, value: Option<&Value>) {
        if let Some(code) = value.and_then(Value::as_str).filter(|c| !c.is_empty()) {
            self.codes.push(code.to_owned());
        }
    }

    fn message(&mut self, value: Option<&Value>) {
        if let Some(message) = value.and_then(Value::as_str) {
            self.messages.push(fold(message));
        }
    }

    fn retry(&mut self, value: Option<&Value>) {
        if self.retry_in.is_none() {
            self.retry_in = value.and_then(seconds).map(Duration::from_secs);
        }
    }

    fn is_empty(&self) -> bool {
        self.codes.is_empty() && self.messages.is_empty()
    }

    /// The first code whose folded form is in `set`.
    fn code_in(&self, set: &[&str]) -> Option<&str> {
        self.codes.iter().find(|c| set.contains(&fold(c).as_str())).map(String::as_str)
    }

    fn message_contains(&self, needles: &[&str]) -> bool {
        self.messages.iter().any(|m| needles.iter().any(|n| m.contains(n)))
    }

    /// The first code, sanitised, or `fallback`.
    fn first_code_or(&self, fallback: &str) -> String {
        self.codes.first().map_or_else(|| fallback.to_owned(), |c| sanitize_code(c, fallback))
    }
}

fn seconds(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f.ceil() as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `Retry-After` as delta-seconds (the HTTP-date form is not used by these providers).
fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

/// Classifies one answer; `None` means it is not an error (2xx without error payload).
pub fn classify(facts: &ResponseFacts<'_>) -> Option<Classification> {
    let signals = Signals::from_body(facts.body);
    let retry_after = retry_after_header(facts.headers).or(signals.retry_in);
    let verdict = |class: ErrorClass, reason: String| Some(Classification { class, reason });
    let success = (200..300).contains(&facts.status);

    if facts.token_endpoint {
        if success {
            return None;
        }
        if let Some(code) = signals.code_in(TERMINAL_GRANT) {
            return verdict(ErrorClass::Terminal, sanitize_code(code, "invalid_grant"));
        }
    }
    if let Some(code) = signals.code_in(RATE_CODES) {
        return verdict(ErrorClass::RateLimited { retry_after }, sanitize_code(code, "rate_limited"));
    }
    if signals.message_contains(RATE_MESSAGES) {
        return verdict(ErrorClass::RateLimited { retry_after }, "rate_limit_exceeded".to_owned());
    }
    if let Some(code) = signals.code_in(TRANSIENT_CODES) {
        return verdict(ErrorClass::Transient { retry_after }, sanitize_code(code, "temporarily_unavailable"));
    }
    if facts.status == 429 {
        return verdict(ErrorClass::RateLimited { retry_after }, signals.first_code_or("http_429"));
    }
    if facts.status >= 500 {
        return verdict(
            ErrorClass::Transient { retry_after },
            signals.first_code_or(&format!("http_{}", facts.status)),
        );
    }
    if facts.token_endpoint {
        // A 401 from a token endpoint is failed client authentication.
        let class = if facts.status == 401 { ErrorClass::Terminal } else { ErrorClass::Rejected };
        return verdict(class, signals.first_code_or(&format!("http_{}", facts.status)));
    }
    classify_api(facts, &signals)
}

fn classify_api(facts: &ResponseFacts<'_>, signals: &Signals) -> Option<Classification> {
    let verdict = |class: ErrorClass, reason: String| Some(Classification { class, reason });
    if signals.message_contains(&[IP_RESTRICTED]) {
        return verdict(ErrorClass::Permission, "ip_restricted".to_owned());
    }
    if facts.status == 401 {
        return match (facts.provider, facts.monday_flow) {
            // Legacy tokens cannot be refreshed: a 401 means the app was uninstalled.
            (ProviderId::Monday, Some(MondayFlow::Legacy)) => {
                verdict(ErrorClass::Revoked, "not_authenticated".to_owned())
            }
            _ => verdict(ErrorClass::RefreshAndRetry, signals.first_code_or("unauthorized")),
        };
    }
    if let Some(code) = signals.code_in(PERMISSION_CODES) {
        return verdict(ErrorClass::Permission, sanitize_code(code, "forbidden"));
    }
    if facts.status == 403 {
        return verdict(ErrorClass::Permission, signals.first_code_or("forbidden"));
    }
    if (200..300).contains(&facts.status) {
        // Google success bodies never carry `error`; monday.com app errors come with 200.
        return (!signals.is_empty() && facts.provider == ProviderId::Monday)
            .then(|| Classification { class: ErrorClass::Rejected, reason: signals.first_code_or("graphql_error") });
    }
    verdict(ErrorClass::Rejected, signals.first_code_or(&format!("http_{}", facts.status)))
}
