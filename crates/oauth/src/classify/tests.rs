//! The §4.2 classification table, one row per case, each with its description.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

use super::*;

use ErrorClass::*;

const G: ProviderId = ProviderId::Google;
const M: ProviderId = ProviderId::Monday;
const LEGACY: Option<MondayFlow> = Some(MondayFlow::Legacy);
const V2: Option<MondayFlow> = Some(MondayFlow::V2);
const TOKEN: bool = true;
const API: bool = false;

struct Row {
    description: &'static str,
    provider: ProviderId,
    flow: Option<MondayFlow>,
    token_endpoint: bool,
    status: u16,
    retry_after: Option<&'static str>,
    body: &'static str,
    expected: Option<(ErrorClass, &'static str)>,
}

#[allow(clippy::too_many_arguments)]
const fn row(
    description: &'static str,
    provider: ProviderId,
    flow: Option<MondayFlow>,
    token_endpoint: bool,
    status: u16,
    retry_after: Option<&'static str>,
    body: &'static str,
    expected: Option<(ErrorClass, &'static str)>,
) -> Row {
    Row { description, provider, flow, token_endpoint, status, retry_after, body, expected }
}

const fn rate(secs: Option<u64>) -> ErrorClass {
    RateLimited {
        retry_after: match secs {
            Some(s) => Some(Duration::from_secs(s)),
            None => None,
        },
    }
}

const fn transient(secs: Option<u64>) -> ErrorClass {
    Transient {
        retry_after: match secs {
            Some(s) => Some(Duration::from_secs(s)),
            None => None,
        },
    }
}

const GOOGLE_API_ERROR_401: &str = r#"{"error":{"errors":[{"domain":"global","reason":"authError","message":"Invalid Credentials","locationType":"header","location":"Authorization"}],"code":401,"message":"Invalid Credentials"}}"#;

#[rustfmt::skip]
fn table() -> Vec<Row> {
    vec![
        // --- terminal: refresh refused ---
        row("Google refresh: invalid_grant", G, None, TOKEN, 400, None, r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#, Some((Terminal, "invalid_grant"))),
        row("Google refresh: invalid_client", G, None, TOKEN, 401, None, r#"{"error":"invalid_client","error_description":"Unauthorized"}"#, Some((Terminal, "invalid_client"))),
        row("monday v2 refresh: unauthorized_client", M, V2, TOKEN, 400, None, r#"{"error":"unauthorized_client"}"#, Some((Terminal, "unauthorized_client"))),
        row("monday v2 refresh: invalid_grant (rotated refresh token reused)", M, V2, TOKEN, 400, None, r#"{"error":"invalid_grant"}"#, Some((Terminal, "invalid_grant"))),
        row("token endpoint 401 without a body: client authentication failed", M, V2, TOKEN, 401, None, "", Some((Terminal, "http_401"))),
        row("token endpoint invalid_request is a bad request, not a dead grant", G, None, TOKEN, 400, None, r#"{"error":"invalid_request"}"#, Some((Rejected, "invalid_request"))),
        row("token endpoint 200 is not an error", G, None, TOKEN, 200, None, r#"{"access_token":"a","token_type":"Bearer"}"#, None),
        // --- revoked ---
        row("monday legacy API 401 Not Authenticated (GraphQL errors)", M, LEGACY, API, 401, None, r#"{"errors":[{"message":"Not Authenticated"}]}"#, Some((Revoked, "not_authenticated"))),
        row("monday legacy API 401 Not Authenticated (legacy shape)", M, LEGACY, API, 401, None, r#"{"error_message":"Not Authenticated","status_code":401}"#, Some((Revoked, "not_authenticated"))),
        row("monday legacy API 401 with a plain-text body", M, LEGACY, API, 401, None, "Unauthorized", Some((Revoked, "not_authenticated"))),
        // --- refresh and retry ---
        row("Google API 401 authError", G, None, API, 401, None, GOOGLE_API_ERROR_401, Some((RefreshAndRetry, "authError"))),
        row("monday v2 API 401", M, V2, API, 401, None, r#"{"errors":[{"message":"Not Authenticated"}]}"#, Some((RefreshAndRetry, "unauthorized"))),
        // --- rate limited ---
        row("plain 429 with Retry-After", G, None, API, 429, Some("30"), "", Some((rate(Some(30)), "http_429"))),
        row("token endpoint 429 (monday migrate too_many_requests)", M, V2, TOKEN, 429, None, r#"{"error":"too_many_requests"}"#, Some((rate(None), "too_many_requests"))),
        row("Google 403 userRateLimitExceeded", G, None, API, 403, None, r#"{"error":{"errors":[{"domain":"usageLimits","reason":"userRateLimitExceeded","message":"User Rate Limit Exceeded"}],"code":403}}"#, Some((rate(None), "userRateLimitExceeded"))),
        row("Google 403 rateLimitExceeded", G, None, API, 403, None, r#"{"error":{"errors":[{"domain":"usageLimits","reason":"rateLimitExceeded","message":"Rate Limit Exceeded"}],"code":403}}"#, Some((rate(None), "rateLimitExceeded"))),
        row("Google 429 rateLimitExceeded", G, None, API, 429, None, r#"{"error":{"errors":[{"domain":"usageLimits","reason":"rateLimitExceeded"}],"code":429}}"#, Some((rate(None), "rateLimitExceeded"))),
        row("Google 403 quotaExceeded (usage limits)", G, None, API, 403, None, r#"{"error":{"errors":[{"domain":"usageLimits","reason":"quotaExceeded"}],"code":403}}"#, Some((rate(None), "quotaExceeded"))),
        row("monday COMPLEXITY_BUDGET_EXHAUSTED (>=2025-07) with retry_in_seconds", M, V2, API, 429, None, r#"{"errors":[{"message":"Complexity budget exhausted","extensions":{"code":"COMPLEXITY_BUDGET_EXHAUSTED","retry_in_seconds":7}}]}"#, Some((rate(Some(7)), "COMPLEXITY_BUDGET_EXHAUSTED"))),
        row("monday complexity budget, 2025-01 hotfix shape at HTTP 200", M, V2, API, 200, None, r#"{"errors":[{"message":"Complexity budget exhausted","extensions":{"code":"COMPLEXITY_BUDGET_EXHAUSTED","complexity":30001,"complexity_budget_left":10,"retry_in_seconds":12,"status_code":429}}]}"#, Some((rate(Some(12)), "COMPLEXITY_BUDGET_EXHAUSTED"))),
        row("monday complexityBudgetExhausted camel case", M, V2, API, 200, None, r#"{"errors":[{"message":"x","extensions":{"code":"complexityBudgetExhausted"}}]}"#, Some((rate(None), "complexityBudgetExhausted"))),
        row("monday legacy ComplexityException", M, LEGACY, API, 429, None, r#"{"error_code":"ComplexityException","status_code":429,"error_message":"Complexity budget exhausted, query cost 30001 budget remaining 19986 out of 1000000 reset in 3 seconds","error_data":{},"account_id":1}"#, Some((rate(None), "ComplexityException"))),
        row("monday DAILY_LIMIT_EXCEEDED at HTTP 200", M, V2, API, 200, None, r#"{"errors":[{"message":"Daily limit exceeded","extensions":{"code":"DAILY_LIMIT_EXCEEDED","retry_in_seconds":3600}}]}"#, Some((rate(Some(3600)), "DAILY_LIMIT_EXCEEDED"))),
        row("monday maxConcurrencyExceeded", M, V2, API, 429, None, r#"{"errors":[{"message":"Concurrency limit exceeded","extensions":{"code":"maxConcurrencyExceeded","retry_in_seconds":2}}]}"#, Some((rate(Some(2)), "maxConcurrencyExceeded"))),
        row("monday FIELD_LIMIT_EXCEEDED with error_data.retry_in_seconds", M, V2, API, 429, None, r#"{"error_code":"FIELD_LIMIT_EXCEEDED","status_code":429,"error_message":"Concurrency limit exceeded for the field","error_data":{"retry_in_seconds":15,"entity":"boards"}}"#, Some((rate(Some(15)), "FIELD_LIMIT_EXCEEDED"))),
        row("monday IP_RATE_LIMIT_EXCEEDED", M, V2, API, 429, None, r#"{"errors":[{"message":"IP rate limit exceeded","extensions":{"code":"IP_RATE_LIMIT_EXCEEDED"}}]}"#, Some((rate(None), "IP_RATE_LIMIT_EXCEEDED"))),
        row("monday 'Rate Limit Exceeded' as a message only", M, V2, API, 200, None, r#"{"errors":[{"message":"Rate Limit Exceeded"}]}"#, Some((rate(None), "rate_limit_exceeded"))),
        row("monday minute limit: 429 + Retry-After header wins over the body", M, V2, API, 429, Some("38"), r#"{"errors":[{"message":"Minute limit rate exceeded","extensions":{"code":"RATE_LIMIT_EXCEEDED","retry_in_seconds":5}}]}"#, Some((rate(Some(38)), "RATE_LIMIT_EXCEEDED"))),
        row("monday rate limit on a legacy token is not a revocation", M, LEGACY, API, 429, None, r#"{"errors":[{"message":"x","extensions":{"code":"complexity_budget_exhausted"}}]}"#, Some((rate(None), "complexity_budget_exhausted"))),
        // --- permission ---
        row("monday 401 'Your ip is restricted' (legacy token)", M, LEGACY, API, 401, None, r#"{"errors":[{"message":"Your ip is restricted"}]}"#, Some((Permission, "ip_restricted"))),
        row("monday 401 'Your ip is restricted' (v2 token)", M, V2, API, 401, None, r#"{"error_message":"Your ip is restricted","status_code":401}"#, Some((Permission, "ip_restricted"))),
        row("monday 403 UserUnauthorizedException", M, V2, API, 403, None, r#"{"error_code":"UserUnauthorizedException","status_code":403,"error_message":"User unauthorized to perform action"}"#, Some((Permission, "UserUnauthorizedException"))),
        row("monday missingRequiredPermissions at HTTP 200", M, V2, API, 200, None, r#"{"errors":[{"message":"Missing required permissions: boards:write","extensions":{"code":"missingRequiredPermissions"}}],"account_id":1}"#, Some((Permission, "missingRequiredPermissions"))),
        row("Google 403 forbidden", G, None, API, 403, None, r#"{"error":{"errors":[{"domain":"global","reason":"forbidden","message":"Forbidden"}],"code":403,"message":"Forbidden"}}"#, Some((Permission, "forbidden"))),
        row("Google 403 with only the newer status field", G, None, API, 403, None, r#"{"error":{"code":403,"message":"insufficient authentication scopes","status":"PERMISSION_DENIED"}}"#, Some((Permission, "PERMISSION_DENIED"))),
        // --- transient ---
        row("Google 500 backendError", G, None, API, 500, None, r#"{"error":{"errors":[{"reason":"backendError"}],"code":500}}"#, Some((transient(None), "backendError"))),
        row("monday 502 with an HTML body", M, V2, API, 502, None, "<html>Bad Gateway</html>", Some((transient(None), "http_502"))),
        row("token endpoint 503 with Retry-After (revocation must be re-queued)", G, None, TOKEN, 503, Some("120"), "", Some((transient(Some(120)), "http_503"))),
        row("monday API_TEMPORARILY_BLOCKED at HTTP 200", M, V2, API, 200, None, r#"{"errors":[{"message":"API temporarily blocked","extensions":{"code":"API_TEMPORARILY_BLOCKED"}}]}"#, Some((transient(None), "API_TEMPORARILY_BLOCKED"))),
        row("monday temporary_unavailable from the token endpoint", M, V2, TOKEN, 400, None, r#"{"error":"temporary_unavailable"}"#, Some((transient(None), "temporary_unavailable"))),
        // --- rejected and success ---
        row("Google 400 timeRangeEmpty: this request is wrong", G, None, API, 400, None, r#"{"error":{"errors":[{"reason":"timeRangeEmpty"}],"code":400}}"#, Some((Rejected, "timeRangeEmpty"))),
        row("monday unknown GraphQL error at HTTP 200", M, V2, API, 200, None, r#"{"errors":[{"message":"Field 'x' doesn't exist on type 'Board'","extensions":{"code":"undefinedField"}}]}"#, Some((Rejected, "undefinedField"))),
        row("monday 200 with data is not an error", M, V2, API, 200, None, r#"{"data":{"me":{"id":"1"}},"account_id":1}"#, None),
        row("Google 200 resource is not an error", G, None, API, 200, None, r#"{"kind":"calendar#events","items":[]}"#, None),
        row("a code that is not code-shaped is never reported", G, None, TOKEN, 400, None, r#"{"error":"token ya29.secret is bad"}"#, Some((Rejected, "http_400"))),
    ]
}

#[test]
fn every_row_of_the_classification_table() {
    for row in table() {
        let mut headers = HeaderMap::new();
        if let Some(value) = row.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(value));
        }
        let facts = ResponseFacts {
            provider: row.provider,
            monday_flow: row.flow,
            token_endpoint: row.token_endpoint,
            status: row.status,
            headers: &headers,
            body: row.body.as_bytes(),
        };
        let got = classify(&facts).map(|c| (c.class, c.reason));
        let expected = row.expected.map(|(class, reason)| (class, reason.to_owned()));
        assert_eq!(got, expected, "{}", row.description);
    }
}
