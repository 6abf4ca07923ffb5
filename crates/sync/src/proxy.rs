//! The authenticated provider proxy (architecture §4.3): a client request is forwarded to the
//! connection's provider API — monday `POST /v2`, Google `/calendar/v3/…`, nothing else — through
//! [`Session::call_passthrough`] (fresh token, budget, breaker, one refresh on 401), so an app can
//! do what sync does not cover without ever holding a token. Only a short allowlist of headers
//! passes either way; the token is added by the session and never comes back.

use crate::call::{ApiRequest, Session};
use crate::{SyncError, SyncSettings};
use bytes::Bytes;
use patchbay_store::ProviderId;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

/// Largest request body forwarded.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// What a proxied monday request is assumed to cost: the proxy cannot price an arbitrary query,
/// so it reserves generously from the account's complexity budget.
pub const MONDAY_PROXY_COMPLEXITY: i64 = 25_000;

/// Request headers that pass to the provider; everything else (credentials, cookies, hop-by-hop,
/// `X-Forwarded-*`) stays here.
const REQUEST_HEADERS: [&str; 5] = ["content-type", "accept", "if-match", "if-none-match", "api-version"];

/// Response headers that come back; everything else (`Set-Cookie`, hop-by-hop, anything about
/// authentication) is dropped.
const RESPONSE_HEADERS: [&str; 9] = [
    "content-type",
    "etag",
    "last-modified",
    "cache-control",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "api-version",
    "content-language",
];

/// A client's request, as received.
#[derive(Clone, Debug)]
pub struct ProxyRequest {
    pub method: Method,
    /// The path after `/proxy/`, still percent-encoded as it arrived.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The provider's answer, filtered.
#[derive(Clone, Debug)]
pub struct ProxyResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a request was not forwarded or its answer not passed back.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The path (or method) is not one the proxy forwards for this provider.
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error("the request body is larger than {MAX_REQUEST_BODY} bytes")]
    RequestTooLarge,
    #[error("the provider's answer is larger than the proxy passes back")]
    ResponseTooLarge,
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// The provider URL a request may go to, or why not.
pub fn target(provider: ProviderId, settings: &SyncSettings, request: &ProxyRequest) -> Result<Url, ProxyError> {
    let segments = segments(&request.path)?;
    match provider {
        ProviderId::Monday => {
            if !(segments.is_empty() || segments == ["v2"]) {
                return Err(ProxyError::NotAllowed("monday is proxied at `v2` only"));
            }
            if request.method != Method::POST {
                return Err(ProxyError::NotAllowed("monday's API takes POST only"));
            }
            if request.query.as_deref().is_some_and(|q| !q.is_empty()) {
                return Err(ProxyError::NotAllowed("monday's API takes no query string"));
            }
            Ok(settings.monday_api_url.clone())
        }
        ProviderId::Google => {
            if segments.len() < 3 || segments[0] != "calendar" || segments[1] != "v3" {
                return Err(ProxyError::NotAllowed("Google is proxied under `calendar/v3/` only"));
            }
            let base = &settings.google_api_url;
            let root = base.path().trim_end_matches('/');
            let mut url = base.clone();
            url.set_path(&format!("{root}/{}", segments.join("/")));
            url.set_query(request.query.as_deref().filter(|q| !q.is_empty()));
            url.set_fragment(None);
            // Belt and braces: the result is still on the configured host, under the root.
            let prefix = format!("{root}/calendar/v3/");
            if url.origin() != base.origin() || !url.path().starts_with(&prefix) {
                return Err(ProxyError::NotAllowed("the path leaves the provider's API"));
            }
            Ok(url)
        }
    }
}

/// The path's segments, refusing anything that could step outside the allowed prefix once
/// decoded or joined: empty, `.` or `..` segments, backslashes, encoded slashes, backslashes or
/// dots, bad escapes, and characters outside a path segment's.
fn segments(path: &str) -> Result<Vec<&str>, ProxyError> {
    const REFUSED: ProxyError = ProxyError::NotAllowed("the proxied path is not a plain relative path");
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for segment in path.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(REFUSED);
        }
        let bytes = segment.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' => {
                    let hex = bytes.get(i + 1..i + 3).ok_or(REFUSED)?;
                    let hex = std::str::from_utf8(hex).map_err(|_| REFUSED)?;
                    let byte = u8::from_str_radix(hex, 16).map_err(|_| REFUSED)?;
                    if matches!(byte, b'/' | b'\\' | b'.' | b'%') || byte < 0x20 {
                        return Err(REFUSED);
                    }
                    i += 3;
                }
                b if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) => i += 1,
                _ => return Err(REFUSED),
            }
        }
        out.push(segment);
    }
    Ok(out)
}

