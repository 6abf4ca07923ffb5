//! Revocation (RFC 7009; providers.md A1.4, B5.5) and monday.com's legacy-token migration.

use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::{
    client::OAuthClient,
    error::{ErrorClass, OAuthError},
    provider::{ProviderConfig, ProviderId},
    token::TokenSet,
};

/// Which kind of token is being revoked (`token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    /// An access token.
    AccessToken,
    /// A refresh token (preferred: it also ends the grant's access tokens).
    RefreshToken,
}

impl TokenTypeHint {
    fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::RefreshToken => "refresh_token",
        }
    }
}

/// The result of a revocation that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The provider confirmed the token is no longer valid (also when it already was not).
    Revoked,
    /// The provider has no revocation for this token (monday.com legacy: uninstall ends it).
    NotSupported,
}

/// Everything a revocation attempt can come to, in the four classes the disconnect job tells
/// apart (security.md E2, E3). Whatever the verdict, local cleanup still happens; only
/// [`RevokeVerdict::Retry`] is worth trying again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeVerdict {
    /// The provider confirmed the token is no longer valid (also when it already was not: RFC 7009
    /// §2.2, Google's 400 `invalid_token`).
    Revoked,
    /// The provider has no revocation for this token (monday.com legacy, or no endpoint
    /// configured); nothing was sent.
    NotSupported,
    /// A passing failure — 5xx, 429, timeout, connection error: the token must be assumed still
    /// valid and the revocation re-queued (RFC 7009 §2.2.1), after `retry_after` when given.
    Retry {
        /// The provider's error code or a fixed label (`http_503`, `timeout`, `connect`…).
        reason: String,
        /// The HTTP status, when there was an answer.
        status: Option<u16>,
        /// The provider's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// A definite refusal or failure that retrying will not fix: a 4xx other than "already
    /// invalid" (`unsupported_token_type` — fall back to the access token —, `invalid_client`,
    /// `invalid_request`…), a 200 that does not confirm the revocation (monday.com
    /// `{"success": false}` or an error body), a 3xx (never followed), an oversized answer, or a
    /// local refusal (host not allowed). The token may still be valid at the provider.
    Failed {
        /// The provider's error code or a fixed label (`revocation_not_confirmed`,
        /// `redirect_refused`, `response_too_large`…).
        reason: String,
        /// The HTTP status, when there was an answer.
        status: Option<u16>,
    },
}

impl RevokeVerdict {
    /// Whether trying the same revocation again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retry { .. })
    }

    /// Whether the token is known to be dead at the provider.
    pub fn is_revoked(&self) -> bool {
        matches!(self, Self::Revoked)
    }

    /// The verdict on a revocation that ended in `error`.
    ///
    /// Unlike [`OAuthError::class`], which counts redirects, oversized and malformed answers as
    /// transient for token calls, a revocation endpoint that redirects or floods is not going to
    /// revoke on the next attempt: those are [`RevokeVerdict::Failed`].
    pub fn from_error(error: &OAuthError) -> Self {
        let failed = || Self::Failed { reason: error.reason().to_owned(), status: error.status() };
        match error {
            OAuthError::Redirect { .. } | OAuthError::ResponseTooLarge { .. } | OAuthError::InvalidResponse { .. } => {
                failed()
            }
            _ => match error.class() {
                ErrorClass::Transient { retry_after } | ErrorClass::RateLimited { retry_after } => {
                    Self::Retry { reason: error.reason().to_owned(), status: error.status(), retry_after }
                }
                _ => failed(),
            },
        }
    }
}

impl From<RevokeOutcome> for RevokeVerdict {
    fn from(outcome: RevokeOutcome) -> Self {
        match outcome {
            RevokeOutcome::Revoked => Self::Revoked,
            RevokeOutcome::NotSupported => Self::NotSupported,
        }
    }
}

