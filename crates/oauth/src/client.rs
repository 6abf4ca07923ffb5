//! Token endpoint calls: code exchange and refresh (providers.md A1.3, A1.4, B5.3, B5.4).
//!
//! Google and monday.com legacy take form bodies, monday.com v2 takes JSON; the client secret
//! travels only in the body, never in a URL.

use chrono::Utc;
use reqwest::{Method, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use url::Url;

use crate::{
    classify::{classify, ResponseFacts},
    error::OAuthError,
    outbound::{OutboundClient, OutboundResponse},
    provider::{MondayFlow, ProviderConfig},
    token::{parse_token_response, TokenSet},
};

/// The OAuth client: every call goes through one [`OutboundClient`].
#[derive(Debug, Clone)]
pub struct OAuthClient {
    http: OutboundClient,
}

impl OAuthClient {
    /// A client that sends through `http` (build it with the registry's endpoints allowed).
    pub fn new(http: OutboundClient) -> Self {
        Self { http }
    }

    /// The underlying hardened HTTP client.
    pub fn http(&self) -> &OutboundClient {
        &self.http
    }

    /// Redeems an authorization code. `verifier` is required for Google and monday.com v2 and
    /// ignored for monday.com legacy (which has no PKCE); `redirect_uri` must be the one sent
    /// to the authorization endpoint.
    #[tracing::instrument(skip_all, fields(provider = %provider.id))]
    pub async fn exchange_code(
        &self,
        provider: &ProviderConfig,
        code: &SecretString,
        verifier: Option<&SecretString>,
        redirect_uri: &Url,
    ) -> Result<TokenSet, OAuthError> {
        let verifier = match (provider.uses_pkce(), verifier) {
            (false, _) => None,
            (true, Some(v)) => Some(v),
            (true, None) => return Err(OAuthError::MissingVerifier { provider: provider.id }),
        };
        let request = self.http.request(Method::POST, &provider.token_url)?;
        let request = if provider.monday_flow == Some(MondayFlow::V2) {
            let mut body = json!({
                "grant_type": "authorization_code",
                "client_id": provider.client_id,
                "client_secret": provider.client_secret.expose_secret(),
                "code": code.expose_secret(),
                "redirect_uri": redirect_uri.as_str(),
            });
            if let Some(v) = verifier {
                body["code_verifier"] = v.expose_secret().into();
            }
            request.json(&body)
        } else {
            let mut form = vec![
                ("grant_type", "authorization_code"),
                ("client_id", provider.client_id.as_str()),
                ("client_secret", provider.client_secret.expose_secret()),
                ("code", code.expose_secret()),
                ("redirect_uri", redirect_uri.as_str()),
            ];
            if let Some(v) = verifier {
                form.push(("code_verifier", v.expose_secret()));
            }
            request.form(&form)
        };
        self.token_call(provider, request, provider.is_monday_legacy()).await
    }

    /// Exchanges a refresh token for fresh tokens. A `None` refresh token in the answer means
    /// "keep the stored one"; monday.com v2 rotates it (store the new one). monday.com legacy
    /// tokens never expire and cannot be refreshed.
    #[tracing::instrument(skip_all, fields(provider = %provider.id))]
    pub async fn refresh(
        &self,
        provider: &ProviderConfig,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, OAuthError> {
        if provider.is_monday_legacy() {
            return Err(OAuthError::Unsupported { provider: provider.id, operation: "refresh" });
        }
        let request = self.http.request(Method::POST, &provider.token_url)?;
        let request = if provider.monday_flow == Some(MondayFlow::V2) {
            request.json(&json!({
                "grant_type": "refresh_token",
                "client_id": provider.client_id,
                "client_secret": provider.client_secret.expose_secret(),
                "refresh_token": refresh_token.expose_secret(),
            }))
        } else {
            request.form(&[
                ("grant_type", "refresh_token"),
                ("client_id", provider.client_id.as_str()),
                ("client_secret", provider.client_secret.expose_secret()),
                ("refresh_token", refresh_token.expose_secret()),
            ])
        };
        self.token_call(provider, request, false).await
    }

    /// Sends a token request and validates the answer into a [`TokenSet`].
    pub(crate) async fn token_call(
        &self,
        provider: &ProviderConfig,
        request: RequestBuilder,
        legacy_tokens: bool,
    ) -> Result<TokenSet, OAuthError> {
        let response = self.call(provider, request, true).await?;
        let status = response.status.as_u16();
        if status != 200 {
            return Err(OAuthError::InvalidResponse { provider: provider.id, reason: "unexpected_status", status });
        }
        parse_token_response(provider, legacy_tokens, status, &response.body, Utc::now())
    }

    /// Sends `request` and turns any classified error answer into [`OAuthError::Provider`].
    pub(crate) async fn call(
        &self,
        provider: &ProviderConfig,
        request: RequestBuilder,
        token_endpoint: bool,
    ) -> Result<OutboundResponse, OAuthError> {
        let response = self.http.send(request).await?;
        let facts = ResponseFacts {
            provider: provider.id,
            monday_flow: provider.monday_flow,
            token_endpoint,
            status: response.status.as_u16(),
            headers: &response.headers,
            body: &response.body,
        };
        match classify(&facts) {
            None => Ok(response),
            Some(verdict) => {
                tracing::debug!(status = facts.status, reason = %verdict.reason, "provider answered with an error");
                Err(OAuthError::Provider {
                    provider: provider.id,
                    class: verdict.class,
                    reason: verdict.reason,
                    status: facts.status,
                })
            }
        }
    }
}
