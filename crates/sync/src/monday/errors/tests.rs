//! The error shapes monday has sent over its API versions, read into the same verdicts.

use super::*;
use serde_json::json;

fn only(body: Value) -> GraphqlError {
    worst(read_errors(&body)).expect("the body holds an error")
}

#[test]
fn the_current_shape_is_read_from_extensions() {
    let error = only(json!({ "errors": [{ "message": "Complexity budget exhausted",
        "extensions": { "code": "COMPLEXITY_BUDGET_EXHAUSTED", "retry_in_seconds": 7 } }], "account_id": 1 }));
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_in, Some(7));
    assert_eq!(error.safe_code(), "COMPLEXITY_BUDGET_EXHAUSTED");
}

#[test]
fn the_legacy_shape_is_read_from_the_top_level() {
    let error = only(json!({ "error_code": "ComplexityException", "status_code": 429,
        "error_message": "Complexity budget exhausted, query cost 30001 budget remaining 19986 out of 1000000 reset in 3 seconds",
        "error_data": {} }));
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_in, Some(3), "the legacy message names the wait");

    let field = only(json!({ "error_code": "FIELD_LIMIT_EXCEEDED", "status_code": 429,
        "error_message": "Concurrency limit exceeded for the field",
        "error_data": { "retry_in_seconds": 15, "entity": "boards" } }));
    assert_eq!((field.kind(), field.retry_in), (ErrorKind::RateLimited, Some(15)));

    let minute = only(json!({ "error_message": "Rate Limit Exceeded.", "status_code": 429 }));
    assert_eq!(minute.kind(), ErrorKind::RateLimited);
}

#[test]
fn each_code_family_gets_its_verdict() {
    let cases = [
        ("DAILY_LIMIT_EXCEEDED", ErrorKind::RateLimited),
        ("maxConcurrencyExceeded", ErrorKind::RateLimited),
        ("RATE_LIMIT_EXCEEDED", ErrorKind::RateLimited),
        ("API_TEMPORARILY_BLOCKED", ErrorKind::Transient),
        ("missingRequiredPermissions", ErrorKind::Permission),
        ("UserUnauthorizedException", ErrorKind::Permission),
        ("USER_ACCESS_DENIED", ErrorKind::Permission),
        ("CursorExpiredError", ErrorKind::Rejected),
        ("ColumnValueException", ErrorKind::Rejected),
    ];
    for (code, kind) in cases {
        let current = only(json!({ "errors": [{ "message": "m", "extensions": { "code": code } }] }));
        let legacy = only(json!({ "error_code": code, "error_message": "m", "status_code": 200 }));
        assert_eq!(current.kind(), kind, "{code} in the current shape");
        assert_eq!(legacy.kind(), kind, "{code} in the legacy shape");
    }
}

#[test]
fn the_transitional_shape_and_several_errors_yield_the_worst() {
    let body = json!({
        "errors": [
            { "message": "Field 'x' doesn't exist on type 'Item'", "extensions": { "code": "undefinedField" } },
            { "message": "Daily limit exceeded", "extensions": { "code": "DAILY_LIMIT_EXCEEDED", "retry_in_seconds": 99 } },
        ],
        "error_code": "DAILY_LIMIT_EXCEEDED", "error_message": "Daily limit exceeded", "status_code": 429,
    });
    let error = only(body);
    assert_eq!((error.kind(), error.retry_in), (ErrorKind::RateLimited, Some(99)));
}

#[test]
fn a_success_body_has_no_errors() {
    assert!(read_errors(&json!({ "data": { "boards": [] }, "account_id": 1 })).is_empty());
    assert!(read_errors(&json!({ "data": {}, "errors": [] })).is_empty());
}

#[test]
fn reported_text_carries_no_values() {
    let message = "Column value \"Secret project\" is invalid for 'status' (see docs)\n";
    assert_eq!(sanitize_message(message), "Column value … is invalid for … (see docs)");
    assert_eq!(sanitize_code("ColumnValueException", "x"), "ColumnValueException");
    assert_eq!(sanitize_code("Item Secret failed", "graphql_error"), "graphql_error");
    assert!(sanitize_message(&"a".repeat(500)).chars().count() <= 161);
}
