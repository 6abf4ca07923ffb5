//! The canary test (security.md P8): every secret and token the flows handle — client and
//! signing secrets, the JWT secret, vault key, connect tokens, states, cookie bindings,
//! authorization codes, access and refresh tokens — never appears in TRACE-level logs, in any
//! response except the one that must carry it, or in the database file.

use crate::connect::{back_to_app, world, APP};
use crate::helpers::{json, token, Db, JWT_SECRET, VAULT_KEYS};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

/// Everything written by the tracing subscriber, at every level.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Responses seen by the test: (what, headers and body as text).
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    async fn record(
        &mut self,
        what: &str,
        response: reqwest::Response,
    ) -> (reqwest::StatusCode, reqwest::header::HeaderMap, String) {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        self.0.push((what.to_string(), format!("{headers:?}\n{body}")));
        (status, headers, body)
    }
}

#[tokio::test]
async fn no_secret_or_token_reaches_logs_responses_or_the_database() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("this test owns its process (nextest)");

    let w = world(Db::Sqlite, "v2").await.unwrap();
    w.google.set_expires_in(60);
    w.monday.set_access_token_lifetime(60);
    let alice = token("alice", json!({}));
    let mut seen = Seen::default();
    let mut intended: Vec<(String, String)> = Vec::new(); // (value, the one response allowed to carry it)
    let mut canaries: Vec<String> = vec![
        "google-secret".into(),
        "monday-secret".into(),
        "monday-signing-secret".into(),
        JWT_SECRET.into(),
        VAULT_KEYS.split_once(':').unwrap().1.into(),
    ];

    for provider in ["google", "monday"] {
        let body = json!({"provider": provider, "mode": "redirect", "return_to": format!("{APP}/done")});
        let response =
            w.app.client.post(w.app.url("/v1/connect-sessions")).bearer_auth(&alice).json(&body).send().await.unwrap();
        let (_, _, text) = seen.record("create session", response).await;
        let created: serde_json::Value = serde_json::from_str(&text).unwrap();
        let connect_token = created["token"].as_str().unwrap().to_string();
        intended.push((connect_token.clone(), "create session".into()));
        // The self-submitting page posts back to its own URL, which is the token's.
        intended.push((connect_token.clone(), "connect page".into()));
        let connect_url = created["connect_url"].as_str().unwrap().to_string();
        let page = w.app.client.get(&connect_url).send().await.unwrap();
        seen.record("connect page", page).await;
        let submitted = w.app.client.post(&connect_url).send().await.unwrap();
        let (_, headers, _) = seen.record("connect submit", submitted).await;
        let authorize = url::Url::parse(headers["location"].to_str().unwrap()).unwrap();
        let state = authorize.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
        let cookie = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        let binding = cookie.split_once('=').unwrap().1.to_string();
        intended.push((state.clone(), "connect submit".into()));
        intended.push((binding.clone(), "connect submit".into()));
        let started = crate::connect::Started {
            session_id: created["id"].as_str().unwrap().into(),
            authorize,
            cookie: cookie.clone(),
        };
        let callback = w.consent(provider, &started);
        let code = callback.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
        let response = w.callback(&callback, Some(&cookie)).await;
        let back = back_to_app(&response);
        seen.record("callback", response).await;
        assert_eq!(back["patchbay_status"], "connected", "{provider}");
        canaries.extend([connect_token, state, binding, code]);
        let id = back["connection_id"].clone();
        let shown = w.app.get_as(&format!("/v1/connections/{id}"), &alice).await;
        seen.record("show connection", shown).await;
        // A refresh (the tokens were issued expiring within the margin).
        let me = json(w.app.get_as("/v1/me", &alice).await).await;
        let scope = patchbay_store::TenantScope::new(me["tenant_id"].as_str().unwrap().parse().unwrap());
        w.app.state.tokens.fresh_access_token(scope, id.parse().unwrap()).await.expect("refresh");
    }
    let listed = w.app.get_as("/v1/connections", &alice).await;
    seen.record("list connections", listed).await;
    let metrics = w.app.client.get(format!("{}/metrics", w.app.metrics)).send().await.unwrap();
    seen.record("metrics", metrics).await;
    canaries.extend(w.google.issued_tokens());
    canaries.extend(w.monday.issued_tokens());
    assert!(canaries.len() >= 15, "the canaries cover the flow: {}", canaries.len());

    let mut database = Vec::new();
    for file in ["patchbay.db", "patchbay.db-wal"] {
        if let Ok(bytes) = std::fs::read(w.app.data_dir.join(file)) {
            database.extend(bytes);
        }
    }
    w.app.stop().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(logs.contains("connect succeeded"), "the capture saw the flow's logs");
    assert!(!database.is_empty(), "the database file was read");
    for canary in &canaries {
        assert!(!logs.contains(canary.as_str()), "a secret reached the logs: {}…", &canary[..6.min(canary.len())]);
        let needle = canary.as_bytes();
        assert!(
            !database.windows(needle.len()).any(|w| w == needle),
            "a secret is in the database file: {}…",
            &canary[..6.min(canary.len())]
        );
        for (what, text) in &seen.0 {
            let allowed = intended.iter().any(|(value, response)| value == canary && response == what);
            assert!(
                allowed || !text.contains(canary.as_str()),
                "a secret reached the response of `{what}`: {}…",
                &canary[..6.min(canary.len())]
            );
        }
    }
}