/// Whether a 2xx revocation answer confirms the revocation.
///
/// monday.com documents `{"success": true}` and may answer HTTP 200 with `{"success": false}`, so
/// for monday.com only a JSON body with `success: true` counts. Google (RFC 7009) answers 200 with
/// an empty or `{}` body: any 2xx counts unless the body says otherwise. For both, a body that
/// carries `success` other than `true`, or an `error`/`errors`/`error_code` field, is a refusal.
fn confirms_revocation(provider: ProviderId, body: &[u8]) -> bool {
    let json = serde_json::from_slice::<Value>(body).ok();
    let object = json.as_ref().and_then(Value::as_object);
    let says_error = object.is_some_and(|o| {
        o.get("success").is_some_and(|s| s != &Value::Bool(true))
            || ["error", "errors", "error_code"].iter().any(|k| o.get(*k).is_some_and(|v| !v.is_null()))
    });
    if says_error {
        return false;
    }
    match provider {
        ProviderId::Monday => object.and_then(|o| o.get("success")) == Some(&Value::Bool(true)),
        ProviderId::Google => true,
    }
}

impl OAuthClient {
    /// Revokes `token` at the provider and says which of the four outcome classes it came to
    /// (see [`RevokeVerdict`]). Never follows a redirect and never reads more than the
    /// outbound client's size cap.
    #[tracing::instrument(skip_all, fields(provider = %provider.id))]
    pub async fn revoke_verdict(
        &self,
        provider: &ProviderConfig,
        token: &SecretString,
        hint: Option<TokenTypeHint>,
    ) -> RevokeVerdict {
        match self.revoke_call(provider, token, hint).await {
            Ok(outcome) => outcome.into(),
            Err(error) => {
                let verdict = RevokeVerdict::from_error(&error);
                tracing::debug!(reason = error.reason(), retryable = verdict.is_retryable(), "revocation failed");
                verdict
            }
        }
    }

    /// Revokes `token` at the provider. Kept for existing callers; [`OAuthClient::revoke_verdict`]
    /// says the same in one enum.
    ///
    /// A passing failure (5xx — e.g. a 503 with its `Retry-After` —, 429, timeout, connection
    /// error) is an error of class [`ErrorClass::Transient`] or [`ErrorClass::RateLimited`]: the
    /// token must be assumed still valid and the revocation re-queued (RFC 7009 §2.2.1). Every
    /// other failure — including a 200 that does not confirm the revocation, a redirect and an
    /// oversized answer — is an error of class [`ErrorClass::Rejected`] or
    /// [`ErrorClass::Terminal`]: retrying will not help.
    #[tracing::instrument(skip_all, fields(provider = %provider.id))]
    pub async fn revoke(
        &self,
        provider: &ProviderConfig,
        token: &SecretString,
        hint: Option<TokenTypeHint>,
    ) -> Result<RevokeOutcome, OAuthError> {
        let error = match self.revoke_call(provider, token, hint).await {
            Ok(outcome) => return Ok(outcome),
            Err(error) => error,
        };
        match (RevokeVerdict::from_error(&error), error.class()) {
            (RevokeVerdict::Failed { .. }, ErrorClass::Transient { .. } | ErrorClass::RateLimited { .. }) => {
                // A redirect, an oversized or a malformed answer: not worth a retry here.
                Err(OAuthError::Provider {
                    provider: provider.id,
                    class: ErrorClass::Rejected,
                    reason: error.reason().to_owned(),
                    status: error.status().unwrap_or(0),
                })
            }
            _ => Err(error),
        }
    }

    async fn revoke_call(
        &self,
        provider: &ProviderConfig,
        token: &SecretString,
        hint: Option<TokenTypeHint>,
    ) -> Result<RevokeOutcome, OAuthError> {
        let Some(url) = provider.revoke_url.as_ref().filter(|_| !provider.is_monday_legacy()) else {
            return Ok(RevokeOutcome::NotSupported);
        };
        let request = self.http().request(Method::POST, url)?;
        let request = if provider.id == ProviderId::Monday {
            let mut body = json!({
                "token": token.expose_secret(),
                "client_id": provider.client_id,
                "client_secret": provider.client_secret.expose_secret(),
            });
            if let Some(hint) = hint {
                body["token_type_hint"] = hint.as_str().into();
            }
            request.json(&body)
        } else {
            // Google needs no client authentication to revoke; the token goes in the body only.
            let mut form = vec![("token", token.expose_secret())];
            if let Some(hint) = hint {
                form.push(("token_type_hint", hint.as_str()));
            }
            request.form(&form)
        };
        let response = match self.call(provider, request, true).await {
            Ok(response) => response,
            // Google answers 400 invalid_token for a token that is already invalid: the goal holds.
            Err(OAuthError::Provider { reason, status: 400, .. }) if reason == "invalid_token" => {
                return Ok(RevokeOutcome::Revoked)
            }
            Err(e) => return Err(e),
        };
        let status = response.status.as_u16();
        // `call` passes only 1xx/2xx here (3xx is an error, 4xx/5xx are classified).
        if !(200..300).contains(&status) || !confirms_revocation(provider.id, &response.body) {
            return Err(OAuthError::Provider {
                provider: provider.id,
                class: ErrorClass::Rejected,
                reason: "revocation_not_confirmed".to_owned(),
                status,
            });
        }
        Ok(RevokeOutcome::Revoked)
    }

