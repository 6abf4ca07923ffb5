//! Code exchange, refresh and migration on the wire: encodings, where the secret travels, and
//! what comes back.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chrono::{DateTime, Utc};
use patchbay_oauth::{ErrorClass, MondayFlow, OAuthError};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::support::{
    client_for, json, redirect_uri, secret, Mock, ACCESS_TOKEN, CLIENT_SECRET, CODE, REFRESH_TOKEN, VERIFIER,
};

fn jwt(exp: i64) -> String {
    format!("eyJhbGciOiJIUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(json!({ "exp": exp }).to_string()))
}

#[tokio::test]
async fn google_exchange_posts_a_form_with_the_secret_in_the_body_and_nothing_secret_in_the_url() {
    let mock = Mock::start(|_| {
        json(
            200,
            json!({"access_token": ACCESS_TOKEN, "refresh_token": REFRESH_TOKEN, "expires_in": 3599,
            "scope": "openid email https://www.googleapis.com/auth/calendar.readonly", "token_type": "Bearer"}),
        )
    })
    .await;
    let google = mock.google();
    let client = client_for(&[&google]);

    let before = Utc::now();
    let tokens =
        client.exchange_code(&google, &secret(CODE), Some(&secret(VERIFIER)), &redirect_uri("google")).await.unwrap();

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/token"));
    assert_eq!(sent.query, None, "nothing in the URL");
    assert_eq!(sent.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(sent.form_value("grant_type").as_deref(), Some("authorization_code"));
    assert_eq!(sent.form_value("client_id").as_deref(), Some("google-client-id"));
    assert_eq!(sent.form_value("client_secret").as_deref(), Some(CLIENT_SECRET));
    assert_eq!(sent.form_value("code").as_deref(), Some(CODE));
    assert_eq!(sent.form_value("code_verifier").as_deref(), Some(VERIFIER));
    assert_eq!(sent.form_value("redirect_uri").as_deref(), Some("https://patchbay.example/oauth/google/callback"));
    assert_eq!(sent.header("authorization"), None);

    assert_eq!(tokens.access_token.expose_secret(), ACCESS_TOKEN);
    assert_eq!(tokens.refresh_token.as_ref().unwrap().expose_secret(), REFRESH_TOKEN);
    let expires_at = tokens.expires_at.unwrap();
    assert!(
        expires_at >= before + chrono::TimeDelta::seconds(3599)
            && expires_at <= Utc::now() + chrono::TimeDelta::seconds(3599)
    );
    assert!(tokens.missing_scopes(&google.required_scopes).is_empty());
}

#[tokio::test]
async fn monday_v2_exchange_posts_json_and_reads_expiry_from_the_jwt() {
    let access = jwt(1_900_000_000);
    let answer = json!({"access_token": access, "refresh_token": REFRESH_TOKEN, "token_type": "Bearer",
        "scope": "me:read account:read boards:read webhooks:write"});
    let mock = Mock::start(move |_| json(200, answer.clone())).await;
    let monday = mock.monday(MondayFlow::V2);
    let client = client_for(&[&monday]);

    let tokens =
        client.exchange_code(&monday, &secret(CODE), Some(&secret(VERIFIER)), &redirect_uri("monday")).await.unwrap();

    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/oauth_ms/oauth/token");
    assert_eq!(sent.query, None);
    assert!(sent.header("content-type").unwrap().starts_with("application/json"));
    let body = sent.json();
    assert_eq!(body["grant_type"], "authorization_code");
    assert_eq!(body["client_id"], "monday-client-id");
    assert_eq!(body["client_secret"], CLIENT_SECRET);
    assert_eq!(body["code"], CODE);
    assert_eq!(body["code_verifier"], VERIFIER);
    assert_eq!(body["redirect_uri"], "https://patchbay.example/oauth/monday/callback");
    assert_eq!(tokens.expires_at, DateTime::from_timestamp(1_900_000_000, 0));
    assert!(tokens.missing_scopes(&monday.required_scopes).is_empty());
}

#[tokio::test]
async fn monday_legacy_exchange_posts_a_form_without_pkce_and_never_expires() {
    let mock = Mock::start(|_| {
        json(200, json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "scope": "me:read,boards:read"}))
    })
    .await;
    let monday = mock.monday(MondayFlow::Legacy);
    let client = client_for(&[&monday]);

    let tokens =
        client.exchange_code(&monday, &secret(CODE), Some(&secret(VERIFIER)), &redirect_uri("monday")).await.unwrap();

    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/oauth2/token");
    assert_eq!(sent.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(sent.form_value("client_secret").as_deref(), Some(CLIENT_SECRET));
    assert_eq!(sent.form_value("code_verifier"), None, "legacy has no PKCE");
    assert_eq!(tokens.expires_at, None);
    assert!(tokens.refresh_token.is_none());
    assert_eq!(tokens.scopes, ["me:read", "boards:read"]);
    assert_eq!(tokens.missing_scopes(&monday.required_scopes), ["account:read", "webhooks:write"]);
}

#[tokio::test]
async fn exchange_without_a_verifier_where_pkce_applies_sends_nothing() {
    let mock = Mock::start(|_| json(200, json!({}))).await;
    let google = mock.google();

    let error = client_for(&[&google]).exchange_code(&google, &secret(CODE), None, &redirect_uri("google")).await;

    assert!(matches!(error, Err(OAuthError::MissingVerifier { .. })));
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn google_refresh_without_a_new_refresh_token_returns_none_for_it() {
    let mock = Mock::start(|_| {
        json(
            200,
            json!({"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer",
            "scope": "openid email https://www.googleapis.com/auth/calendar.readonly"}),
        )
    })
    .await;
    let google = mock.google();

    let tokens = client_for(&[&google]).refresh(&google, &secret(REFRESH_TOKEN)).await.unwrap();

    assert!(tokens.refresh_token.is_none(), "keep the stored refresh token");
    let sent = &mock.requests()[0];
    assert_eq!(sent.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(sent.form_value("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(sent.form_value("refresh_token").as_deref(), Some(REFRESH_TOKEN));
    assert_eq!(sent.form_value("client_secret").as_deref(), Some(CLIENT_SECRET));
}

#[tokio::test]
async fn monday_v2_refresh_posts_json_and_returns_the_rotated_refresh_token() {
    let answer =
        json!({"access_token": jwt(1_900_000_000), "refresh_token": "rotated-refresh", "token_type": "Bearer"});
    let mock = Mock::start(move |_| json(200, answer.clone())).await;
    let monday = mock.monday(MondayFlow::V2);

    let tokens = client_for(&[&monday]).refresh(&monday, &secret(REFRESH_TOKEN)).await.unwrap();

    assert_eq!(tokens.refresh_token.unwrap().expose_secret(), "rotated-refresh");
    let body = mock.requests()[0].json();
    assert_eq!(body["grant_type"], "refresh_token");
    assert_eq!(body["refresh_token"], REFRESH_TOKEN);
}

#[tokio::test]
async fn refresh_answered_with_invalid_grant_is_terminal_after_one_request() {
    let mock = Mock::start(|_| {
        json(400, json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}))
    })
    .await;
    let google = mock.google();

    let error = client_for(&[&google]).refresh(&google, &secret(REFRESH_TOKEN)).await.unwrap_err();

    assert_eq!(error.class(), ErrorClass::Terminal);
    assert_eq!(error.reason(), "invalid_grant");
    assert_eq!(error.status(), Some(400));
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn token_answer_with_token_type_mac_is_refused() {
    let mock = Mock::start(|_| json(200, json!({"access_token": ACCESS_TOKEN, "token_type": "mac"}))).await;
    let google = mock.google();

    let error = client_for(&[&google]).refresh(&google, &secret(REFRESH_TOKEN)).await.unwrap_err();

    assert_eq!(error.reason(), "token_type_not_bearer");
}

#[tokio::test]
async fn monday_legacy_refresh_is_unsupported_and_sends_nothing() {
    let mock = Mock::start(|_| json(200, json!({}))).await;
    let monday = mock.monday(MondayFlow::Legacy);

    let error = client_for(&[&monday]).refresh(&monday, &secret(REFRESH_TOKEN)).await.unwrap_err();

    assert!(matches!(error, OAuthError::Unsupported { .. }));
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn legacy_token_migration_posts_json_and_returns_expiring_tokens() {
    let mock = Mock::start(|_| {
        json(
            200,
            json!({"access_token": ACCESS_TOKEN, "refresh_token": REFRESH_TOKEN, "token_type": "Bearer",
            "expires_in": 3600, "already_migrated": false, "migrated_from": {"api_token_id": 7}}),
        )
    })
    .await;
    let monday = mock.monday(MondayFlow::Legacy);

    let tokens = client_for(&[&monday]).migrate_legacy(&monday, &secret("legacy-token")).await.unwrap();

    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/oauth_ms/oauth/migrate");
    let body = sent.json();
    assert_eq!(body["api_token"], "legacy-token");
    assert_eq!(body["client_secret"], CLIENT_SECRET);
    assert!(tokens.expires_at.is_some());
    assert!(tokens.refresh_token.is_some());
}
