//! Who may call `/v1/me`: JWTs (HS256, RS256/ES256 via JWKS), API keys, and the refusals.

use crate::helpers::{sign, spawn, spawn_app, token, Db};
use axum::routing::get;
use base64::Engine;
use futures::StreamExt;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use patchbay_api::auth::api_key;
use patchbay_api::auth::{JwtError, JwtVerifier, JWKS_MAX_BYTES};
use patchbay_store::{ApiKeyScope, NewApiKey, TenantScope};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn me_status(app: &crate::helpers::TestApp, bearer: Option<&str>) -> (u16, Value) {
    let mut request = app.client.get(app.url("/v1/me"));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn unsigned(claims: Value) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims))
}

#[tokio::test]
async fn user_tokens_are_refused_unless_signed_current_and_for_this_issuer_and_audience() {
    let app = spawn(Db::Sqlite, &["--issuer", "https://idp.test", "--audience", "patchbay-api"], HashMap::new())
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let good = token("alice", json!({"aud": "patchbay-api"}));
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no credentials", None),
        ("not a JWT", Some("garbage".into())),
        (
            "bad signature",
            Some(sign("another-secret-0123456789abcdef0123456789", "alice", json!({"aud": "patchbay-api"}))),
        ),
        ("expired", Some(token("alice", json!({"aud": "patchbay-api", "exp": now - 3600})))),
        ("not yet valid", Some(token("alice", json!({"aud": "patchbay-api", "nbf": now + 3600})))),
        ("no exp", Some(token("alice", json!({"aud": "patchbay-api", "exp": null})))),
        (
            "alg none",
            Some(unsigned(json!({"sub": "alice", "iss": "https://idp.test", "aud": "patchbay-api", "exp": now + 600}))),
        ),
        ("wrong issuer", Some(token("alice", json!({"aud": "patchbay-api", "iss": "https://evil.test"})))),
        ("wrong audience", Some(token("alice", json!({"aud": "someone-else"})))),
        ("no sub", Some(token("alice", json!({"aud": "patchbay-api", "sub": null})))),
        (
            "HS384 is not on the allowlist",
            Some({
                let claims =
                    json!({"sub": "alice", "iss": "https://idp.test", "aud": "patchbay-api", "exp": now + 600});
                encode(
                    &Header::new(Algorithm::HS384),
                    &claims,
                    &EncodingKey::from_secret(crate::helpers::JWT_SECRET.as_bytes()),
                )
                .unwrap()
            }),
        ),
    ];
    for (what, bearer) in cases {
        let (status, body) = me_status(&app, bearer.as_deref()).await;
        assert_eq!(status, 401, "{what}: refused");
        assert_eq!(body["code"], "unauthorized", "{what}: problem code");
    }
    let (status, body) = me_status(&app, Some(&good)).await;
    assert_eq!(status, 200, "a good token is accepted: {body}");
    assert_eq!(body["role"], "user");
    let azp_only = token("alice", json!({"azp": "patchbay-api"}));
    assert_eq!(me_status(&app, Some(&azp_only)).await.0, 200, "`azp` stands in for a missing `aud`");
    app.stop().await;
}

#[tokio::test]
async fn claim_mode_requires_the_tenant_claim_and_keeps_org_and_user_tenants_apart() {
    let app = spawn(Db::Sqlite, &["--tenant-claim", "org_id"], HashMap::new()).await.unwrap();
    let (status, body) = me_status(&app, Some(&token("alice", json!({})))).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "no tenant claim: {body}");

    let (_, alice) = me_status(&app, Some(&token("alice", json!({"org_id": "acme"})))).await;
    let (_, bob) = me_status(&app, Some(&token("bob", json!({"org_id": "acme", "role": "admin"})))).await;
    let (_, carol) = me_status(&app, Some(&token("carol", json!({"org_id": "globex"})))).await;
    assert_eq!(alice["tenant_id"], bob["tenant_id"], "same org claim, same tenant");
    assert_ne!(alice["tenant_id"], carol["tenant_id"], "another org, another tenant");
    assert_eq!(bob["role"], "admin", "the role claim makes a tenant admin");
    assert_ne!(alice["user_id"], bob["user_id"]);
    let keys: Vec<String> = ["org:acme", "org:globex"].iter().map(|s| s.to_string()).collect();
    for key in keys {
        assert!(app.store.find_tenant(&key).await.unwrap().is_some(), "tenant {key} exists with its prefix");
    }
    app.stop().await;
}

#[tokio::test]
async fn per_user_tenant_keys_cannot_collide_with_org_keys() {
    let app = spawn_app().await;
    let (_, me) = me_status(&app, Some(&token("acme", json!({})))).await;
    let tenant = app.store.find_tenant("user:https://idp.test|acme").await.unwrap().expect("per-user tenant key");
    assert_eq!(me["tenant_id"], tenant.id.to_string());
    assert!(app.store.find_tenant("org:acme").await.unwrap().is_none(), "no org tenant was made");
    app.stop().await;
}