    /// Trades a monday.com legacy token for OAuth 2.1 tokens (`/oauth_ms/oauth/migrate`, JSON).
    /// Idempotent per token at the provider; a 429 asks for a 5-minute wait.
    #[tracing::instrument(skip_all, fields(provider = %provider.id))]
    pub async fn migrate_legacy(
        &self,
        provider: &ProviderConfig,
        legacy_token: &SecretString,
    ) -> Result<TokenSet, OAuthError> {
        let Some(url) = provider.migrate_url.as_ref().filter(|_| provider.monday_flow.is_some()) else {
            return Err(OAuthError::Unsupported { provider: provider.id, operation: "legacy token migration" });
        };
        let request = self.http().request(Method::POST, url)?.json(&json!({
            "api_token": legacy_token.expose_secret(),
            "client_id": provider.client_id,
            "client_secret": provider.client_secret.expose_secret(),
        }));
        // The migrated tokens are OAuth 2.1 tokens: they expire, so read `exp` if `expires_in` is absent.
        self.token_call(provider, request, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider_error(class: ErrorClass, reason: &str, status: u16) -> OAuthError {
        OAuthError::Provider { provider: ProviderId::Monday, class, reason: reason.to_owned(), status }
    }

    #[test]
    fn monday_needs_success_true_and_google_any_body_without_an_error() {
        assert!(confirms_revocation(ProviderId::Monday, br#"{"success":true}"#));
        for refused in [
            &br#"{"success":false}"#[..],
            br#"{"success":"true"}"#,
            br#"{"success":null}"#,
            br#"{"success":true,"error":"invalid_request"}"#,
            br#"{"errors":[{"message":"nope"}]}"#,
            br#"{"error_code":"InternalServerException"}"#,
            br#"{}"#,
            b"",
            b"<html>ok</html>",
        ] {
            assert!(!confirms_revocation(ProviderId::Monday, refused), "{}", String::from_utf8_lossy(refused));
        }
        for confirmed in [&b""[..], b"{}", br#"{"success":true}"#, b"ok"] {
            assert!(confirms_revocation(ProviderId::Google, confirmed), "{}", String::from_utf8_lossy(confirmed));
        }
        assert!(!confirms_revocation(ProviderId::Google, br#"{"success":false}"#));
        assert!(!confirms_revocation(ProviderId::Google, br#"{"error":"invalid_request"}"#));
    }

    #[test]
    fn passing_failures_are_retried_and_everything_else_failed() {
        let retry_after = Some(Duration::from_secs(7));
        let unavailable = provider_error(ErrorClass::Transient { retry_after }, "http_503", 503);
        assert_eq!(
            RevokeVerdict::from_error(&unavailable),
            RevokeVerdict::Retry { reason: "http_503".into(), status: Some(503), retry_after }
        );
        let limited = provider_error(ErrorClass::RateLimited { retry_after: None }, "http_429", 429);
        assert!(RevokeVerdict::from_error(&limited).is_retryable());

        let host = "auth.monday.com".to_owned();
        let failed = [
            (OAuthError::Redirect { host: host.clone(), status: 307 }, "redirect_refused", Some(307)),
            (
                OAuthError::ResponseTooLarge { host: host.clone(), limit: 10, status: 200 },
                "response_too_large",
                Some(200),
            ),
            (OAuthError::HostNotAllowed { host }, "host_not_allowed", None),
            (provider_error(ErrorClass::Rejected, "unsupported_token_type", 400), "unsupported_token_type", Some(400)),
            (provider_error(ErrorClass::Terminal, "invalid_client", 401), "invalid_client", Some(401)),
        ];
        for (error, reason, status) in failed {
            assert_eq!(RevokeVerdict::from_error(&error), RevokeVerdict::Failed { reason: reason.into(), status });
        }
    }
}
