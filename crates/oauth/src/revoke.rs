//! Revocation (RFC 7009; providers.md A1.4, B5.5) and monday.com's legacy-token migration.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::{
    client::OAuthClient,
    error::OAuthError,
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

impl OAuthClient {
    /// Revokes `token` at the provider. A 503 comes back as an error of class
    /// [`crate::ErrorClass::Transient`] with its `Retry-After`: the token must be assumed still
    /// valid and the revocation re-queued (RFC 7009 §2.2.1).
    #[tracing::instrument(skip_all, fields(provider = %provider.id))]
    pub async fn revoke(
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
        let refused = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("success").and_then(Value::as_bool))
            .is_some_and(|success| !success);
        if refused {
            return Err(OAuthError::InvalidResponse {
                provider: provider.id,
                reason: "revocation_not_confirmed",
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
