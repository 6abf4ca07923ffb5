//! Revocation on the wire and its outcomes (security.md E1, E2).

use std::time::Duration;

use patchbay_oauth::{ErrorClass, MondayFlow, RevokeOutcome, TokenTypeHint};
use serde_json::json;

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
}

#[tokio::test]
async fn monday_legacy_has_no_revocation_and_sends_nothing() {
    let mock = Mock::start(|_| raw(200, &[], "")).await;
    let monday = mock.monday(MondayFlow::Legacy).with_revoke_url(Some(mock.url("/oauth_ms/oauth/revoke")));

    let outcome = client_for(&[&monday]).revoke(&monday, &secret("legacy"), None).await;

    assert_eq!(outcome.unwrap(), RevokeOutcome::NotSupported);
    assert!(mock.requests().is_empty());
}
