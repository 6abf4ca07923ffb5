//! Inline mock providers: an axum server on 127.0.0.1:0 that records every request and answers
//! with a canned response, plus clients and provider configs pointed at it.

use std::sync::{Arc, Mutex};

use axum::{
    body::{to_bytes, Body},
    extract::Request,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Router,
};
use patchbay_oauth::{MondayFlow, OAuthClient, OutboundClient, ProviderConfig, Registry};
use secrecy::SecretString;
use url::Url;

pub const CLIENT_SECRET: &str = "canary-client-secret-7f3a";
pub const CODE: &str = "canary-auth-code-91bd";
pub const VERIFIER: &str = "canary-pkce-verifier-0123456789abcdefghijklmnopq";
pub const ACCESS_TOKEN: &str = "canary-access-token-c0ffee";
pub const REFRESH_TOKEN: &str = "canary-refresh-token-beef42";
pub const CANARIES: [&str; 5] = [CLIENT_SECRET, CODE, VERIFIER, ACCESS_TOKEN, REFRESH_TOKEN];

/// One request as the mock saw it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }

    pub fn form_value(&self, key: &str) -> Option<String> {
        self.form().into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }
}

type Responder = Arc<dyn Fn(&Captured) -> Response + Send + Sync>;

/// A running mock provider.
pub struct Mock {
    pub base: Url,
    requests: Arc<Mutex<Vec<Captured>>>,
}

impl Mock {
    /// Starts a mock answering every request with `respond`.
    pub async fn start(respond: impl Fn(&Captured) -> Response + Send + Sync + 'static) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let respond: Responder = Arc::new(respond);
        let recorded = requests.clone();
        let app = Router::new().fallback(move |request: Request| {
            let (recorded, respond) = (recorded.clone(), respond.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = to_bytes(body, usize::MAX).await.unwrap().to_vec();
                let captured = Captured {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    query: parts.uri.query().map(str::to_owned),
                    headers: parts.headers,
                    body,
                };
                let response = respond(&captured);
                recorded.lock().unwrap().push(captured);
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, requests }
    }

    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap()
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.requests.lock().unwrap().clone()
    }

    /// Google pointed at this mock for every endpoint.
    pub fn google(&self) -> ProviderConfig {
        ProviderConfig::google("google-client-id", SecretString::from(CLIENT_SECRET))
            .with_authorize_url(self.url("/o/oauth2/v2/auth"))
            .with_token_url(self.url("/token"))
            .with_revoke_url(Some(self.url("/revoke")))
            .with_identity_url(self.url("/v1/userinfo"))
    }

    /// monday.com (`flow`) pointed at this mock for every endpoint.
    pub fn monday(&self, flow: MondayFlow) -> ProviderConfig {
        let token = if flow == MondayFlow::V2 { "/oauth_ms/oauth/token" } else { "/oauth2/token" };
        let revoke = (flow == MondayFlow::V2).then(|| self.url("/oauth_ms/oauth/revoke"));
        ProviderConfig::monday("monday-client-id", SecretString::from(CLIENT_SECRET), flow)
            .with_authorize_url(self.url("/oauth2/authorize"))
            .with_token_url(self.url(token))
            .with_revoke_url(revoke)
            .with_identity_url(self.url("/v2"))
            .with_migrate_url(Some(self.url("/oauth_ms/oauth/migrate")))
    }
}

/// A client allowed to reach `providers` over loopback http.
pub fn client_for(providers: &[&ProviderConfig]) -> OAuthClient {
    let registry = providers.iter().fold(Registry::new(), |r, p| r.with((*p).clone()));
    let http = OutboundClient::builder().allow_registry(&registry).allow_insecure_loopback(true).build().unwrap();
    OAuthClient::new(http)
}

/// A JSON response with `status`.
pub fn json(status: u16, body: serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

/// A plain response with `status`, extra headers and `body`.
pub fn raw(status: u16, headers: &[(&'static str, &'static str)], body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response.headers_mut().insert(*name, value.parse().unwrap());
    }
    response
}

pub fn secret(value: &str) -> SecretString {
    SecretString::from(value)
}

pub fn redirect_uri(provider: &str) -> Url {
    Url::parse(&format!("https://patchbay.example/oauth/{provider}/callback")).unwrap()
}

/// Asserts that neither `Display`, `Debug` nor any source in the chain shows a canary.
pub fn assert_no_canary(error: &(dyn std::error::Error + 'static), what: &str) {
    let mut shown = format!("{error} | {error:?}");
    let mut source = error.source();
    while let Some(inner) = source {
        shown.push_str(&format!(" | {inner} | {inner:?}"));
        source = inner.source();
    }
    for canary in CANARIES {
        assert!(!shown.contains(canary), "{what}: `{canary}` leaked into {shown}");
    }
}