#[tokio::test]
async fn api_keys_work_until_revoked_or_expired() {
    let app = spawn_app().await;
    let tenant = app.store.upsert_tenant("org:acme").await.unwrap();
    let make = |expires_at| {
        let generated = api_key::generate();
        let new = NewApiKey {
            tenant_id: tenant.id,
            name: "ci".into(),
            prefix: generated.prefix.clone(),
            sha256: generated.sha256,
            scopes: vec![ApiKeyScope::Read],
            expires_at,
        };
        (generated.key.expose_secret().to_string(), new)
    };
    let (live, new) = make(None);
    let live_key = app.store.create_api_key(new).await.unwrap();
    let (status, body) = me_status(&app, Some(&live)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "api_key");
    assert_eq!(body["api_key"]["scopes"], json!(["read"]));
    assert_eq!(body["tenant_id"], tenant.id.to_string());

    let (expired, new) = make(Some(chrono::Utc::now() - chrono::Duration::minutes(1)));
    app.store.create_api_key(new).await.unwrap();
    assert_eq!(me_status(&app, Some(&expired)).await.0, 401, "an expired key is refused");

    app.store.revoke_api_key(TenantScope::new(tenant.id), live_key.id, chrono::Utc::now()).await.unwrap();
    assert_eq!(me_status(&app, Some(&live)).await.0, 401, "a revoked key is refused");
    let unknown = api_key::generate();
    assert_eq!(me_status(&app, Some(unknown.key.expose_secret())).await.0, 401, "an unknown key is refused");

    let used = app.store.get_api_key(TenantScope::new(tenant.id), live_key.id).await.unwrap();
    assert!(used.last_used_at.is_some(), "use of the key was recorded");
    app.stop().await;
}

#[tokio::test]
async fn me_names_the_caller_for_users_admins_claim_tenants_and_api_keys() {
    let app = spawn_app().await;
    let (status, alice) = me_status(&app, Some(&token("alice", json!({})))).await;
    assert_eq!(status, 200, "{alice}");
    assert_eq!(alice["role"], "user", "{alice}");
    assert_eq!(alice["user"], json!({"subject": "alice", "issuer": "https://idp.test"}), "who the token names");
    assert_eq!(alice["tenant_key"], "user:https://idp.test|alice", "per-user tenant key");
    let tenant = app.store.find_tenant("user:https://idp.test|alice").await.unwrap().unwrap();
    assert_eq!(alice["tenant_id"], tenant.id.to_string(), "the internal tenant id is still there");
    assert!(alice["user_id"].as_str().is_some_and(|id| !id.is_empty()), "the internal user id is still there");
    assert_eq!(alice["api_key"], Value::Null);

    let (_, root) = me_status(&app, Some(&token("root", json!({"role": "admin"})))).await;
    assert_eq!(root["role"], "admin", "the role claim makes an admin: {root}");
    assert_eq!(root["user"]["subject"], "root");
    assert_eq!(root["tenant_key"], "user:https://idp.test|root");

    let generated = api_key::generate();
    let key = app
        .store
        .create_api_key(NewApiKey {
            tenant_id: tenant.id,
            name: "deploy bot".into(),
            prefix: generated.prefix.clone(),
            sha256: generated.sha256,
            scopes: vec![ApiKeyScope::Read, ApiKeyScope::Connect],
            expires_at: None,
        })
        .await
        .unwrap();
    let (_, bot) = me_status(&app, Some(generated.key.expose_secret())).await;
    assert_eq!(bot["role"], "api_key", "{bot}");
    assert_eq!(bot["api_key"], json!({"id": key.id.to_string(), "name": "deploy bot", "scopes": ["read", "connect"]}));
    assert_eq!(bot["tenant_id"], tenant.id.to_string());
    assert_eq!((&bot["user"], &bot["user_id"]), (&Value::Null, &Value::Null), "a key is no user");

    let document = crate::helpers::json(app.get("/openapi.json").await).await;
    let schemas = &document["components"]["schemas"];
    for field in ["tenant_id", "tenant_key", "role", "user_id", "user", "api_key"] {
        assert!(schemas["MeOut"]["properties"].get(field).is_some(), "MeOut documents `{field}`: {}", schemas["MeOut"]);
    }
    for field in ["subject", "issuer"] {
        assert!(schemas["UserOut"]["properties"].get(field).is_some(), "UserOut documents `{field}`");
    }
    app.stop().await;

    let app = spawn(Db::Sqlite, &["--tenant-claim", "org_id"], HashMap::new()).await.unwrap();
    let (_, bob) = me_status(&app, Some(&token("bob", json!({"org_id": "acme"})))).await;
    assert_eq!(bob["tenant_key"], "org:acme", "claim-mode tenant key: {bob}");
    assert_eq!(bob["user"], json!({"subject": "bob", "issuer": "https://idp.test"}));
    assert_eq!(bob["role"], "user");
    app.stop().await;
}

