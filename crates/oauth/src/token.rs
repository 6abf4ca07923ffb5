//! Token sets and the validation of token endpoint answers (security.md C3).

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chrono::{DateTime, TimeDelta, Utc};
use secrecy::SecretString;
use serde::Deserialize;

use crate::{error::OAuthError, provider::ProviderConfig};

/// The longest `expires_in` taken at face value (ten years); longer values are clamped.
const MAX_EXPIRES_IN_SECS: i64 = 10 * 365 * 24 * 3600;

/// The tokens a token endpoint issued. Deliberately not `Serialize`; `Debug` is redacted.
pub struct TokenSet {
    /// The access token.
    pub access_token: SecretString,
    /// The refresh token, when one was issued (`None`: keep the one already stored).
    pub refresh_token: Option<SecretString>,
    /// When the access token expires; `None` when unknown or never (monday.com legacy).
    pub expires_at: Option<DateTime<Utc>>,
    /// The granted scopes; when the answer omits `scope`, the requested ones (RFC 6749 §5.1).
    pub scopes: Vec<String>,
}

impl TokenSet {
    /// The scopes of `required` that this grant lacks (empty: the grant is sufficient).
    pub fn missing_scopes(&self, required: &[String]) -> Vec<String> {
        required.iter().filter(|r| !self.scopes.contains(r)).cloned().collect()
    }
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "[redacted]"))
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// The fields read from a token answer. No `Debug`: it holds tokens.
#[derive(Deserialize)]
struct RawTokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
    scope: Option<serde_json::Value>,
}

/// Splits a `scope` value on spaces or commas (monday.com documents both), dropping empties.
pub fn parse_scopes(scope: &str) -> Vec<String> {
    let mut scopes = Vec::new();
    for s in scope.split([' ', ',']).map(str::trim).filter(|s| !s.is_empty()) {
        if !scopes.iter().any(|seen: &String| seen == s) {
            scopes.push(s.to_owned());
        }
    }
    scopes
}

/// The unverified `exp` claim of a JWT, as a time. This is only a hint of when the provider will
/// stop accepting its own token; nothing is trusted on the strength of it.
pub fn jwt_expiry_hint(token: &str) -> Option<DateTime<Utc>> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    let secs = exp.as_i64().or_else(|| exp.as_f64().map(|f| f as i64))?;
    DateTime::from_timestamp(secs, 0)
}

