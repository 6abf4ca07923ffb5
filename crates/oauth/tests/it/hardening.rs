//! The outbound client's guarantees: no redirects, a size cap, an allowlist checked before any
//! connection, timeouts.

use std::time::Duration;

use futures::stream;
use patchbay_oauth::{ErrorClass, OAuthClient, OAuthError, OutboundClient, Registry};
use tokio::{net::TcpListener, sync::mpsc};

use crate::support::{client_for, raw, redirect_uri, secret, Mock, CODE, VERIFIER};

async fn exchange(client: &OAuthClient, mock: &Mock) -> Result<patchbay_oauth::TokenSet, OAuthError> {
    client.exchange_code(&mock.google(), &secret(CODE), Some(&secret(VERIFIER)), &redirect_uri("google")).await
}

#[tokio::test]
async fn token_endpoint_redirect_is_an_error_and_is_never_followed() {
    let mock = Mock::start(|_| raw(302, &[("location", "http://169.254.169.254/")], "")).await;
    let client = client_for(&[&mock.google()]);

    let error = exchange(&client, &mock).await.expect_err("a 302 must fail");

    assert!(matches!(error, OAuthError::Redirect { status: 302, .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient { retry_after: None });
    assert_eq!(mock.requests().len(), 1, "exactly one request, no second hop");
}

#[tokio::test]
async fn five_mib_response_with_content_length_is_refused() {
    let mock = Mock::start(|_| raw(200, &[("content-type", "application/json")], vec![b'x'; 5 * 1024 * 1024])).await;
    let client = client_for(&[&mock.google()]);

    let error = exchange(&client, &mock).await.expect_err("5 MiB must fail");

    assert!(matches!(error, OAuthError::ResponseTooLarge { limit: 1_048_576, .. }), "{error:?}");
}

#[tokio::test]
async fn five_mib_streamed_response_without_length_is_refused() {
    let mock = Mock::start(|_| {
        let chunks = (0..80).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024]));
        raw(200, &[("content-type", "application/json")], axum::body::Body::from_stream(stream::iter(chunks)))
    })
    .await;
    let client = client_for(&[&mock.google()]);

    let error = exchange(&client, &mock).await.expect_err("a 5 MiB stream must fail");

    assert!(matches!(error, OAuthError::ResponseTooLarge { .. }), "{error:?}");
}

#[tokio::test]
async fn host_not_on_the_allowlist_is_refused_before_connecting() {
    // A listener that reports every connection it accepts.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted, mut connections) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((_, peer)) = listener.accept().await {
            let _ = accepted.send(peer);
        }
    });
    let allowed = Mock::start(|_| raw(200, &[], "")).await;
    let client = client_for(&[&allowed.google()]);
    let target = allowed.google().with_token_url(format!("http://{addr}/token").parse().unwrap());

    let error = client
        .exchange_code(&target, &secret(CODE), Some(&secret(VERIFIER)), &redirect_uri("google"))
        .await
        .expect_err("an unlisted host must fail");

    assert!(matches!(error, OAuthError::HostNotAllowed { .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Rejected);
    // Connect once ourselves: if ours is the first connection accepted, the client made none.
    let ours = tokio::net::TcpStream::connect(addr).await.unwrap();
    let first = connections.recv().await.unwrap();
    assert_eq!(first, ours.local_addr().unwrap(), "the client opened a connection");
    assert!(allowed.requests().is_empty());
}

#[tokio::test]
async fn refused_connection_is_a_transient_transport_error() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mock = Mock::start(|_| raw(200, &[], "")).await;
    let google = mock.google().with_token_url(format!("http://{addr}/token").parse().unwrap());

    let error = client_for(&[&google]).refresh(&google, &secret(CODE)).await.unwrap_err();

    assert!(matches!(error, OAuthError::Transport { reason: "connect", .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient { retry_after: None });
}

#[tokio::test]
async fn plain_http_to_a_non_loopback_host_cannot_be_allowlisted() {
    let registry = Registry::new().with(
        patchbay_oauth::ProviderConfig::google("id", secret("s"))
            .with_token_url("http://oauth2.googleapis.com/token".parse().unwrap()),
    );
    let result = OutboundClient::builder().allow_registry(&registry).allow_insecure_loopback(true).build();
    assert!(matches!(result, Err(OAuthError::InsecureScheme { .. })));
}

// The mock blocks its worker thread, so the client needs a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_provider_times_out_as_transient() {
    let mock = Mock::start(|_| {
        std::thread::sleep(Duration::from_millis(1_500));
        raw(200, &[], "{}")
    })
    .await;
    let registry = Registry::new().with(mock.google());
    let http = OutboundClient::builder()
        .allow_registry(&registry)
        .allow_insecure_loopback(true)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();

    let error = exchange(&OAuthClient::new(http), &mock).await.expect_err("must time out");

    assert!(matches!(error, OAuthError::Transport { reason: "timeout", .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient { retry_after: None });
}