/// A JWKS endpoint on loopback that counts its fetches and can be changed mid-test.
struct FakeIdp {
    url: String,
    fetches: Arc<AtomicUsize>,
    jwks: Arc<Mutex<Value>>,
}

async fn fake_idp(jwks: Value) -> FakeIdp {
    let fetches = Arc::new(AtomicUsize::new(0));
    let document = Arc::new(Mutex::new(jwks));
    let (f, d) = (fetches.clone(), document.clone());
    let router = axum::Router::new().route(
        "/jwks",
        get(move || {
            let (f, d) = (f.clone(), d.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                axum::Json(d.lock().unwrap().clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    FakeIdp { url, fetches, jwks: document }
}

fn jwks_fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/jwks.json")).unwrap()
}

fn asymmetric(alg: Algorithm, kid: &str, sub: &str) -> String {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(include_bytes!("fixtures/rsa-test-key.pem")).unwrap(),
        _ => EncodingKey::from_ec_pem(include_bytes!("fixtures/ec-test-key.pem")).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    let now = chrono::Utc::now().timestamp();
    encode(&header, &json!({"sub": sub, "iss": "https://idp.test", "aud": "patchbay-api", "exp": now + 600}), &key)
        .unwrap()
}

#[tokio::test]
async fn jwks_keys_are_fetched_once_refetched_for_a_new_kid_and_not_stormed() {
    let full = jwks_fixture();
    let only_rsa = json!({"keys": [full["keys"][0].clone()]});
    let idp = fake_idp(only_rsa).await;
    let app = spawn(
        Db::Sqlite,
        &["--jwks-url", &idp.url, "--issuer", "https://idp.test", "--audience", "patchbay-api"],
        HashMap::new(),
    )
    .await
    .unwrap();

    assert_eq!(me_status(&app, Some(&asymmetric(Algorithm::RS256, "rsa-1", "alice"))).await.0, 200, "RS256 accepted");
    assert_eq!(me_status(&app, Some(&asymmetric(Algorithm::RS256, "rsa-1", "bob"))).await.0, 200);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "keys are cached after the first fetch");

    // The IdP publishes a new (EC) key: a token naming it triggers exactly one refetch.
    *idp.jwks.lock().unwrap() = full;
    assert_eq!(me_status(&app, Some(&asymmetric(Algorithm::ES256, "ec-1", "carol"))).await.0, 200, "ES256 accepted");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2, "one fetch for the new kid");

    // A storm of made-up key ids: all refused, and at most one more fetch per minute (none
    // here, since the refetch above happened less than a minute ago).
    let storm = (0..50).map(|i| {
        let bearer = asymmetric(Algorithm::RS256, &format!("made-up-{i}"), "mallory");
        let app = &app;
        async move { me_status(app, Some(&bearer)).await.0 }
    });
    let statuses = futures::future::join_all(storm).await;
    assert!(statuses.iter().all(|s| *s == 401), "unknown kids are refused: {statuses:?}");
    assert!(idp.fetches.load(Ordering::SeqCst) <= 3, "at most one fetch per minute under a storm");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2, "no fetch within a minute of the last");

    // A key of one type presented with another algorithm is refused (no alg confusion).
    assert_eq!(me_status(&app, Some(&asymmetric(Algorithm::ES256, "rsa-1", "eve"))).await.0, 401);
    app.stop().await;
}

/// A verifier for `idp` whose JWKS cache ages by a clock the test moves (seconds past `base`).
fn verifier_with_clock(idp: &FakeIdp, max_age: &str) -> (JwtVerifier, Arc<AtomicU64>) {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--jwks-url",
        &idp.url,
        "--issuer",
        "https://idp.test",
        "--audience",
        "patchbay-api",
        "--jwks-max-age-seconds",
        max_age,
    ];
    let env = HashMap::from([("PATCHBAY_VAULT_KEYS".to_string(), crate::helpers::VAULT_KEYS.to_string())]);
    let settings = crate::helpers::settings(&args, &env).unwrap();
    let offset = Arc::new(AtomicU64::new(0));
    let (base, seconds) = (Instant::now(), offset.clone());
    let verifier = JwtVerifier::new(&settings.auth, reqwest::Client::new())
        .with_clock(move || base + Duration::from_secs(seconds.load(Ordering::SeqCst)));
    (verifier, offset)
}

