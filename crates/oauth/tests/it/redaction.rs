//! Canary test (security.md P5, P8 d): no error, config or token set shows a secret.

use patchbay_oauth::{MondayFlow, OAuthClient, OAuthError, OutboundClient, Registry};
use serde_json::json;

use crate::support::{
    assert_no_canary, client_for, json, raw, redirect_uri, secret, Mock, ACCESS_TOKEN, CANARIES, CLIENT_SECRET, CODE,
    REFRESH_TOKEN, VERIFIER,
};

async fn exchange_error(mock: &Mock) -> OAuthError {
    let google = mock.google();
    client_for(&[&google])
        .exchange_code(&google, &secret(CODE), Some(&secret(VERIFIER)), &redirect_uri("google"))
        .await
        .expect_err("this exchange must fail")
}

#[tokio::test]
async fn no_error_kind_shows_a_canary() {
    let echo_everything = json!({
        "error": format!("{ACCESS_TOKEN} {CLIENT_SECRET}"),
        "error_description": format!("{CODE} {VERIFIER} {REFRESH_TOKEN}"),
    });
    let mut errors = vec![
        (
            "provider error echoing secrets",
            exchange_error(&Mock::start(move |_| json(400, echo_everything.clone())).await).await,
        ),
        (
            "redirect",
            exchange_error(&Mock::start(|_| raw(302, &[("location", "http://169.254.169.254/")], "")).await).await,
        ),
        ("too large", exchange_error(&Mock::start(|_| raw(200, &[], vec![b'a'; 2 * 1024 * 1024])).await).await),
        (
            "token_type mac",
            exchange_error(
                &Mock::start(|_| json(200, json!({"access_token": ACCESS_TOKEN, "token_type": "mac"}))).await,
            )
            .await,
        ),
        (
            "not JSON",
            exchange_error(&Mock::start(|_| raw(200, &[], format!("<p>{ACCESS_TOKEN} {REFRESH_TOKEN}</p>"))).await)
                .await,
        ),
        (
            "5xx echoing secrets",
            exchange_error(&Mock::start(|_| raw(500, &[], format!("{CLIENT_SECRET} {CODE}"))).await).await,
        ),
    ];

    // Connection refused: a port that was just released.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mock = Mock::start(|_| raw(200, &[], "")).await;
    let unreachable =
        mock.google().with_token_url(format!("http://{addr}/token?client_secret={CLIENT_SECRET}").parse().unwrap());
    let client = client_for(&[&unreachable]);
    let transport =
        client.exchange_code(&unreachable, &secret(CODE), Some(&secret(VERIFIER)), &redirect_uri("google")).await;
    errors.push(("connection refused, secret in the URL", transport.unwrap_err()));

    let offlist = mock
        .google()
        .with_token_url(format!("https://evil.example/token?access_token={ACCESS_TOKEN}").parse().unwrap());
    let refused = client_for(&[&mock.google()]).refresh(&offlist, &secret(REFRESH_TOKEN)).await.unwrap_err();
    errors.push(("host not allowed", refused));
    let legacy = mock.monday(MondayFlow::Legacy);
    errors.push(("unsupported", client_for(&[&legacy]).refresh(&legacy, &secret(REFRESH_TOKEN)).await.unwrap_err()));
    let google = mock.google();
    errors.push((
        "missing verifier",
        client_for(&[&google]).exchange_code(&google, &secret(CODE), None, &redirect_uri("google")).await.unwrap_err(),
    ));

    for (what, error) in &errors {
        assert_no_canary(error, what);
    }
}

#[tokio::test]
async fn configs_clients_and_token_sets_hide_their_secrets() {
    let mock = Mock::start(|_| {
        json(200, json!({"access_token": ACCESS_TOKEN, "refresh_token": REFRESH_TOKEN, "token_type": "Bearer"}))
    })
    .await;
    let google = mock.google();
    let registry = Registry::new().with(google.clone()).with(mock.monday(MondayFlow::V2));
    let http = OutboundClient::builder().allow_registry(&registry).allow_insecure_loopback(true).build().unwrap();
    let client = OAuthClient::new(http);
    let tokens = client.refresh(&google, &secret(REFRESH_TOKEN)).await.unwrap();

    let shown = format!("{registry:?} {client:?} {tokens:?} {google:?}");

    for canary in CANARIES {
        assert!(!shown.contains(canary), "`{canary}` leaked into {shown}");
    }
}
