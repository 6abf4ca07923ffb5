//! Revocation on the wire and its outcomes (security.md E1, E2, E3): the request shapes, and
//! the four outcome classes against the provider fakes' switchable revocation endpoints and
//! local stubs.

use std::time::Duration;

use patchbay_oauth::{
    ErrorClass, MondayFlow, OAuthClient, OutboundClient, Pkce, ProviderConfig, Registry, RevokeOutcome, RevokeVerdict,
    TokenSet, TokenTypeHint,
};
use patchbay_testkit::fakes::{FakeGoogle, FakeMonday, RevokeBehaviour, TokenKind, REVOKE_REDIRECT_PATH};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::net::TcpListener;
use url::Url;

use crate::support::{client_for, json, raw, secret, Mock, CLIENT_SECRET, REFRESH_TOKEN};

#[tokio::test]
async fn google_revoke_posts_the_token_in_a_form_body_not_the_url() {
    let mock = Mock::start(|_| raw(200, &[], "")).await;
    let google = mock.google();

    let outcome =
        client_for(&[&google]).revoke(&google, &secret(REFRESH_TOKEN), Some(TokenTypeHint::RefreshToken)).await;

    assert_eq!(outcome.unwrap(), RevokeOutcome::Revoked);
    let sent = &mock.requests()[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str(), sent.query.as_deref()), ("POST", "/revoke", None));
    assert_eq!(sent.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(sent.form_value("token").as_deref(), Some(REFRESH_TOKEN));
    assert_eq!(sent.form_value("token_type_hint").as_deref(), Some("refresh_token"));
}

#[tokio::test]
async fn google_revoke_of_an_already_invalid_token_counts_as_revoked() {
    let mock =
        Mock::start(|_| json(400, json!({"error": "invalid_token", "error_description": "Token expired or revoked"})))
            .await;
    let google = mock.google();

    let outcome = client_for(&[&google]).revoke(&google, &secret(REFRESH_TOKEN), None).await;

    assert_eq!(outcome.unwrap(), RevokeOutcome::Revoked);
}

#[tokio::test]
async fn monday_v2_revoke_posts_json_with_client_credentials() {
    let mock = Mock::start(|_| json(200, json!({"success": true}))).await;
    let monday = mock.monday(MondayFlow::V2);

    let outcome =
        client_for(&[&monday]).revoke(&monday, &secret(REFRESH_TOKEN), Some(TokenTypeHint::RefreshToken)).await;

    assert_eq!(outcome.unwrap(), RevokeOutcome::Revoked);
    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/oauth_ms/oauth/revoke");
    let body = sent.json();
    assert_eq!(body["token"], REFRESH_TOKEN);
    assert_eq!(body["client_id"], "monday-client-id");
    assert_eq!(body["client_secret"], CLIENT_SECRET);
    assert_eq!(body["token_type_hint"], "refresh_token");
}

#[tokio::test]
async fn revoke_answered_503_is_transient_with_its_retry_after() {
    let mock = Mock::start(|_| raw(503, &[("retry-after", "120")], "")).await;
    let monday = mock.monday(MondayFlow::V2);

    let error = client_for(&[&monday]).revoke(&monday, &secret(REFRESH_TOKEN), None).await.unwrap_err();

    assert_eq!(error.class(), ErrorClass::Transient { retry_after: Some(Duration::from_secs(120)) });
    assert_eq!(error.status(), Some(503));
}

#[tokio::test]
async fn monday_revoke_answered_success_false_is_not_a_revocation() {
    let mock = Mock::start(|_| json(200, json!({"success": false}))).await;
    let monday = mock.monday(MondayFlow::V2);

    let error = client_for(&[&monday]).revoke(&monday, &secret(REFRESH_TOKEN), None).await.unwrap_err();

    assert_eq!(error.reason(), "revocation_not_confirmed");
    assert_eq!(error.class(), ErrorClass::Rejected, "not worth a retry");
}

