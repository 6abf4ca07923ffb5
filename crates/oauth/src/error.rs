//! The crate's error type and the class every failure falls into (architecture §4.2).
//!
//! Nothing secret is ever stored in an error: reasons are short provider error codes (sanitised
//! to `[A-Za-z0-9_.:-]`, at most 64 characters) or fixed labels, hosts are host names only, and
//! `reqwest` errors are stripped of their URL.

use std::time::Duration;

use crate::provider::ProviderId;

/// What the caller should do about a failure (the §4.2 table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The grant is dead (`invalid_grant`, `invalid_client`, `unauthorized_client`): `needs_reauth`.
    Terminal,
    /// The token was revoked and cannot be refreshed (monday.com legacy 401): `revoked`.
    Revoked,
    /// The access token was refused (Google 401, monday.com v2 401): refresh once, retry once.
    RefreshAndRetry,
    /// A rate or quota limit: wait (at least `retry_after` when given); not a breaker failure.
    RateLimited {
        /// The provider's `Retry-After` / `retry_in_seconds`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The token lacks permission for this resource: that resource fails, the connection stays.
    Permission,
    /// A passing failure (5xx, timeout, connection error): back off with jitter; counts toward the breaker.
    Transient {
        /// The provider's `Retry-After`, when it sent one (e.g. a 503 from revocation).
        retry_after: Option<Duration>,
    },
    /// The provider refused this particular request (a 400/404/422, an unknown GraphQL error, an
    /// unsupported operation, a local allowlist refusal): retrying it unchanged will not help, the
    /// connection stays healthy, and it is not a breaker failure.
    Rejected,
}

impl ErrorClass {
    /// The wait the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } | Self::Transient { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// Every failure of this crate. See [`OAuthError::class`] for what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// The provider answered with an error; `reason` is its error code.
    #[error("{provider} answered HTTP {status} ({reason})")]
    Provider {
        /// Which provider answered.
        provider: ProviderId,
        /// What to do about it.
        class: ErrorClass,
        /// The provider's error code (e.g. `invalid_grant`) or a fixed label.
        reason: String,
        /// The HTTP status of the answer (monday.com GraphQL errors come with 200).
        status: u16,
    },
    /// The request got no answer: timeout, connection or TLS failure.
    #[error("request to {host} failed ({reason})")]
    Transport {
        /// The host called.
        host: String,
        /// `timeout`, `connect` or `request`.
        reason: &'static str,
        /// The underlying error, stripped of its URL.
        #[source]
        source: reqwest::Error,
    },
    /// The answer was a redirect, which is never followed.
    #[error("{host} answered with a redirect (HTTP {status}); redirects are never followed")]
    Redirect {
        /// The host called.
        host: String,
        /// The 3xx status.
        status: u16,
    },
    /// The answer's body was larger than the configured cap.
    #[error("the answer from {host} exceeded {limit} bytes")]
    ResponseTooLarge {
        /// The host called.
        host: String,
        /// The cap in bytes.
        limit: usize,
        /// The HTTP status of the answer.
        status: u16,
    },
    /// A successful answer did not have the required shape (security.md C3).
    #[error("{provider} sent an invalid response ({reason})")]
    InvalidResponse {
        /// Which provider answered.
        provider: ProviderId,
        /// A fixed label such as `token_type_not_bearer` or `empty_access_token`.
        reason: &'static str,
        /// The HTTP status of the answer.
        status: u16,
    },
    /// The URL's host is not on the outbound allowlist; nothing was sent.
    #[error("{host} is not on the outbound allowlist; nothing was sent")]
    HostNotAllowed {
        /// The refused host.
        host: String,
    },
    /// The URL is not https (plain http is allowed only to loopback, and only when enabled).
    #[error("refusing a non-https URL to {host}")]
    InsecureScheme {
        /// The refused host.
        host: String,
    },
    /// The operation does not exist for this provider or flow (e.g. refresh on monday.com legacy).
    #[error("{operation} is not supported by {provider} in this configuration")]
    Unsupported {
        /// The provider.
        provider: ProviderId,
        /// The operation asked for.
        operation: &'static str,
    },
    /// A PKCE verifier is required for this provider's code exchange but none was given.
    #[error("{provider} requires a PKCE verifier for the code exchange")]
    MissingVerifier {
        /// The provider.
        provider: ProviderId,
    },
    /// The HTTP client could not be built.
    #[error("the outbound HTTP client could not be built")]
    Client(#[source] reqwest::Error),
}

impl OAuthError {
    /// What to do about this failure.
    ///
    /// Redirects, oversized and malformed answers count as [`ErrorClass::Transient`]: they come
    /// from the remote side, may be a passing proxy fault, and a persistent one should open the
    /// breaker rather than mark the grant dead. Local refusals are [`ErrorClass::Rejected`].
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Provider { class, .. } => *class,
            Self::Transport { .. }
            | Self::Redirect { .. }
            | Self::ResponseTooLarge { .. }
            | Self::InvalidResponse { .. }
            | Self::Client(_) => ErrorClass::Transient { retry_after: None },
            Self::HostNotAllowed { .. }
            | Self::InsecureScheme { .. }
            | Self::Unsupported { .. }
            | Self::MissingVerifier { .. } => ErrorClass::Rejected,
        }
    }

    /// A short machine-readable reason: the provider's error code or a fixed label.
    pub fn reason(&self) -> &str {
        match self {
            Self::Provider { reason, .. } => reason,
            Self::Transport { reason, .. } | Self::InvalidResponse { reason, .. } => reason,
            Self::Redirect { .. } => "redirect_refused",
            Self::ResponseTooLarge { .. } => "response_too_large",
            Self::HostNotAllowed { .. } => "host_not_allowed",
            Self::InsecureScheme { .. } => "insecure_scheme",
            Self::Unsupported { .. } => "unsupported",
            Self::MissingVerifier { .. } => "missing_pkce_verifier",
            Self::Client(_) => "client_build_failed",
        }
    }

    /// The HTTP status of the provider's answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Provider { status, .. }
            | Self::Redirect { status, .. }
            | Self::ResponseTooLarge { status, .. }
            | Self::InvalidResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The wait the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.class().retry_after()
    }
}

/// Keeps a provider error code only if it looks like one; anything else becomes `fallback`.
pub(crate) fn sanitize_code(code: &str, fallback: &str) -> String {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok { code } else { fallback }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_that_do_not_look_like_codes_are_replaced() {
        assert_eq!(sanitize_code("invalid_grant", "x"), "invalid_grant");
        assert_eq!(sanitize_code("Token ya29.secret has expired", "provider_error"), "provider_error");
        assert_eq!(sanitize_code(&"a".repeat(65), "provider_error"), "provider_error");
        assert_eq!(sanitize_code("", "provider_error"), "provider_error");
    }

    #[test]
    fn local_refusals_are_rejected_and_remote_faults_transient() {
        let host = "evil.example".to_owned();
        assert_eq!(OAuthError::HostNotAllowed { host: host.clone() }.class(), ErrorClass::Rejected);
        assert_eq!(OAuthError::Redirect { host, status: 302 }.class(), ErrorClass::Transient { retry_after: None });
    }
}