#[tokio::test]
async fn jwks_key_withdrawn_by_the_idp_is_refused_once_the_max_age_has_passed() {
    let full = jwks_fixture();
    let idp = fake_idp(json!({"keys": [full["keys"][0].clone()]})).await;
    let (verifier, clock) = verifier_with_clock(&idp, "600");
    let token_a = asymmetric(Algorithm::RS256, "rsa-1", "alice");
    assert!(verifier.verify(&token_a).await.is_ok(), "key A is published: accepted");

    // The identity provider withdraws key A.
    *idp.jwks.lock().unwrap() = json!({"keys": [full["keys"][1].clone()]});
    clock.store(599, Ordering::SeqCst);
    assert!(verifier.verify(&token_a).await.is_ok(), "before the max age the cached key is still used");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "no refetch before the max age");

    clock.store(600, Ordering::SeqCst);
    let refused = verifier.verify(&token_a).await;
    assert!(matches!(refused, Err(JwtError::UnknownKid)), "after the max age key A is refused: {refused:?}");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2, "the max age forced one refetch");
    assert!(verifier.verify(&asymmetric(Algorithm::ES256, "ec-1", "bob")).await.is_ok(), "the new key works");
}

#[tokio::test]
async fn an_oversized_jwks_is_refused_and_the_cached_keys_stay() {
    let full = jwks_fixture();
    let idp = fake_idp(json!({"keys": [full["keys"][0].clone()]})).await;
    let (verifier, clock) = verifier_with_clock(&idp, "600");
    let token_a = asymmetric(Algorithm::RS256, "rsa-1", "alice");
    assert!(verifier.verify(&token_a).await.is_ok(), "key A is published: accepted");

    // A well-formed key set, but over the size limit.
    let padding = "x".repeat(JWKS_MAX_BYTES);
    *idp.jwks.lock().unwrap() = json!({"keys": full["keys"].clone(), "padding": padding});
    let refused = verifier.verify(&asymmetric(Algorithm::ES256, "ec-1", "bob")).await;
    assert!(matches!(refused, Err(JwtError::JwksUnavailable(_))), "the oversized JWKS is an error: {refused:?}");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2, "the unknown kid did refetch");
    assert!(verifier.verify(&token_a).await.is_ok(), "the keys cached before are still in place");

    clock.store(600, Ordering::SeqCst);
    let stale = verifier.verify(&token_a).await;
    assert!(matches!(stale, Err(JwtError::JwksUnavailable(_))), "past the max age, no stale key is used: {stale:?}");
}

#[tokio::test]
async fn an_endless_chunked_jwks_is_cut_off_at_the_limit_and_answers_503() {
    // No Content-Length: chunks of 64 KiB for as long as they are read (far over the limit in
    // total); the verifier must stop reading at the limit rather than buffer the body.
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let router = axum::Router::new().route(
        "/jwks",
        get(move || {
            let counter = counter.clone();
            async move {
                let chunks = futures::stream::iter(0..16_384).map(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])
                });
                axum::body::Body::from_stream(chunks)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let app = spawn(
        Db::Sqlite,
        &["--jwks-url", &url, "--issuer", "https://idp.test", "--audience", "patchbay-api"],
        HashMap::new(),
    )
    .await
    .unwrap();
    let (status, body) = me_status(&app, Some(&asymmetric(Algorithm::RS256, "rsa-1", "alice"))).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("unavailable")), "a problem, not a 500: {body}");
    let chunks = sent.load(Ordering::SeqCst);
    assert!(chunks < 1024, "reading stopped near the limit, not after the whole 1 GiB ({chunks} chunks produced)");
    app.stop().await;
}

#[tokio::test]
async fn cors_answers_only_the_configured_origin() {
    let app = spawn(Db::Sqlite, &["--cors-origins", "https://app.example"], HashMap::new()).await.unwrap();
    for (origin, allowed) in
        [("https://app.example", true), ("https://evil.example", false), ("https://app.example.evil.example", false)]
    {
        let response = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/v1/me"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
            .await
            .unwrap();
        let acao = response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string());
        if allowed {
            assert_eq!(acao.as_deref(), Some(origin), "{origin} is allowed exactly");
        } else {
            assert_eq!(acao, None, "{origin} gets no CORS grant");
        }
    }
    let simple = app.client.get(app.url("/healthz")).header("origin", "https://evil.example").send().await.unwrap();
    assert!(simple.headers().get("access-control-allow-origin").is_none(), "no grant on simple requests either");
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_over_its_own_limit_gets_429_without_affecting_others() {
    let app =
        spawn(Db::Sqlite, &["--principal-per-second", "0.01", "--principal-burst", "3"], HashMap::new()).await.unwrap();
    let bearer = token("alice", json!({}));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(me_status(&app, Some(&bearer)).await.0);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429], "the tenant's burst is 3");
    assert_eq!(me_status(&app, Some(&token("bob", json!({})))).await.0, 200, "another tenant is not affected");
    app.stop().await;
}
