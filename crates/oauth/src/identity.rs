//! Who the connected account is: Google userinfo `sub`, or monday.com `me { id account { id } }`.

use reqwest::{
    header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE},
    Method,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::{
    client::OAuthClient,
    error::OAuthError,
    provider::{ProviderConfig, ProviderId},
};

/// The GraphQL query that identifies a monday.com user and account.
pub const MONDAY_IDENTITY_QUERY: &str = "query { me { id name email account { id name slug } } }";

/// The provider account behind a token (security.md B8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountIdentity {
    /// The stable account id: Google `sub`, monday.com `me.account.id`.
    pub account_id: String,
    /// The user within the account: monday.com `me.id` (Google: none, `sub` is the user).
    pub user_id: Option<String>,
    /// A display name, when the provider returned one.
    pub name: Option<String>,
    /// The user's email, when the provider returned one.
    pub email: Option<String>,
}

/// A string or number id as a string (monday.com mixes both).
fn id_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

impl OAuthClient {
    /// Looks up the account `access_token` belongs to.
    #[tracing::instrument(skip_all, fields(provider = %provider.id))]
    pub async fn identity(
        &self,
        provider: &ProviderConfig,
        access_token: &SecretString,
    ) -> Result<AccountIdentity, OAuthError> {
        let invalid = |reason, status| OAuthError::InvalidResponse { provider: provider.id, reason, status };
        let request = match provider.id {
            ProviderId::Google => {
                self.http().request(Method::GET, &provider.identity_url)?.bearer_auth(access_token.expose_secret())
            }
            ProviderId::Monday => {
                // monday.com documents the raw token without a scheme.
                let mut auth = HeaderValue::from_str(access_token.expose_secret())
                    .map_err(|_| invalid("access_token_not_header_safe", 200))?;
                auth.set_sensitive(true);
                self.http()
                    .request(Method::POST, &provider.identity_url)?
                    .header(AUTHORIZATION, auth)
                    .header("API-Version", provider.monday_api_version.as_str())
                    .header(CONTENT_TYPE, "application/json")
                    .body(json!({ "query": MONDAY_IDENTITY_QUERY }).to_string())
            }
        };
        let response = self.call(provider, request, false).await?;
        let status = response.status.as_u16();
        let body: Value = serde_json::from_slice(&response.body).map_err(|_| invalid("malformed_identity", status))?;
        match provider.id {
            ProviderId::Google => Ok(AccountIdentity {
                account_id: id_of(body.get("sub")).ok_or(invalid("missing_sub", status))?,
                user_id: None,
                name: text(body.get("name")),
                email: text(body.get("email")),
            }),
            ProviderId::Monday => {
                let me = body.get("data").and_then(|d| d.get("me")).ok_or(invalid("missing_me", status))?;
                Ok(AccountIdentity {
                    account_id: id_of(me.get("account").and_then(|a| a.get("id")))
                        .ok_or(invalid("missing_account_id", status))?,
                    user_id: id_of(me.get("id")),
                    name: text(me.get("name")),
                    email: text(me.get("email")),
                })
            }
        }
    }
}
