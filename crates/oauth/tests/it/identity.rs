//! Identity lookups: Google userinfo and monday.com `me`.

use patchbay_oauth::{AccountIdentity, ErrorClass, MondayFlow, MONDAY_DEFAULT_API_VERSION, MONDAY_IDENTITY_QUERY};
use serde_json::json;

use crate::support::{client_for, json, secret, Mock, ACCESS_TOKEN};

#[tokio::test]
async fn google_identity_is_the_userinfo_sub_fetched_with_a_bearer_token() {
    let mock = Mock::start(|_| {
        json(200, json!({"sub": "1098765", "email": "ada@example.com", "email_verified": true, "name": "Ada"}))
    })
    .await;
    let google = mock.google();

    let identity = client_for(&[&google]).identity(&google, &secret(ACCESS_TOKEN)).await.unwrap();

    assert_eq!(
        identity,
        AccountIdentity {
            account_id: "1098765".into(),
            user_id: None,
            name: Some("Ada".into()),
            email: Some("ada@example.com".into()),
        }
    );
    let sent = &mock.requests()[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str(), sent.query.as_deref()), ("GET", "/v1/userinfo", None));
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {ACCESS_TOKEN}").as_str()));
}

#[tokio::test]
async fn monday_identity_posts_the_me_query_with_the_raw_token_and_api_version() {
    let mock = Mock::start(|_| {
        json(
            200,
            json!({"data": {"me": {"id": 4012, "name": "Grace", "email": "grace@example.com",
            "account": {"id": "991", "name": "Acme", "slug": "acme"}}}, "account_id": 991}),
        )
    })
    .await;
    let monday = mock.monday(MondayFlow::V2);

    let identity = client_for(&[&monday]).identity(&monday, &secret(ACCESS_TOKEN)).await.unwrap();

    assert_eq!(identity.account_id, "991");
    assert_eq!(identity.user_id.as_deref(), Some("4012"), "numeric ids become strings");
    assert_eq!(identity.email.as_deref(), Some("grace@example.com"));
    let sent = &mock.requests()[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v2"));
    assert_eq!(sent.header("authorization"), Some(ACCESS_TOKEN));
    assert_eq!(sent.header("api-version"), Some(MONDAY_DEFAULT_API_VERSION));
    assert_eq!(sent.json()["query"], MONDAY_IDENTITY_QUERY);
}

#[tokio::test]
async fn monday_graphql_error_with_http_200_is_classified() {
    let mock = Mock::start(|_| {
        json(
            200,
            json!({"errors": [{"message": "Missing required permissions: me:read",
            "extensions": {"code": "missingRequiredPermissions"}}], "account_id": 991}),
        )
    })
    .await;
    let monday = mock.monday(MondayFlow::V2);

    let error = client_for(&[&monday]).identity(&monday, &secret(ACCESS_TOKEN)).await.unwrap_err();

    assert_eq!(error.class(), ErrorClass::Permission);
    assert_eq!(error.reason(), "missingRequiredPermissions");
    assert_eq!(error.status(), Some(200));
}

#[tokio::test]
async fn monday_legacy_token_answered_401_is_revoked() {
    let mock = Mock::start(|_| json(401, json!({"errors": [{"message": "Not Authenticated"}]}))).await;
    let monday = mock.monday(MondayFlow::Legacy);

    let error = client_for(&[&monday]).identity(&monday, &secret(ACCESS_TOKEN)).await.unwrap_err();

    assert_eq!(error.class(), ErrorClass::Revoked);
}

#[tokio::test]
async fn google_userinfo_without_sub_is_an_invalid_response() {
    let mock = Mock::start(|_| json(200, json!({"email": "x@example.com"}))).await;
    let google = mock.google();

    let error = client_for(&[&google]).identity(&google, &secret(ACCESS_TOKEN)).await.unwrap_err();

    assert_eq!(error.reason(), "missing_sub");
}