#[tokio::test]
async fn monday_legacy_has_no_revocation_and_sends_nothing() {
    let mock = Mock::start(|_| raw(200, &[], "")).await;
    let monday = mock.monday(MondayFlow::Legacy).with_revoke_url(Some(mock.url("/oauth_ms/oauth/revoke")));

    let outcome = client_for(&[&monday]).revoke(&monday, &secret("legacy"), None).await;

    assert_eq!(outcome.unwrap(), RevokeOutcome::NotSupported);
    assert!(mock.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The four outcome classes (`RevokeVerdict`), against the provider fakes and local stubs.

const REDIRECT: &str = "https://patchbay.example/oauth/callback";

/// A fake Google with one client and user, its config, and a live refresh token from a real
/// authorization (PKCE, code exchange) through this crate.
async fn google_fake() -> (FakeGoogle, ProviderConfig, TokenSet) {
    let fake = FakeGoogle::start().await;
    fake.register_client("google-client-id", CLIENT_SECRET, &[REDIRECT]);
    fake.add_user("1001", "ada@example.com");
    let config = ProviderConfig::google("google-client-id", secret(CLIENT_SECRET))
        .with_authorize_url(fake.auth_url())
        .with_token_url(fake.token_url())
        .with_revoke_url(Some(fake.revoke_url()))
        .with_identity_url(fake.userinfo_url());
    let pkce = Pkce::generate();
    let redirect = Url::parse(REDIRECT).unwrap();
    let callback = fake.authorize_headless(&config.authorize_url("st", Some(&pkce.challenge), &redirect), "1001");
    let code = callback.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let tokens = client_for(&[&config]).exchange_code(&config, &secret(&code), Some(&pkce.verifier), &redirect).await;
    (fake, config, tokens.unwrap())
}

/// The same for fake monday.com (OAuth 2.1 flow: rotating refresh tokens, JSON revocation).
async fn monday_fake() -> (FakeMonday, ProviderConfig, TokenSet) {
    let fake = FakeMonday::start().await;
    fake.register_client("monday-client-id", CLIENT_SECRET, &[REDIRECT], &patchbay_oauth::MONDAY_REQUIRED_SCOPES);
    fake.add_account(77, "acme", "Acme");
    fake.add_user(501, 77, "Ada", "ada@acme.example");
    let config = ProviderConfig::monday("monday-client-id", secret(CLIENT_SECRET), MondayFlow::V2)
        .with_authorize_url(fake.auth_url())
        .with_token_url(fake.token_url())
        .with_revoke_url(Some(fake.revoke_url()))
        .with_identity_url(fake.api_url())
        .with_migrate_url(Some(fake.migrate_url()));
    let pkce = Pkce::generate();
    let redirect = Url::parse(REDIRECT).unwrap();
    let callback = fake.authorize_headless(&config.authorize_url("st", Some(&pkce.challenge), &redirect), "501");
    let code = callback.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let tokens = client_for(&[&config]).exchange_code(&config, &secret(&code), Some(&pkce.verifier), &redirect).await;
    (fake, config, tokens.unwrap())
}

fn refresh_token(tokens: &TokenSet) -> SecretString {
    tokens.refresh_token.clone().expect("an offline grant has a refresh token")
}

/// What a behaviour must come to, whichever provider's fake misbehaves.
fn expected(behaviour: &RevokeBehaviour) -> RevokeVerdict {
    let failed = |reason: &str, status| RevokeVerdict::Failed { reason: reason.into(), status: Some(status) };
    let retry =
        |reason: &str, status| RevokeVerdict::Retry { reason: reason.into(), status: Some(status), retry_after: None };
    match behaviour {
        RevokeBehaviour::Normal => RevokeVerdict::Revoked,
        RevokeBehaviour::Status(503) => retry("server_error", 503),
        RevokeBehaviour::Status(429) => retry("rate_limit_exceeded", 429),
        RevokeBehaviour::Status(400) => failed("invalid_request", 400),
        RevokeBehaviour::SuccessFalse => failed("revocation_not_confirmed", 200),
        RevokeBehaviour::Redirect => failed("redirect_refused", 307),
        RevokeBehaviour::Oversized => failed("response_too_large", 200),
        other => unreachable!("no expectation for {other:?}"),
    }
}

fn behaviours() -> [RevokeBehaviour; 6] {
    [
        RevokeBehaviour::Status(503),
        RevokeBehaviour::Status(429),
        RevokeBehaviour::Status(400),
        RevokeBehaviour::SuccessFalse,
        RevokeBehaviour::Redirect,
        RevokeBehaviour::Oversized,
    ]
}

#[tokio::test]
async fn against_fake_google_each_revoke_behaviour_gets_its_outcome_class() {
    let (fake, config, tokens) = google_fake().await;
    let client = client_for(&[&config]);
    let token = refresh_token(&tokens);

    for (i, behaviour) in behaviours().into_iter().enumerate() {
        fake.set_revoke_behaviour(behaviour.clone());
        let verdict = client.revoke_verdict(&config, &token, Some(TokenTypeHint::RefreshToken)).await;
        assert_eq!(verdict, expected(&behaviour), "{behaviour:?}");
        assert!(!verdict.is_revoked());
        assert!(fake.token_alive(token.expose_secret()), "{behaviour:?}: the token is still valid at Google");
        assert_eq!(fake.revocations().len(), i + 1, "one request per attempt, no redirect hop");
    }
    fake.set_revoke_behaviour(RevokeBehaviour::Normal);
    let verdict = client.revoke_verdict(&config, &token, Some(TokenTypeHint::RefreshToken)).await;

    assert_eq!(verdict, RevokeVerdict::Revoked);
    assert!(!fake.token_alive(token.expose_secret()) && !fake.token_alive(tokens.access_token.expose_secret()));
    assert!(!fake.requests().iter().any(|r| r.starts_with(REVOKE_REDIRECT_PATH)), "the redirect was not followed");
    // Revoking again: Google says invalid_token, which still means the token is dead.
    assert_eq!(client.revoke_verdict(&config, &token, None).await, RevokeVerdict::Revoked);
}

#[tokio::test]
async fn against_fake_monday_each_revoke_behaviour_gets_its_outcome_class() {
    let (fake, config, tokens) = monday_fake().await;
    let client = client_for(&[&config]);
    let token = refresh_token(&tokens);

    for (i, behaviour) in behaviours().into_iter().enumerate() {
        fake.set_revoke_behaviour(behaviour.clone());
        let verdict = client.revoke_verdict(&config, &token, Some(TokenTypeHint::RefreshToken)).await;
        assert_eq!(verdict, expected(&behaviour), "{behaviour:?}");
        assert!(fake.token_alive(token.expose_secret()), "{behaviour:?}: the token is still valid at monday");
        assert_eq!(fake.revocations().len(), i + 1, "one request per attempt, no redirect hop");
    }
    fake.set_revoke_behaviour(RevokeBehaviour::Normal);
    let verdict = client.revoke_verdict(&config, &token, Some(TokenTypeHint::RefreshToken)).await;

    assert_eq!(verdict, RevokeVerdict::Revoked);
    let last = fake.revocations().pop().unwrap();
    assert_eq!((last.kind, last.hint.as_deref(), last.effective), (TokenKind::Refresh, Some("refresh_token"), true));
    assert!(!fake.token_alive(tokens.access_token.expose_secret()), "the grant ended");
    assert!(!fake.requests().iter().any(|r| r.starts_with(REVOKE_REDIRECT_PATH)), "the redirect was not followed");
}

#[tokio::test]
async fn the_older_revoke_api_agrees_with_the_verdict() {
    let (fake, config, tokens) = monday_fake().await;
    let client = client_for(&[&config]);
    let token = refresh_token(&tokens);

    for behaviour in behaviours() {
        fake.set_revoke_behaviour(behaviour.clone());
        let error = client.revoke(&config, &token, None).await.expect_err("a misbehaving endpoint is an error");
        let retryable = matches!(error.class(), ErrorClass::Transient { .. } | ErrorClass::RateLimited { .. });
        assert_eq!(retryable, expected(&behaviour).is_retryable(), "{behaviour:?}: {error:?}");
        assert_eq!(Some(error.reason()), reason_of(&expected(&behaviour)), "{behaviour:?}");
    }
}

fn reason_of(verdict: &RevokeVerdict) -> Option<&str> {
    match verdict {
        RevokeVerdict::Retry { reason, .. } | RevokeVerdict::Failed { reason, .. } => Some(reason),
        _ => None,
    }
}

#[tokio::test]
async fn monday_200_bodies_other_than_success_true_are_failures_not_revocations() {
    for body in [
        json!({"success": false}),
        json!({"success": "false"}),
        json!({"error": "invalid_request", "error_description": "token is required"}),
        json!({"errors": [{"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}),
        json!({}),
    ] {
        let shown = body.to_string();
        let mock = Mock::start(move |_| json(200, body.clone())).await;
        let monday = mock.monday(MondayFlow::V2);

        let verdict = client_for(&[&monday]).revoke_verdict(&monday, &secret(REFRESH_TOKEN), None).await;

        assert_eq!(
            verdict,
            RevokeVerdict::Failed { reason: "revocation_not_confirmed".into(), status: Some(200) },
            "{shown}"
        );
    }
}

#[tokio::test]
async fn unsupported_token_type_is_a_definite_failure_the_caller_can_fall_back_from() {
    let mock = Mock::start(|_| json(400, json!({"error": "unsupported_token_type"}))).await;
    let google = mock.google();

    let verdict = client_for(&[&google]).revoke_verdict(&google, &secret(REFRESH_TOKEN), None).await;

    assert_eq!(verdict, RevokeVerdict::Failed { reason: "unsupported_token_type".into(), status: Some(400) });
}

#[tokio::test]
async fn a_503_is_retried_after_its_retry_after() {
    let mock = Mock::start(|_| raw(503, &[("retry-after", "30")], "")).await;
    let google = mock.google();

    let verdict = client_for(&[&google]).revoke_verdict(&google, &secret(REFRESH_TOKEN), None).await;

    let retry_after = Some(Duration::from_secs(30));
    assert_eq!(verdict, RevokeVerdict::Retry { reason: "http_503".into(), status: Some(503), retry_after });
}

#[tokio::test]
async fn an_endless_streamed_answer_fails_at_the_size_cap_instead_of_hanging() {
    let mock = Mock::start(|_| {
        let endless = futures::stream::repeat_with(|| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024]));
        raw(200, &[("content-type", "application/json")], axum::body::Body::from_stream(endless))
    })
    .await;
    let monday = mock.monday(MondayFlow::V2);

    let verdict = client_for(&[&monday]).revoke_verdict(&monday, &secret(REFRESH_TOKEN), None).await;

    assert_eq!(verdict, RevokeVerdict::Failed { reason: "response_too_large".into(), status: Some(200) });
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let google = ProviderConfig::google("google-client-id", secret(CLIENT_SECRET))
        .with_revoke_url(Some(format!("http://{addr}/revoke").parse().unwrap()));

    let verdict = client_for(&[&google]).revoke_verdict(&google, &secret(REFRESH_TOKEN), None).await;

    assert_eq!(verdict, RevokeVerdict::Retry { reason: "connect".into(), status: None, retry_after: None });
}

#[tokio::test]
async fn a_provider_that_never_answers_times_out_and_is_retried() {
    // Accepts connections and keeps them open without ever answering.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let google = ProviderConfig::google("google-client-id", secret(CLIENT_SECRET))
        .with_revoke_url(Some(format!("http://{addr}/revoke").parse().unwrap()));
    let registry = Registry::new().with(google.clone());
    let http = OutboundClient::builder()
        .allow_registry(&registry)
        .allow_insecure_loopback(true)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();

    let verdict = OAuthClient::new(http).revoke_verdict(&google, &secret(REFRESH_TOKEN), None).await;

    assert_eq!(verdict, RevokeVerdict::Retry { reason: "timeout".into(), status: None, retry_after: None });
}

#[tokio::test]
async fn monday_legacy_and_a_missing_endpoint_are_not_supported() {
    let mock = Mock::start(|_| raw(200, &[], "")).await;
    let legacy = mock.monday(MondayFlow::Legacy).with_revoke_url(Some(mock.url("/oauth_ms/oauth/revoke")));
    let no_endpoint = mock.google().with_revoke_url(None);

    let client = client_for(&[&legacy, &no_endpoint]);
    assert_eq!(client.revoke_verdict(&legacy, &secret("legacy"), None).await, RevokeVerdict::NotSupported);
    assert_eq!(client.revoke_verdict(&no_endpoint, &secret(REFRESH_TOKEN), None).await, RevokeVerdict::NotSupported);
    assert!(mock.requests().is_empty());
}
