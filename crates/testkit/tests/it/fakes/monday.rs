//! Fake monday.com: authorize, the legacy and new token flows, rotation with reuse detection,
//! revoke, migrate, discovery and the identity query.

use super::{http, jwt_claims, location, param, params, pkce, request_id, unix_now};
use patchbay_testkit::fakes::{
    FakeMonday, IssMode, RevokeBehaviour, TokenKind, OVERSIZED_REVOKE_BYTES, REVOKE_REDIRECT_PATH,
};
use serde_json::{json, Value};
use url::Url;

const CLIENT: &str = "monday-client";
const SECRET: &str = "monday-secret";
const REDIRECT: &str = "https://app.example/oauth/monday/callback";
const OTHER_REDIRECT: &str = "https://app.example/other/callback";
const SCOPES: &str = "me:read account:read boards:read webhooks:write";

async fn fake() -> FakeMonday {
    let monday = FakeMonday::start().await;
    monday.register_client(CLIENT, SECRET, &[REDIRECT, OTHER_REDIRECT], &SCOPES.split(' ').collect::<Vec<_>>());
    monday.add_account(77, "acme", "Acme Inc");
    monday.add_user(501, 77, "Ada Lovelace", "ada@acme.example");
    monday
}

fn authorize_url(monday: &FakeMonday, extra: &[(&str, &str)]) -> Url {
    let mut url = monday.auth_url();
    let mut pairs = vec![("client_id", CLIENT), ("redirect_uri", REDIRECT), ("scope", SCOPES), ("state", "st-9")];
    for (name, value) in extra {
        pairs.retain(|(n, _)| n != name);
        pairs.push((name, value));
    }
    url.query_pairs_mut().extend_pairs(pairs);
    url
}

/// A code from a headless approval, with the PKCE verifier used (S256).
fn code_with_pkce(monday: &FakeMonday) -> (String, String) {
    let (verifier, challenge) = pkce();
    let url = authorize_url(monday, &[("code_challenge", &challenge), ("code_challenge_method", "S256")]);
    let callback = monday.authorize_headless(&url, "501");
    (param(&callback, "code").expect("a code"), verifier)
}

