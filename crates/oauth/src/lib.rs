#![forbid(unsafe_code)]
//! Patchbay's OAuth client for Google and monday.com (architecture §4.1, §4.2).
//!
//! - [`Registry`] / [`ProviderConfig`]: the enabled providers, their pinned endpoints, issuer and
//!   scopes (the required scopes are fixed; callers never choose scopes).
//! - [`Pkce`], [`new_state`], [`ProviderConfig::authorize_url`]: the authorization request.
//! - [`ProviderConfig::check_iss`]: the RFC 9207 `iss` check of the authorization response.
//! - [`OAuthClient`]: code exchange, refresh, revocation, legacy migration and identity lookup,
//!   all through one hardened [`OutboundClient`] (no redirects, timeouts, size cap, host allowlist).
//! - [`GrantIdentity`]: which provider-side grant a connection belongs to (shared-grant checks).
//! - [`classify`]: the §4.2 table turning a provider answer into an [`ErrorClass`].
//!
//! Secrets stay [`secrecy::SecretString`]s: [`TokenSet`] is not `Serialize` and its `Debug` is
//! redacted, and no [`OAuthError`] holds a token, secret, URL or response body.

mod authorize;
mod classify;
mod client;
mod error;
mod grant;
mod identity;
mod iss;
mod outbound;
mod pkce;
mod provider;
mod registry;
mod revoke;
mod token;

pub use classify::{classify, Classification, ResponseFacts};
pub use client::OAuthClient;
pub use error::{ErrorClass, OAuthError};
pub use grant::GrantIdentity;
pub use identity::{AccountIdentity, MONDAY_IDENTITY_QUERY};
pub use iss::IssError;
pub use outbound::{
    OutboundClient, OutboundClientBuilder, OutboundResponse, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
};
pub use pkce::{new_state, pkce_challenge, Pkce};
pub use provider::{
    MondayFlow, ProviderConfig, ProviderId, UnknownFlow, UnknownProvider, DEFAULT_REFRESH_MARGIN,
    GOOGLE_REQUIRED_SCOPES, MONDAY_DEFAULT_API_VERSION, MONDAY_REQUIRED_SCOPES, MONDAY_WRITE_SCOPE,
};
pub use registry::Registry;
pub use revoke::{RevokeOutcome, RevokeVerdict, TokenTypeHint};
pub use token::{jwt_expiry_hint, parse_scopes, TokenSet};
