//! Tenants are walls over HTTP: another tenant's ids answer 404; end users see their own
//! connections; admins and API keys see the tenant's.

use crate::helpers::{json, spawn, token, Db, TestApp};
use patchbay_api::auth::api_key;
use patchbay_store::{ApiKeyScope, ConnectionStatus, NewApiKey, NewConnection, TenantId, UserId};
use secrecy::ExposeSecret;
use serde_json::json;
use std::collections::HashMap;

async fn whoami(app: &TestApp, bearer: &str) -> (TenantId, Option<UserId>) {
    let me = json(app.get_as("/v1/me", bearer).await).await;
    let tenant = me["tenant_id"].as_str().unwrap().parse().unwrap();
    let user = me["user_id"].as_str().map(|u| u.parse().unwrap());
    (tenant, user)
}

async fn key_for(app: &TestApp, tenant: TenantId, scopes: Vec<ApiKeyScope>) -> String {
    let generated = api_key::generate();
    let new = NewApiKey {
        tenant_id: tenant,
        name: "test".into(),
        prefix: generated.prefix,
        sha256: generated.sha256,
        scopes,
        expires_at: None,
    };
    app.store.create_api_key(new).await.unwrap();
    generated.key.expose_secret().to_string()
}

/// An active connection with no account details or scopes.
fn bare_connection(tenant_id: TenantId, user_id: UserId, provider: &str, account: &str) -> NewConnection {
    let provider = provider.parse().expect("a known provider");
    NewConnection {
        tenant_id,
        user_id,
        provider,
        provider_account_id: account.into(),
        provider_user_id: None,
        account_name: None,
        account_email: None,
        scopes: vec![],
        status: ConnectionStatus::Active,
        status_reason: None,
    }
}

async fn tenants_are_walls(db: Db) {
    let Some(app) = spawn(db, &["--tenant-claim", "org"], HashMap::new()).await else { return };
    let alice = token("alice", json!({"org": "acme"}));
    let amir = token("amir", json!({"org": "acme"}));
    let admin = token("ada", json!({"org": "acme", "role": "admin"}));
    let bob = token("bob", json!({"org": "globex"}));
    let (acme, alice_id) = whoami(&app, &alice).await;
    let (globex, _) = whoami(&app, &bob).await;
    let connection = app
        .store
        .create_connection(NewConnection {
            tenant_id: acme,
            user_id: alice_id.unwrap(),
            provider: patchbay_store::ProviderId::Google,
            provider_account_id: "google-sub-1".into(),
            provider_user_id: None,
            account_name: Some("Alice".into()),
            account_email: Some("alice@acme.example".into()),
            scopes: vec!["openid".into()],
            status: ConnectionStatus::Active,
            status_reason: None,
        })
        .await
        .unwrap();
    let acme_reader = key_for(&app, acme, vec![ApiKeyScope::Read]).await;
    let globex_reader = key_for(&app, globex, vec![ApiKeyScope::Read]).await;
    let acme_connector = key_for(&app, acme, vec![ApiKeyScope::Connect]).await;

    let one = format!("/v1/connections/{}", connection.id);
    let cases: Vec<(&str, &str, &str, u16, Option<usize>)> = vec![
        ("owner reads it", &alice, &one, 200, None),
        ("a tenant admin reads it", &admin, &one, 200, None),
        ("a read key of the tenant reads it", &acme_reader, &one, 200, None),
        ("another user of the tenant gets 404", &amir, &one, 404, None),
        ("a user of another tenant gets 404", &bob, &one, 404, None),
        ("a key of another tenant gets 404", &globex_reader, &one, 404, None),
        ("a key without the read scope gets 403", &acme_connector, &one, 403, None),
        ("owner lists one", &alice, "/v1/connections", 200, Some(1)),
        ("another user lists none", &amir, "/v1/connections", 200, Some(0)),
        ("admin lists the tenant's", &admin, "/v1/connections", 200, Some(1)),
        ("another tenant lists none", &bob, "/v1/connections", 200, Some(0)),
        ("another tenant's key lists none", &globex_reader, "/v1/connections", 200, Some(0)),
        ("a member cannot read the audit log", &alice, "/v1/audit-events", 403, None),
        ("an admin reads the audit log", &admin, "/v1/audit-events", 200, None),
        ("a read key cannot read the audit log", &acme_reader, "/v1/audit-events", 403, None),
    ];
    for (what, bearer, path, status, count) in cases {
        let response = app.get_as(path, bearer).await;
        assert_eq!(response.status().as_u16(), status, "{what}");
        let body = json(response).await;
        if let Some(count) = count {
            assert_eq!(body["data"].as_array().unwrap().len(), count, "{what}");
            assert!(body.get("next_cursor").is_some(), "{what}: lists carry next_cursor");
        }
        assert!(!body.to_string().contains("token"), "{what}: no token-like field in {body}");
    }
    app.stop().await;
}
crate::both_stores!(another_tenants_ids_answer_404_on_every_route, tenants_are_walls);

async fn pagination_is_keyset_and_clamped(db: Db) {
    let Some(app) = spawn(db, &[], HashMap::new()).await else { return };
    let alice = token("alice", json!({}));
    let (tenant, user) = whoami(&app, &alice).await;
    for i in 0..5 {
        app.store
            .create_connection(bare_connection(tenant, user.unwrap(), "monday", &format!("acct-{i}")))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut path = "/v1/connections?limit=2".to_string();
    loop {
        let body = json(app.get_as(&path, &alice).await).await;
        for item in body["data"].as_array().unwrap() {
            seen.push(item["provider_account_id"].as_str().unwrap().to_string());
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/connections?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, (0..5).map(|i| format!("acct-{i}")).collect::<Vec<_>>(), "every row once, in creation order");
    let clamped = json(app.get_as("/v1/connections?limit=100000", &alice).await).await;
    assert_eq!(clamped["data"].as_array().unwrap().len(), 5, "a huge limit is clamped, not refused");
    app.stop().await;
}
crate::both_stores!(lists_page_by_cursor_and_clamp_the_limit, pagination_is_keyset_and_clamped);

#[tokio::test]
async fn audit_records_carry_the_full_client_address_behind_a_trusted_proxy() {
    let app = spawn(Db::Sqlite, &["--tenant-claim", "org", "--trusted-proxies", "127.0.0.1/32"], HashMap::new())
        .await
        .unwrap();
    let admin = token("ada", json!({"org": "acme", "role": "admin"}));
    let (acme, ada) = whoami(&app, &admin).await;
    let connection =
        app.store.create_connection(bare_connection(acme, ada.unwrap(), "google", "google-sub-audit")).await.unwrap();
    let response = app
        .client
        .delete(app.url(&format!("/v1/connections/{}", connection.id)))
        .bearer_auth(&admin)
        .header("x-forwarded-for", "198.51.100.1, [2001:db8:aa:bb:1:2:3:4]:443")
        .header("x-request-id", "audit-ip-test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let log = json(app.get_as("/v1/audit-events", &admin).await).await;
    let event = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "connection.disconnect")
        .unwrap_or_else(|| panic!("a disconnect record in {log}"));
    assert_eq!(event["ip"], "2001:db8:aa:bb:1:2:3:4", "the full client address, not its /64 rate-limit key");
    assert_eq!(event["request_id"], "audit-ip-test", "the request id is recorded too");
    app.stop().await;
}
