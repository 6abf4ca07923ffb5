//! The outbound HTTP clients: one for provider calls (the configured endpoints only) and one
//! for the identity provider's JWKS. Neither follows redirects; both bound time and size.

use crate::config::Settings;
use anyhow::Context;
use patchbay_oauth::{OAuthClient, OutboundClient};
use std::time::Duration;

/// The one outbound client for provider calls: the configured endpoints only, no redirects,
/// bounded time and size; plain-http loopback endpoints only in development (local fakes).
pub fn provider_client(settings: &Settings) -> anyhow::Result<OAuthClient> {
    let development = settings.environment == crate::config::Environment::Development;
    let http = OutboundClient::builder()
        .allow_registry(&settings.providers.registry)
        .allow_insecure_loopback(development)
        .build()
        .context("building the provider HTTP client")?;
    Ok(OAuthClient::new(http))
}

/// The client for outbound calls this capability makes (the JWKS): TLS verified, no
/// redirects followed, bounded time.
pub fn jwks_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the outbound HTTP client")
}

/// The client for provider API calls (sync, write-back, proxy): no redirects followed, bounded
/// time, https only except loopback fakes in development. Its URLs are always built on the
/// configured API roots (`PATCHBAY_GOOGLE_API_URL`, `PATCHBAY_MONDAY_API_URL`), whose hosts the
/// configuration already restricts in production.
pub fn sync_client(settings: &Settings) -> anyhow::Result<reqwest::Client> {
    let development = settings.environment == crate::config::Environment::Development;
    reqwest::Client::builder()
        .use_rustls_tls()
        .https_only(!development)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(settings.sync.request_timeout)
        .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the provider API client")
}