fn expires_in_secs(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Validates a 200 token endpoint answer and turns it into a [`TokenSet`], as of `now`.
///
/// Requires JSON, `token_type` `Bearer` (any case) and a non-empty access token. Expiry comes
/// from `expires_in`; failing that, from the access token's JWT `exp` (monday.com v2), except for
/// `legacy_tokens` (monday.com legacy), which never expire. Error reasons are fixed labels: the body is never echoed.
pub(crate) fn parse_token_response(
    provider: &ProviderConfig,
    legacy_tokens: bool,
    status: u16,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<TokenSet, OAuthError> {
    let invalid = |reason| OAuthError::InvalidResponse { provider: provider.id, reason, status };
    // serde's messages can quote the input, so the parse error itself is dropped.
    let raw: RawTokenResponse = serde_json::from_slice(body).map_err(|_| invalid("malformed_token_response"))?;
    match raw.token_type.as_deref() {
        Some(t) if t.eq_ignore_ascii_case("bearer") => {}
        Some(_) => return Err(invalid("token_type_not_bearer")),
        None => return Err(invalid("token_type_missing")),
    }
    let access_token = raw.access_token.filter(|t| !t.trim().is_empty()).ok_or(invalid("empty_access_token"))?;
    let expires_at = match raw.expires_in.as_ref() {
        Some(value) => {
            let secs = expires_in_secs(value).ok_or(invalid("malformed_expires_in"))?;
            Some(now + TimeDelta::seconds(secs.clamp(0, MAX_EXPIRES_IN_SECS)))
        }
        None if legacy_tokens => None,
        None => jwt_expiry_hint(&access_token),
    };
    let scopes = match raw.scope {
        Some(serde_json::Value::String(s)) => parse_scopes(&s),
        Some(serde_json::Value::Array(items)) => {
            parse_scopes(&items.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(" "))
        }
        Some(serde_json::Value::Null) | None => provider.scopes.clone(),
        Some(_) => return Err(invalid("malformed_scope")),
    };
    let refresh_token = raw.refresh_token.filter(|t| !t.is_empty()).map(SecretString::from);
    Ok(TokenSet { access_token: SecretString::from(access_token), refresh_token, expires_at, scopes })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use crate::provider::MondayFlow;

    use super::*;

    fn google() -> ProviderConfig {
        ProviderConfig::google("gid", SecretString::from("s"))
    }

    fn monday(flow: MondayFlow) -> ProviderConfig {
        ProviderConfig::monday("mid", SecretString::from("s"), flow)
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn parse(provider: &ProviderConfig, body: &str) -> Result<TokenSet, OAuthError> {
        parse_token_response(provider, provider.is_monday_legacy(), 200, body.as_bytes(), now())
    }

    fn jwt_with_exp(exp: i64) -> String {
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp},"uid":1}}"#));
        format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2lnbmF0dXJl")
    }

    #[test]
    fn google_answer_with_expires_in_becomes_a_token_set() {
        let body = r#"{"access_token":"ya29.a","expires_in":3599,"refresh_token":"1//r","scope":"openid email","token_type":"Bearer"}"#;
        let tokens = parse(&google(), body).unwrap();
        assert_eq!(tokens.access_token.expose_secret(), "ya29.a");
        assert_eq!(tokens.refresh_token.as_ref().map(|t| t.expose_secret().to_owned()), Some("1//r".to_owned()));
        assert_eq!(tokens.expires_at, Some(now() + TimeDelta::seconds(3599)));
        assert_eq!(tokens.scopes, ["openid", "email"]);
    }

    #[test]
    fn token_type_is_compared_case_insensitively() {
        assert!(parse(&google(), r#"{"access_token":"a","token_type":"bEaReR","expires_in":1}"#).is_ok());
    }

    #[test]
    fn refused_answers_are_named_without_echoing_the_body() {
        let cases = [
            (r#"{"access_token":"a","token_type":"mac"}"#, "token_type_not_bearer", "token_type mac"),
            (r#"{"access_token":"a"}"#, "token_type_missing", "no token_type"),
            (r#"{"access_token":"","token_type":"Bearer"}"#, "empty_access_token", "empty access token"),
            (r#"{"token_type":"Bearer"}"#, "empty_access_token", "no access token"),
            (r#"{"access_token":"a","token_type":"Bearer","expires_in":"soon"}"#, "malformed_expires_in", "bad expiry"),
            (r#"<html>ya29.leak</html>"#, "malformed_token_response", "not JSON"),
            (r#"{"access_token":42,"token_type":"Bearer"}"#, "malformed_token_response", "wrong type"),
        ];
        for (body, expected, description) in cases {
            let err = parse(&google(), body).expect_err(description);
            assert_eq!(err.reason(), expected, "{description}");
            assert!(!format!("{err} {err:?}").contains("ya29"), "{description}: body leaked");
        }
    }

    #[test]
    fn scopes_are_split_on_spaces_or_commas() {
        let comma = r#"{"access_token":"a","token_type":"Bearer","scope":"boards:read,me:read"}"#;
        let space = r#"{"access_token":"a","token_type":"Bearer","scope":"boards:read  me:read"}"#;
        let mixed = r#"{"access_token":"a","token_type":"Bearer","scope":"boards:read, me:read"}"#;
        for body in [comma, space, mixed] {
            assert_eq!(parse(&monday(MondayFlow::Legacy), body).unwrap().scopes, ["boards:read", "me:read"], "{body}");
        }
    }

    #[test]
    fn missing_scope_means_the_requested_scopes() {
        let tokens = parse(&google(), r#"{"access_token":"a","token_type":"Bearer","expires_in":10}"#).unwrap();
        assert_eq!(tokens.scopes, google().scopes);
    }

    #[test]
    fn monday_v2_without_expires_in_reads_the_jwt_exp() {
        let body = format!(
            r#"{{"access_token":"{}","refresh_token":"r2","token_type":"Bearer"}}"#,
            jwt_with_exp(1_800_000_300)
        );
        let tokens = parse(&monday(MondayFlow::V2), &body).unwrap();
        assert_eq!(tokens.expires_at, DateTime::from_timestamp(1_800_000_300, 0));
    }

    #[test]
    fn monday_v2_prefers_expires_in_over_the_jwt() {
        let body = format!(r#"{{"access_token":"{}","token_type":"Bearer","expires_in":3600}}"#, jwt_with_exp(1));
        assert_eq!(parse(&monday(MondayFlow::V2), &body).unwrap().expires_at, Some(now() + TimeDelta::seconds(3600)));
    }

    #[test]
    fn missing_expiry_is_none_for_legacy_and_opaque_tokens() {
        let body = r#"{"access_token":"opaque","token_type":"Bearer","scope":"me:read"}"#;
        assert_eq!(parse(&monday(MondayFlow::Legacy), body).unwrap().expires_at, None);
        assert_eq!(parse(&monday(MondayFlow::V2), body).unwrap().expires_at, None, "not a JWT: expiry unknown");
        assert_eq!(parse(&google(), body).unwrap().expires_at, None);
    }

    #[test]
    fn missing_scopes_lists_what_the_grant_lacks() {
        let body = r#"{"access_token":"a","token_type":"Bearer","expires_in":1,"scope":"openid email"}"#;
        let tokens = parse(&google(), body).unwrap();
        assert_eq!(
            tokens.missing_scopes(&google().required_scopes),
            ["https://www.googleapis.com/auth/calendar.readonly"]
        );
    }

    #[test]
    fn debug_hides_both_tokens() {
        let body = r#"{"access_token":"AT-canary","refresh_token":"RT-canary","token_type":"Bearer"}"#;
        let debug = format!("{:?}", parse(&google(), body).unwrap());
        assert!(!debug.contains("AT-canary") && !debug.contains("RT-canary"), "{debug}");
    }

    #[test]
    fn jwt_hint_ignores_things_that_are_not_jwts() {
        assert_eq!(jwt_expiry_hint("a.b"), None);
        assert_eq!(jwt_expiry_hint("a.!!!.c"), None);
        assert_eq!(jwt_expiry_hint("a.b.c.d"), None);
        assert_eq!(jwt_expiry_hint(&jwt_with_exp(1_800_000_000)), DateTime::from_timestamp(1_800_000_000, 0));
    }
}