/// The headers forwarded: the allowlist, plus monday's pinned `API-Version` when none was sent.
fn forwarded_headers(
    provider: ProviderId,
    settings: &SyncSettings,
    headers: &HeaderMap,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out: Vec<(HeaderName, HeaderValue)> = Vec::new();
    for name in REQUEST_HEADERS {
        if name == "api-version" && provider != ProviderId::Monday {
            continue;
        }
        for value in headers.get_all(name) {
            out.push((HeaderName::from_static(name), value.clone()));
        }
    }
    let has_version = out.iter().any(|(n, _)| n == "api-version");
    if provider == ProviderId::Monday && !has_version {
        if let Ok(version) = HeaderValue::from_str(&settings.monday_api_version) {
            out.push((HeaderName::from_static("api-version"), version));
        }
    }
    out
}

/// Whether a monday GraphQL body is a mutation (writes draw on the write budget).
fn is_mutation(body: &[u8]) -> bool {
    let query = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|b| b.get("query").and_then(|q| q.as_str()).map(str::to_owned))
        .unwrap_or_default();
    query.trim_start().starts_with("mutation")
}

/// Forwards `request` for the session's connection and filters the answer.
pub async fn forward(session: &Session, request: ProxyRequest) -> Result<ProxyResponse, ProxyError> {
    let provider = session.connection().provider;
    let settings = &session.deps().settings;
    if request.body.len() > MAX_REQUEST_BODY {
        return Err(ProxyError::RequestTooLarge);
    }
    let url = target(provider, settings, &request)?;
    let spend = match provider {
        ProviderId::Google => session.google_spend(),
        ProviderId::Monday => session.monday_spend(is_mutation(&request.body), MONDAY_PROXY_COMPLEXITY),
    };
    let api = ApiRequest {
        method: request.method,
        url,
        headers: forwarded_headers(provider, settings, &request.headers),
        body: (!request.body.is_empty()).then_some(request.body),
        spend,
    };
    let response = session.call_passthrough(&api).await?;
    if response.body.len() > settings.proxy_max_body {
        return Err(ProxyError::ResponseTooLarge);
    }
    let mut headers = HeaderMap::new();
    for name in RESPONSE_HEADERS {
        for value in response.headers.get_all(name) {
            headers.append(HeaderName::from_static(name), value.clone());
        }
    }
    Ok(ProxyResponse { status: response.status, headers, body: response.body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SyncSettings {
        SyncSettings::new(
            Url::parse("https://www.googleapis.com/").unwrap(),
            Url::parse("https://api.monday.com/v2").unwrap(),
        )
    }

    fn request(method: Method, path: &str) -> ProxyRequest {
        ProxyRequest { method, path: path.into(), query: None, headers: HeaderMap::new(), body: Bytes::new() }
    }

    #[test]
    fn google_paths_stay_under_calendar_v3_on_the_api_host() {
        let s = settings();
        let ok = target(ProviderId::Google, &s, &request(Method::GET, "calendar/v3/calendars/a%40b.test/events"));
        assert_eq!(ok.unwrap().as_str(), "https://www.googleapis.com/calendar/v3/calendars/a%40b.test/events");
        for bad in [
            "calendar/v3/../../oauth2/v4/token",
            "calendar/v3/%2e%2e/x",
            "calendar/v3/a%2Fb",
            "calendar/v3//evil.test/x",
            "https://evil.test/calendar/v3/x",
            "calendar/v3/a\\b",
            "calendar/v2/x",
            "drive/v3/files",
            "calendar/v3",
            "calendar/v3/%zz",
            "calendar/v3/./x",
        ] {
            assert!(target(ProviderId::Google, &s, &request(Method::GET, bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn monday_is_post_v2_only() {
        let s = settings();
        assert_eq!(
            target(ProviderId::Monday, &s, &request(Method::POST, "v2")).unwrap().as_str(),
            "https://api.monday.com/v2"
        );
        assert!(target(ProviderId::Monday, &s, &request(Method::GET, "v2")).is_err());
        assert!(target(ProviderId::Monday, &s, &request(Method::POST, "v2/file")).is_err());
        assert!(target(ProviderId::Monday, &s, &request(Method::POST, "oauth2/token")).is_err());
    }

    #[test]
    fn only_safe_headers_pass_and_monday_gets_the_pinned_version() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer client-secret"),
            ("cookie", "a=b"),
            ("connection", "keep-alive"),
            ("x-forwarded-for", "10.0.0.1"),
            ("proxy-authorization", "x"),
            ("te", "trailers"),
            ("content-type", "application/json"),
            ("if-none-match", "\"e1\""),
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        let names = |v: Vec<(HeaderName, HeaderValue)>| v.into_iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(forwarded_headers(ProviderId::Google, &settings(), &headers)),
            ["content-type", "if-none-match"]
        );
        let monday = forwarded_headers(ProviderId::Monday, &settings(), &headers);
        assert!(monday.iter().any(|(n, v)| n == "api-version" && v == "2026-10"), "{monday:?}");
    }
}
