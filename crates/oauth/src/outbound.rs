//! The one hardened outbound HTTP client (security.md C1, I1, I4): rustls with certificate
//! verification, no redirects, timeouts, a response size cap and a host allowlist checked before
//! any connection is made.

use std::{collections::HashSet, fmt, time::Duration};

use reqwest::{header::HeaderMap, redirect, Method, RequestBuilder, StatusCode};
use url::Url;

use crate::{error::OAuthError, registry::Registry};

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default total timeout (connect, request and the whole body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// Default response body cap: 1 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// One allowed origin: scheme, host and port.
type Origin = (String, String, u16);

fn origin(url: &Url) -> Option<Origin> {
    Some((url.scheme().to_owned(), url.host_str()?.to_ascii_lowercase(), url.port_or_known_default()?))
}

fn is_loopback(url: &Url) -> bool {
    matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
}

fn host_of(url: &Url) -> String {
    url.host_str().unwrap_or("<no host>").to_owned()
}

/// Builds an [`OutboundClient`].
#[derive(Debug, Clone)]
pub struct OutboundClientBuilder {
    allowed: Vec<Url>,
    connect_timeout: Duration,
    timeout: Duration,
    max_response_bytes: usize,
    allow_insecure_loopback: bool,
}

impl OutboundClientBuilder {
    /// Allows requests to `url`'s origin (scheme, host and port).
    pub fn allow_url(mut self, url: &Url) -> Self {
        self.allowed.push(url.clone());
        self
    }

    /// Allows every endpoint of every provider in `registry`.
    pub fn allow_registry(mut self, registry: &Registry) -> Self {
        for provider in registry.iter() {
            self.allowed.extend(provider.endpoint_urls().into_iter().cloned());
        }
        self
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the total timeout of one request, body included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the response body cap in bytes.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Permits plain `http` to `127.0.0.1`, `localhost` and `[::1]` (tests and development only).
    pub fn allow_insecure_loopback(mut self, allow: bool) -> Self {
        self.allow_insecure_loopback = allow;
        self
    }

    /// Builds the client; fails if an allowed URL is not https (or permitted loopback http).
    pub fn build(self) -> Result<OutboundClient, OAuthError> {
        let mut allowed = HashSet::new();
        for url in &self.allowed {
            check_scheme(url, self.allow_insecure_loopback)?;
            allowed.insert(origin(url).ok_or_else(|| OAuthError::HostNotAllowed { host: host_of(url) })?);
        }
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(!self.allow_insecure_loopback)
            .redirect(redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OAuthError::Client(e.without_url()))?;
        Ok(OutboundClient {
            client,
            allowed,
            max_response_bytes: self.max_response_bytes,
            allow_insecure_loopback: self.allow_insecure_loopback,
        })
    }
}

fn check_scheme(url: &Url, allow_insecure_loopback: bool) -> Result<(), OAuthError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure_loopback && is_loopback(url) => Ok(()),
        _ => Err(OAuthError::InsecureScheme { host: host_of(url) }),
    }
}

/// A provider's answer, read in full within the size cap. Only 1xx/2xx/4xx/5xx get here.
pub struct OutboundResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body (at most the configured cap).
    pub body: Vec<u8>,
}

impl fmt::Debug for OutboundResponse {
    // Bodies can hold tokens: show the shape only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundResponse").field("status", &self.status).field("body_len", &self.body.len()).finish()
    }
}

/// The hardened client every provider call goes through.
#[derive(Clone)]
pub struct OutboundClient {
    client: reqwest::Client,
    allowed: HashSet<Origin>,
    max_response_bytes: usize,
    allow_insecure_loopback: bool,
}

impl fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundClient")
            .field("allowed", &self.allowed)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("allow_insecure_loopback", &self.allow_insecure_loopback)
            .finish()
    }
}

impl OutboundClient {
    /// A builder with the defaults (5 s connect, 20 s total, 1 MiB, https only, nothing allowed).
    pub fn builder() -> OutboundClientBuilder {
        OutboundClientBuilder {
            allowed: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            allow_insecure_loopback: false,
        }
    }

    /// Checks `url` against the scheme rule and the allowlist, without sending anything.
    pub fn check(&self, url: &Url) -> Result<(), OAuthError> {
        check_scheme(url, self.allow_insecure_loopback)?;
        match origin(url) {
            Some(o) if self.allowed.contains(&o) => Ok(()),
            _ => Err(OAuthError::HostNotAllowed { host: host_of(url) }),
        }
    }

    /// Starts a request to an allowed `url`.
    pub fn request(&self, method: Method, url: &Url) -> Result<RequestBuilder, OAuthError> {
        self.check(url)?;
        Ok(self.client.request(method, url.clone()))
    }

    /// Sends `request` (re-checked against the allowlist) and reads its body within the cap.
    /// A 3xx answer is an error and is never followed.
    pub async fn send(&self, request: RequestBuilder) -> Result<OutboundResponse, OAuthError> {
        let request = request.build().map_err(|e| transport_error("<unbuilt>".to_owned(), e))?;
        self.check(request.url())?;
        let host = host_of(request.url());
        let mut response = self.client.execute(request).await.map_err(|e| transport_error(host.clone(), e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(OAuthError::Redirect { host, status: status.as_u16() });
        }
        let too_large = || OAuthError::ResponseTooLarge {
            host: host.clone(),
            limit: self.max_response_bytes,
            status: status.as_u16(),
        };
        if response.content_length().is_some_and(|len| len > self.max_response_bytes as u64) {
            return Err(too_large());
        }
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(host.clone(), e))? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(OutboundResponse { status, headers, body })
    }
}

fn transport_error(host: String, error: reqwest::Error) -> OAuthError {
    let reason = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else {
        "request"
    };
    OAuthError::Transport { host, reason, source: error.without_url() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn only_allowlisted_origins_pass_the_check() {
        let client = OutboundClient::builder().allow_url(&url("https://oauth2.googleapis.com/token")).build().unwrap();
        assert!(client.check(&url("https://oauth2.googleapis.com/revoke")).is_ok());
        assert!(matches!(client.check(&url("https://evil.example/token")), Err(OAuthError::HostNotAllowed { .. })));
        assert!(matches!(
            client.check(&url("https://oauth2.googleapis.com:8443/token")),
            Err(OAuthError::HostNotAllowed { .. })
        ));
    }

    #[test]
    fn plain_http_is_refused_unless_loopback_is_explicitly_allowed() {
        let loopback = url("http://127.0.0.1:9/token");
        let strict = OutboundClient::builder().allow_url(&loopback).build();
        assert!(matches!(strict, Err(OAuthError::InsecureScheme { .. })));

        let dev = OutboundClient::builder().allow_url(&loopback).allow_insecure_loopback(true).build().unwrap();
        assert!(dev.check(&loopback).is_ok());
        let remote = url("http://oauth2.googleapis.com/token");
        assert!(matches!(dev.check(&remote), Err(OAuthError::InsecureScheme { .. })));
    }
}