async fn post_json(url: Url, body: Value) -> (u16, Value) {
    let response = http().post(url).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn v2_tokens(monday: &FakeMonday) -> Value {
    let (code, verifier) = code_with_pkce(monday);
    let body = json!({"grant_type": "authorization_code", "client_id": CLIENT, "client_secret": SECRET,
        "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier});
    let (status, tokens) = post_json(monday.token_url(), body).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

async fn refresh(monday: &FakeMonday, refresh_token: &str) -> (u16, Value) {
    let body = json!({"grant_type": "refresh_token", "client_id": CLIENT, "client_secret": SECRET,
        "refresh_token": refresh_token});
    post_json(monday.token_url(), body).await
}

async fn me(monday: &FakeMonday, authorization: &str) -> reqwest::Response {
    let query = json!({"query": "query { me { id name email account { id name slug } } }"});
    let request = http().post(monday.api_url()).header("Authorization", authorization).header("API-Version", "2026-07");
    request.json(&query).send().await.unwrap()
}

#[tokio::test]
async fn fakes_monday_legacy_exchange_returns_a_permanent_token_only() {
    let monday = fake().await;
    let code = param(&monday.authorize_headless(&authorize_url(&monday, &[]), "501"), "code").unwrap();
    let form = |code: &str, redirect: &str| {
        [("client_id", CLIENT), ("client_secret", SECRET), ("code", code), ("redirect_uri", redirect)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, v.to_owned()))
            .collect::<Vec<_>>()
    };

    let response = http().post(monday.legacy_token_url()).form(&form(&code, REDIRECT)).send().await.unwrap();
    let reused = http().post(monday.legacy_token_url()).form(&form(&code, REDIRECT)).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let mut keys: Vec<&str> = tokens.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "scope", "token_type"]);
    assert_eq!((tokens["token_type"].as_str(), tokens["scope"].as_str()), (Some("Bearer"), Some(SCOPES)));
    assert_eq!(reused.status(), 400);
    let fresh = param(&monday.authorize_headless(&authorize_url(&monday, &[]), "501"), "code").unwrap();
    let no_redirect = http().post(monday.legacy_token_url()).form(&form(&fresh, "")).send().await.unwrap();
    assert_eq!(no_redirect.json::<Value>().await.unwrap()["error"], "invalid_grant", "redirect_uri omitted");
    assert_eq!(me(&monday, tokens["access_token"].as_str().unwrap()).await.status(), 200);
}

#[tokio::test]
async fn fakes_monday_v2_exchange_returns_a_jwt_with_the_configured_exp_and_checks_pkce() {
    let monday = fake().await;
    monday.set_access_token_lifetime(30);

    let tokens = v2_tokens(&monday).await;
    let (code, _) = code_with_pkce(&monday);
    let wrong = json!({"grant_type": "authorization_code", "client_id": CLIENT, "client_secret": SECRET,
        "code": code, "redirect_uri": REDIRECT, "code_verifier": "a-verifier-that-is-not-the-right-one-at-all-000"});
    let (status, rejected) = post_json(monday.token_url(), wrong).await;

    assert!(tokens.get("expires_in").is_none() && tokens["refresh_token"].is_string(), "{tokens}");
    let exp = jwt_claims(tokens["access_token"].as_str().unwrap())["exp"].as_u64().unwrap();
    assert!(exp.abs_diff(unix_now() + 30) <= 5, "exp {exp} is not now + 30 s");
    assert_eq!((status, rejected["error"].as_str()), (400, Some("invalid_grant")));
    monday.advance_clock(std::time::Duration::from_secs(31));
    assert_eq!(me(&monday, tokens["access_token"].as_str().unwrap()).await.status(), 401, "expired JWT");
}

#[tokio::test]
async fn fakes_monday_refresh_rotates_and_reuse_kills_the_grant() {
    let monday = fake().await;
    let first = v2_tokens(&monday).await["refresh_token"].as_str().unwrap().to_owned();

    let (s1, second) = refresh(&monday, &first).await;
    let second = second["refresh_token"].as_str().unwrap().to_owned();
    let (s2, third) = refresh(&monday, &second).await;
    let third = third["refresh_token"].as_str().unwrap().to_owned();
    let (reuse_status, reuse) = refresh(&monday, &first).await;
    let (newest_status, _) = refresh(&monday, &third).await;

    assert_eq!((s1, s2), (200, 200));
    assert!(first != second && second != third);
    assert_eq!((reuse_status, reuse["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(newest_status, 400, "reuse detection kills the newest refresh token too");
    assert_eq!(monday.refresh_calls(), 4);
    assert_eq!(monday.presented_refresh_tokens(), [first.clone(), second, first, third]);
}

#[tokio::test]
async fn fakes_monday_revoke_ends_the_grant() {
    let monday = fake().await;
    let tokens = v2_tokens(&monday).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(me(&monday, &format!("Bearer {access}")).await.status(), 200);

    let body =
        json!({"token": access, "client_id": CLIENT, "client_secret": SECRET, "token_type_hint": "access_token"});
    let revoked = post_json(monday.revoke_url(), body).await;

    assert_eq!(revoked, (200, json!({"success": true})));
    assert_eq!(me(&monday, access).await.status(), 401);
    assert_eq!(refresh(&monday, tokens["refresh_token"].as_str().unwrap()).await.0, 400);
    assert_eq!(monday.revoked_tokens(), [access]);
}

#[tokio::test]
async fn fakes_monday_migrate_is_idempotent_per_legacy_token() {
    let monday = fake().await;
    let legacy = monday.issue_legacy_token(CLIENT, 501, &["me:read", "boards:read"]);
    let body = json!({"api_token": legacy, "client_id": CLIENT, "client_secret": SECRET});

    let (s1, first) = post_json(monday.migrate_url(), body.clone()).await;
    let (s2, second) = post_json(monday.migrate_url(), body.clone()).await;
    let unknown =
        post_json(monday.migrate_url(), json!({"api_token": "nope", "client_id": CLIENT, "client_secret": SECRET}))
            .await;
    monday.throttle_migrate(true);
    let throttled = post_json(monday.migrate_url(), body).await;

    assert_eq!((s1, s2), (200, 200));
    assert_eq!((first["already_migrated"].as_bool(), second["already_migrated"].as_bool()), (Some(false), Some(true)));
    assert_eq!((first["expires_in"].as_u64(), first["token_type"].as_str()), (Some(3600), Some("Bearer")));
    assert_eq!(first["refresh_token"], second["refresh_token"], "same grant");
    assert_eq!(first["migrated_from"]["api_token_id"], second["migrated_from"]["api_token_id"]);
    assert_eq!((unknown.0, unknown.1["error"].as_str()), (401, Some("invalid_token")));
    assert_eq!((throttled.0, throttled.1["error"].as_str()), (429, Some("too_many_requests")));
    assert_eq!(refresh(&monday, first["refresh_token"].as_str().unwrap()).await.0, 200);
}

#[tokio::test]
async fn fakes_monday_me_query_returns_identity_and_uninstall_makes_tokens_401() {
    let monday = fake().await;
    let access = v2_tokens(&monday).await["access_token"].as_str().unwrap().to_owned();

    let response = me(&monday, &access).await;
    assert_eq!(response.headers()["api-version"], "2026-07");
    let body: Value = response.json().await.unwrap();
    monday.uninstall(77);
    let after = me(&monday, &access).await;
    let blocked = monday.authorize_headless(&authorize_url(&monday, &[]), "501");

    let expected = json!({"id": "501", "name": "Ada Lovelace", "email": "ada@acme.example",
        "account": {"id": "77", "name": "Acme Inc", "slug": "acme"}});
    assert_eq!(body["data"]["me"], expected);
    assert_eq!(body["account_id"], 77);
    assert!(body["extensions"]["request_id"].is_string());
    assert_eq!(after.status(), 401);
    assert_eq!(after.json::<Value>().await.unwrap()["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(param(&blocked, "error").as_deref(), Some("unauthorized_client"));
}

#[tokio::test]
async fn fakes_monday_authorize_refuses_bad_requests_the_documented_way() {
    let monday = fake().await;
    let no_redirect = http().get(authorize_url(&monday, &[("redirect_uri", "")])).send().await.unwrap();
    let unregistered =
        http().get(authorize_url(&monday, &[("redirect_uri", "https://evil.example/cb")])).send().await.unwrap();
    let plain = monday.authorize_headless(
        &authorize_url(&monday, &[("code_challenge", &"a".repeat(43)), ("code_challenge_method", "plain")]),
        "501",
    );
    let bad_scope = monday.authorize_headless(&authorize_url(&monday, &[("scope", "me:read docs:write")]), "501");

    assert_eq!(
        (no_redirect.status().as_u16(), no_redirect.headers().get("location")),
        (400, None),
        "two URIs registered"
    );
    assert_eq!((unregistered.status().as_u16(), unregistered.headers().get("location")), (400, None));
    assert_eq!(param(&plain, "error").as_deref(), Some("invalid_request"));
    assert_eq!(param(&bad_scope, "error").as_deref(), Some("invalid_scope"));
    assert_eq!(param(&bad_scope, "state").as_deref(), Some("st-9"));
    assert_eq!(monday.authorize_requests()[2].param("code_challenge_method"), Some("plain"));
}

#[tokio::test]
async fn fakes_monday_consent_page_deny_echoes_state_and_iss_is_switchable() {
    let monday = fake().await;
    monday.set_iss(IssMode::Correct);
    let page = http().get(authorize_url(&monday, &[("user", "501")])).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"approve\"") && html.contains("id=\"deny\""), "{html}");
    let form = [("request_id", request_id(&html))];

    let denied = http().post(monday.base_url().join("oauth2/deny").unwrap()).form(&form).send().await.unwrap();
    let approved = monday.authorize_headless(&authorize_url(&monday, &[]), "ada@acme.example");

    let callback = location(&denied);
    assert_eq!(denied.status(), 303);
    assert_eq!(
        (param(&callback, "error").as_deref(), param(&callback, "state").as_deref()),
        (Some("access_denied"), Some("st-9"))
    );
    assert_eq!(param(&approved, "iss").as_deref(), Some("https://auth.monday.com"));
    assert!(param(&approved, "code").is_some());
}

#[tokio::test]
async fn fakes_monday_discovery_points_at_the_fake() {
    let monday = fake().await;

    let metadata: Value = http().get(monday.metadata_url()).send().await.unwrap().json().await.unwrap();

    assert_eq!(metadata["issuer"], "https://auth.monday.com");
    assert_eq!(metadata["token_endpoint"], monday.token_url().as_str());
    assert_eq!(metadata["revocation_endpoint"], monday.revoke_url().as_str());
    assert_eq!(metadata["authorization_endpoint"], monday.auth_url().as_str());
    assert_eq!(metadata["code_challenge_methods_supported"], json!(["S256"]));
}

/// The `iss` values of a redirect for every mode, on a code redirect and on both kinds of error
/// redirect (Deny, and a refused parameter).
#[tokio::test]
async fn fakes_monday_every_iss_mode_applies_to_code_and_error_redirects() {
    let monday = fake().await;
    let issuer = monday.issuer();
    let default_mode = monday.authorize_headless(&authorize_url(&monday, &[]), "501");
    assert!(params(&default_mode, "iss").is_empty(), "monday sends no iss by default");
    let cases = [
        (IssMode::Correct, vec![issuer.clone()]),
        (IssMode::Missing, vec![]),
        (IssMode::Wrong("https://evil.example".into()), vec!["https://evil.example".to_owned()]),
        (IssMode::Duplicated, vec![issuer.clone(), issuer.clone()]),
    ];

    for (mode, expected) in cases {
        monday.set_iss(mode.clone());
        monday.set_access_denied(false);
        let approved = monday.authorize_headless(&authorize_url(&monday, &[]), "501");
        let bad_scope = monday.authorize_headless(&authorize_url(&monday, &[("scope", "docs:write")]), "501");
        monday.set_access_denied(true);
        let denied = monday.authorize_headless(&authorize_url(&monday, &[]), "501");

        assert!(param(&approved, "code").is_some(), "{mode:?}");
        assert_eq!(params(&approved, "iss"), expected, "{mode:?} on a code redirect");
        assert_eq!(param(&bad_scope, "error").as_deref(), Some("invalid_scope"));
        assert_eq!(params(&bad_scope, "iss"), expected, "{mode:?} on a refused-parameter redirect");
        assert_eq!(param(&denied, "error").as_deref(), Some("access_denied"));
        assert_eq!(params(&denied, "iss"), expected, "{mode:?} on a denial");
    }
}

#[tokio::test]
async fn fakes_monday_revoke_behaviours_answer_as_switched_and_revoke_nothing() {
    let monday = fake().await;
    let tokens = v2_tokens(&monday).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let body = json!({"token": refresh_token, "client_id": CLIENT, "client_secret": SECRET,
        "token_type_hint": "refresh_token"});
    let revoke = || http().post(monday.revoke_url()).json(&body).send();

    monday.set_revoke_behaviour(RevokeBehaviour::Status(429));
    let limited = revoke().await.unwrap();
    monday.set_revoke_behaviour(RevokeBehaviour::Status(500));
    let failed = revoke().await.unwrap();
    monday.set_revoke_behaviour(RevokeBehaviour::SuccessFalse);
    let success_false = revoke().await.unwrap();
    monday.set_revoke_behaviour(RevokeBehaviour::Redirect);
    let redirect = revoke().await.unwrap();
    monday.set_revoke_behaviour(RevokeBehaviour::Oversized);
    let oversized = revoke().await.unwrap();

    assert_eq!(limited.status(), 429);
    assert_eq!(failed.status(), 500);
    assert_eq!(failed.json::<Value>().await.unwrap()["error"], "server_error");
    assert_eq!(success_false.status(), 200);
    assert_eq!(success_false.json::<Value>().await.unwrap(), json!({"success": false}));
    assert_eq!(
        (redirect.status().as_u16(), redirect.headers()["location"].to_str().unwrap()),
        (307, REVOKE_REDIRECT_PATH)
    );
    assert_eq!(oversized.bytes().await.unwrap().len(), OVERSIZED_REVOKE_BYTES);
    assert!(monday.token_alive(refresh_token), "a misbehaving endpoint revokes nothing");
    assert_eq!(refresh(&monday, refresh_token).await.0, 200, "the grant is alive");
    let revocations = monday.revocations();
    assert_eq!(revocations.len(), 5, "every call is recorded");
    assert!(revocations.iter().all(|r| r.token == refresh_token && r.kind == TokenKind::Refresh && !r.effective));
    assert_eq!(revocations[0].hint.as_deref(), Some("refresh_token"));
    assert_eq!(monday.revoked_tokens().len(), 5);
}

/// A refresh held at the fake; after release monday rotates as usual, and the old and the rotated
/// refresh token can both be revoked and observed as revoked.
#[tokio::test]
async fn fakes_monday_a_held_refresh_rotates_after_release_and_both_tokens_can_be_revoked() {
    let monday = fake().await;
    let old = v2_tokens(&monday).await["refresh_token"].as_str().unwrap().to_owned();

    let gate = monday.hold_refreshes();
    let held = tokio::spawn({
        let (monday, old) = (monday.clone(), old.clone());
        async move { refresh(&monday, &old).await }
    });
    gate.arrived().await;
    assert!(!held.is_finished(), "held at the fake");
    assert_eq!((gate.arrivals(), monday.refresh_calls()), (1, 0));
    assert!(monday.token_alive(&old), "not rotated while held");
    gate.release();
    let (status, body) = held.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let rotated = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(!monday.token_alive(&old) && monday.token_alive(&rotated), "rotation: the old one died");

    for token in [&old, &rotated] {
        let revoke = json!({"token": token, "client_id": CLIENT, "client_secret": SECRET});
        assert_eq!(post_json(monday.revoke_url(), revoke).await, (200, json!({"success": true})));
    }

    let revocations = monday.revocations();
    let revoked: Vec<(&str, TokenKind)> = revocations.iter().map(|r| (r.token.as_str(), r.kind)).collect();
    assert_eq!(revoked, [(old.as_str(), TokenKind::Refresh), (rotated.as_str(), TokenKind::Refresh)]);
    assert!(revocations[0].effective, "revoking the rotated-out token still ended the live grant");
    assert!(!monday.token_alive(&rotated));
    assert_eq!(refresh(&monday, &rotated).await.1["error"], "invalid_grant");
}

#[tokio::test]
async fn fakes_monday_several_held_refreshes_are_all_released_and_reuse_detection_still_applies() {
    let monday = fake().await;
    let old = v2_tokens(&monday).await["refresh_token"].as_str().unwrap().to_owned();

    let gate = monday.hold_refreshes();
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let (monday, old) = (monday.clone(), old.clone());
            tokio::spawn(async move { refresh(&monday, &old).await })
        })
        .collect();
    gate.arrived_at_least(2).await;
    drop(gate);
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap().0);
    }
    statuses.sort_unstable();

    assert_eq!(statuses, [200, 400], "the second use of the same refresh token is reuse");
    assert_eq!(monday.presented_refresh_tokens(), [old.clone(), old]);
    assert!(monday.issued_tokens().iter().all(|t| !monday.token_alive(t)), "reuse killed the whole grant");
}

/// Two Patchbay tenants connect the same monday user. Each authorization is its own grant in
/// the fake (monday's sharing semantics are UNCONFIRMED): both get working tokens, and revoking
/// one tenant's token leaves the other's working. Uninstalling the app ends both.
#[tokio::test]
async fn fakes_monday_two_tenants_authorizing_one_user_each_get_working_tokens() {
    let monday = fake().await;

    let tenant_a = v2_tokens(&monday).await;
    let tenant_b = v2_tokens(&monday).await;

    let access = |t: &Value| t["access_token"].as_str().unwrap().to_owned();
    for tokens in [&tenant_a, &tenant_b] {
        let me: Value = me(&monday, &access(tokens)).await.json().await.unwrap();
        assert_eq!((me["data"]["me"]["id"].as_str(), me["account_id"].as_u64()), (Some("501"), Some(77)));
    }
    assert_ne!(tenant_a["refresh_token"], tenant_b["refresh_token"]);
    let revoke = json!({"token": access(&tenant_a), "client_id": CLIENT, "client_secret": SECRET});
    assert_eq!(post_json(monday.revoke_url(), revoke).await.0, 200);
    assert_eq!(me(&monday, &access(&tenant_a)).await.status(), 401);
    assert_eq!(me(&monday, &access(&tenant_b)).await.status(), 200, "tenant B's grant is its own");
    let (status, refreshed) = refresh(&monday, tenant_b["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{refreshed}");

    monday.uninstall(77);
    assert_eq!(me(&monday, refreshed["access_token"].as_str().unwrap()).await.status(), 401);
}
