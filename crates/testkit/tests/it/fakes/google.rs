//! Fake Google: authorize → consent → code → tokens, and the ways each step refuses.

use super::{http, location, param, params, pkce, request_id, ticked_scopes};
use patchbay_testkit::fakes::google::{TokenKind, ISSUER};
use patchbay_testkit::fakes::{FakeGoogle, IssMode, RevokeBehaviour, OVERSIZED_REVOKE_BYTES, REVOKE_REDIRECT_PATH};
use serde_json::Value;
use url::Url;

const CLIENT: &str = "client-1.apps.googleusercontent.com";
const SECRET: &str = "secret-1";
const REDIRECT: &str = "https://app.example/oauth/google/callback";
const CALENDAR: &str = "https://www.googleapis.com/auth/calendar.readonly";
const SCOPES: &str = "openid email https://www.googleapis.com/auth/calendar.readonly";

async fn fake() -> FakeGoogle {
    let google = FakeGoogle::start().await;
    google.register_client(CLIENT, SECRET, &[REDIRECT]);
    google.add_user("1001", "ada@example.com");
    google
}

/// An authorization URL like the client under test builds; `extra` adds or overrides params.
fn authorize_url(google: &FakeGoogle, challenge: &str, extra: &[(&str, &str)]) -> Url {
    let mut url = google.auth_url();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("client_id", CLIENT),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", SCOPES),
        ("state", "st-123"),
        ("access_type", "offline"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        pairs.retain(|(n, _)| n != name);
        pairs.push((name, value));
    }
    url.query_pairs_mut().extend_pairs(pairs);
    url
}

async fn exchange(google: &FakeGoogle, code: &str, verifier: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    let response = http().post(google.token_url()).form(&form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn refresh(google: &FakeGoogle, refresh_token: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
    ];
    let response = http().post(google.token_url()).form(&form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Headless approval plus code exchange; returns the token response.
async fn connect(google: &FakeGoogle, extra: &[(&str, &str)]) -> Value {
    let (verifier, challenge) = pkce();
    let callback = google.authorize_headless(&authorize_url(google, &challenge, extra), "1001");
    let (status, body) = exchange(google, &param(&callback, "code").expect("a code"), &verifier).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn userinfo_status(google: &FakeGoogle, access_token: &str) -> u16 {
    http().get(google.userinfo_url()).bearer_auth(access_token).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn fakes_google_browser_flow_with_pkce_s256_yields_tokens_and_identity() {
    let google = fake().await;
    let (verifier, challenge) = pkce();

    let page =
        http().get(authorize_url(&google, &challenge, &[("login_hint", "ada@example.com")])).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"approve\"") && html.contains("id=\"deny\""), "{html}");
    let mut form = vec![("request_id".to_owned(), request_id(&html)), ("user".to_owned(), "1001".to_owned())];
    form.extend(ticked_scopes(&html));
    let approved =
        http().post(google.base_url().join("o/oauth2/v2/approve").unwrap()).form(&form).send().await.unwrap();
    assert_eq!(approved.status(), 303);
    let callback = location(&approved);
    assert!(callback.as_str().starts_with(REDIRECT), "{callback}");
    assert_eq!(param(&callback, "state").as_deref(), Some("st-123"));
    assert_eq!(params(&callback, "iss"), ["https://accounts.google.com"]);
    assert_eq!(
        param(&callback, "scope").as_deref(),
        Some("email https://www.googleapis.com/auth/calendar.readonly openid")
    );
    let (status, tokens) = exchange(&google, &param(&callback, "code").unwrap(), &verifier).await;

    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3599);
    assert!(tokens["refresh_token"].is_string() && tokens["id_token"].is_string(), "{tokens}");
    assert_eq!(super::jwt_claims(tokens["id_token"].as_str().unwrap())["sub"], "1001");
    assert_eq!(google.authorize_requests()[0].param("code_challenge_method"), Some("S256"));
    let access = tokens["access_token"].as_str().unwrap();
    let me: Value = http().get(google.userinfo_url()).bearer_auth(access).send().await.unwrap().json().await.unwrap();
    assert_eq!((me["sub"].as_str(), me["email"].as_str()), (Some("1001"), Some("ada@example.com")));
    assert_eq!(google.token_calls("authorization_code"), 1);
    assert!(google.token_in_url_violations().is_empty());
}

#[tokio::test]
async fn fakes_google_refresh_token_comes_only_on_first_consent_or_prompt_consent() {
    let google = fake().await;

    let first = connect(&google, &[]).await;
    let again = connect(&google, &[]).await;
    let forced = connect(&google, &[("prompt", "consent")]).await;

    assert!(first["refresh_token"].is_string(), "first consent: {first}");
    assert!(again.get("refresh_token").is_none(), "repeat consent: {again}");
    assert!(forced["refresh_token"].is_string(), "prompt=consent: {forced}");
}

#[tokio::test]
async fn fakes_google_code_is_single_use_and_expires() {
    let google = fake().await;
    let (verifier, challenge) = pkce();
    let code = |callback: Url| param(&callback, "code").unwrap();
    let reused = code(google.authorize_headless(&authorize_url(&google, &challenge, &[]), "1001"));
    let expired = code(google.authorize_headless(&authorize_url(&google, &challenge, &[]), "1001"));

    assert_eq!(exchange(&google, &reused, &verifier).await.0, 200);
    let second = exchange(&google, &reused, &verifier).await;
    google.advance_clock(std::time::Duration::from_secs(601));
    let late = exchange(&google, &expired, &verifier).await;

    let invalid_grant = serde_json::json!({"error": "invalid_grant", "error_description": "Bad Request"});
    assert_eq!(second, (400, invalid_grant.clone()), "reused code");
    assert_eq!(late, (400, invalid_grant), "expired code");
}

#[tokio::test]
async fn fakes_google_wrong_or_missing_verifier_is_invalid_grant() {
    let google = fake().await;
    let (_, challenge) = pkce();
    for (case, verifier) in
        [("wrong verifier", "not-the-verifier-at-all-but-long-enough-000000"), ("missing verifier", "")]
    {
        let callback = google.authorize_headless(&authorize_url(&google, &challenge, &[]), "1001");
        let (status, body) = exchange(&google, &param(&callback, "code").unwrap(), verifier).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{case}: {body}");
    }
}

#[tokio::test]
async fn fakes_google_unregistered_redirect_uri_gets_an_escaped_error_page_and_no_redirect() {
    let google = fake().await;
    let evil = "https://app.example/oauth/google/callback/<script>x</script>";
    let url = authorize_url(&google, "c", &[("redirect_uri", evil)]);

    let response = http().get(url).send().await.unwrap();

    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    let html = response.text().await.unwrap();
    assert!(html.contains("redirect_uri_mismatch") && !html.contains("<script>"), "{html}");
}

#[tokio::test]
async fn fakes_google_token_endpoint_refuses_json_and_bad_secrets() {
    let google = fake().await;
    let json_body = serde_json::json!({"grant_type": "refresh_token", "refresh_token": "x", "client_id": CLIENT});
    let bad_secret =
        [("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", CLIENT), ("client_secret", "no")];

    let json = http().post(google.token_url()).json(&json_body).send().await.unwrap();
    let secret = http().post(google.token_url()).form(&bad_secret).send().await.unwrap();

    assert_eq!(json.status(), 400);
    assert_eq!(secret.status(), 401);
    assert_eq!(secret.json::<Value>().await.unwrap()["error"], "invalid_client");
}

#[tokio::test]
async fn fakes_google_refresh_gives_no_new_refresh_token_and_dies_with_the_grant() {
    let google = fake().await;
    let tokens = connect(&google, &[]).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    let (status, refreshed) = refresh(&google, refresh_token).await;
    google.kill_refresh_tokens_of("1001");
    let dead = refresh(&google, refresh_token).await;

    assert_eq!(status, 200, "{refreshed}");
    assert!(refreshed["access_token"].is_string() && refreshed.get("refresh_token").is_none(), "{refreshed}");
    assert_eq!(refreshed["scope"], tokens["scope"]);
    let expected =
        serde_json::json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."});
    assert_eq!(dead, (400, expected));
    assert_eq!(google.refresh_calls(refresh_token), 2);
    assert_eq!(userinfo_status(&google, refreshed["access_token"].as_str().unwrap()).await, 401);
}

#[tokio::test]
async fn fakes_google_revoking_the_access_token_kills_both_tokens() {
    let google = fake().await;
    let tokens = connect(&google, &[]).await;
    let (access, refresh_token) = (tokens["access_token"].as_str().unwrap(), tokens["refresh_token"].as_str().unwrap());

    let revoked = http().post(google.revoke_url()).form(&[("token", access)]).send().await.unwrap();
    let again = http().post(google.revoke_url()).form(&[("token", access)]).send().await.unwrap();

    assert_eq!(revoked.status(), 200);
    assert_eq!(again.status(), 400);
    assert_eq!(userinfo_status(&google, access).await, 401);
    assert_eq!(refresh(&google, refresh_token).await.1["error"], "invalid_grant");
    let revocations = google.revocations();
    assert_eq!((revocations[0].kind, revocations[0].via_query), (TokenKind::Access, false));
    assert!(google.token_in_url_violations().is_empty());
}

#[tokio::test]
async fn fakes_google_a_token_in_the_revoke_url_is_recorded_as_a_violation() {
    let google = fake().await;
    let tokens = connect(&google, &[]).await;
    let mut url = google.revoke_url();
    url.query_pairs_mut().append_pair("token", tokens["refresh_token"].as_str().unwrap());

    let response = http().post(url).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(google.token_in_url_violations().len(), 1);
    assert!(google.revocations()[0].via_query);
}

#[tokio::test]
async fn fakes_google_granular_consent_drops_a_scope_from_the_grant() {
    let google = fake().await;
    google.drop_scope(CALENDAR);

    let tokens = connect(&google, &[]).await;

    assert_eq!(tokens["scope"], "email openid");
}

#[tokio::test]
async fn fakes_google_deny_redirects_with_access_denied_and_the_state() {
    let google = fake().await;
    google.sever_opener(true);
    let page = http().get(authorize_url(&google, "c", &[("user", "1001")])).send().await.unwrap();
    assert_eq!(page.headers()["cross-origin-opener-policy"], "same-origin");
    let form = [("request_id", request_id(&page.text().await.unwrap()))];

    let denied = http().post(google.base_url().join("o/oauth2/v2/deny").unwrap()).form(&form).send().await.unwrap();

    assert_eq!(denied.status(), 303);
    let callback = location(&denied);
    assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&callback, "state").as_deref(), Some("st-123"));
    assert!(param(&callback, "code").is_none());
}

#[tokio::test]
async fn fakes_google_iss_and_failure_switches_apply() {
    let google = fake().await;
    google.set_iss(IssMode::Duplicated);
    let duplicated = google.authorize_headless(&authorize_url(&google, "c", &[]), "1001");
    google.set_iss(IssMode::Missing);
    let missing = google.authorize_headless(&authorize_url(&google, "c", &[]), "1001");
    google.fail_token_endpoint(503, 1);

    let failed = refresh(&google, "whatever").await;
    let after = refresh(&google, "whatever").await;

    assert_eq!(params(&duplicated, "iss").len(), 2);
    assert!(params(&missing, "iss").is_empty());
    assert_eq!(failed.0, 503);
    assert_eq!(after.0, 400, "the switch lasts for one call");
    assert_eq!(google.token_calls("refresh_token"), 2);
}

/// The `iss` values of a redirect for every mode, on a code redirect and an error redirect.
#[tokio::test]
async fn fakes_google_every_iss_mode_applies_to_code_and_error_redirects() {
    let google = fake().await;
    let cases = [
        (IssMode::Correct, vec![ISSUER.to_owned()]),
        (IssMode::Missing, vec![]),
        (IssMode::Wrong("https://evil.example".into()), vec!["https://evil.example".to_owned()]),
        (IssMode::Duplicated, vec![ISSUER.to_owned(), ISSUER.to_owned()]),
    ];

    for (mode, expected) in cases {
        google.set_iss(mode.clone());
        google.set_access_denied(false);
        let approved = google.authorize_headless(&authorize_url(&google, "c", &[]), "1001");
        google.set_access_denied(true);
        let denied = google.authorize_headless(&authorize_url(&google, "c", &[]), "1001");

        assert!(param(&approved, "code").is_some(), "{mode:?}");
        assert_eq!(params(&approved, "iss"), expected, "{mode:?} on a code redirect");
        assert_eq!(param(&denied, "error").as_deref(), Some("access_denied"));
        assert_eq!(params(&denied, "iss"), expected, "{mode:?} on an error redirect");
    }
}

#[tokio::test]
async fn fakes_google_revoke_behaviours_answer_as_switched_and_revoke_nothing() {
    let google = fake().await;
    let tokens = connect(&google, &[]).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let revoke = || http().post(google.revoke_url()).form(&[("token", refresh_token)]).send();

    google.set_revoke_behaviour(RevokeBehaviour::Status(503));
    let unavailable = revoke().await.unwrap();
    google.set_revoke_behaviour(RevokeBehaviour::Status(400));
    let bad_request = revoke().await.unwrap();
    google.set_revoke_behaviour(RevokeBehaviour::SuccessFalse);
    let success_false = revoke().await.unwrap();
    google.set_revoke_behaviour(RevokeBehaviour::Redirect);
    let redirect = revoke().await.unwrap();
    google.set_revoke_behaviour(RevokeBehaviour::Oversized);
    let oversized = revoke().await.unwrap();

    assert_eq!(unavailable.status(), 503);
    assert_eq!(unavailable.json::<Value>().await.unwrap()["error"], "server_error");
    assert_eq!(bad_request.status(), 400);
    assert_eq!(bad_request.json::<Value>().await.unwrap()["error"], "invalid_request");
    assert_eq!(success_false.status(), 200);
    assert_eq!(success_false.json::<Value>().await.unwrap(), serde_json::json!({"success": false}));
    assert_eq!(
        (redirect.status().as_u16(), redirect.headers()["location"].to_str().unwrap()),
        (307, REVOKE_REDIRECT_PATH)
    );
    assert_eq!(oversized.status(), 200);
    assert_eq!(oversized.bytes().await.unwrap().len(), OVERSIZED_REVOKE_BYTES);
    assert!(google.token_alive(refresh_token), "a misbehaving endpoint revokes nothing");
    let revocations = google.revocations();
    assert_eq!(revocations.len(), 5, "every call is recorded");
    assert!(revocations.iter().all(|r| r.token == refresh_token && r.kind == TokenKind::Refresh && !r.effective));
    assert!(!google.requests().iter().any(|r| r.starts_with(REVOKE_REDIRECT_PATH)));

    google.set_revoke_behaviour(RevokeBehaviour::Normal);
    assert_eq!(revoke().await.unwrap().status(), 200);
    assert!(!google.token_alive(refresh_token) && !google.token_alive(tokens["access_token"].as_str().unwrap()));
    assert!(google.revocations()[5].effective);
}

#[tokio::test]
async fn fakes_google_a_held_refresh_waits_until_released_and_then_answers_by_the_grant_it_finds() {
    let google = fake().await;
    let tokens = connect(&google, &[]).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    let gate = google.hold_refreshes();
    let held = tokio::spawn({
        let (google, refresh_token) = (google.clone(), refresh_token.clone());
        async move { refresh(&google, &refresh_token).await }
    });
    gate.arrived().await;
    // While held: not answered, not counted; exchanges and the user's revocation go on.
    assert!(!held.is_finished());
    assert_eq!((gate.arrivals(), google.token_calls("refresh_token")), (1, 0));
    google.kill_refresh_tokens_of("1001");
    gate.release();
    let (status, body) = held.await.unwrap();

    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    assert_eq!(google.token_calls("refresh_token"), 1);
}

#[tokio::test]
async fn fakes_google_a_held_refresh_is_answered_normally_once_the_gate_drops() {
    let google = fake().await;
    let tokens = connect(&google, &[]).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    let gate = google.hold_refreshes();
    let held = tokio::spawn({
        let (google, refresh_token) = (google.clone(), refresh_token.clone());
        async move { refresh(&google, &refresh_token).await }
    });
    gate.arrived().await;
    drop(gate);
    let (status, body) = held.await.unwrap();
    let (later, _) = refresh(&google, &refresh_token).await;

    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string() && body.get("refresh_token").is_none());
    assert_eq!(later, 200, "after release refreshes pass straight through");
    assert_eq!(google.refresh_calls(&refresh_token), 2);
}

/// Two Patchbay tenants connect the same Google account through the same OAuth client. Google
/// keeps one grant per user and client: a repeat consent with `prompt=consent` (Patchbay always
/// sends it) issues a new refresh token for the same grant, so each tenant gets working tokens —
/// and revoking either tenant's token ends the grant for both.
#[tokio::test]
async fn fakes_google_two_tenants_authorizing_one_user_share_one_grant() {
    let google = fake().await;
    let consent = [("prompt", "consent")];

    let tenant_a = connect(&google, &[("state", "tenant-a"), consent[0]]).await;
    let tenant_b = connect(&google, &[("state", "tenant-b"), consent[0]]).await;
    let without_consent = connect(&google, &[("state", "tenant-c")]).await;

    let (refresh_a, refresh_b) =
        (tenant_a["refresh_token"].as_str().unwrap(), tenant_b["refresh_token"].as_str().unwrap());
    assert_ne!(refresh_a, refresh_b, "the repeat consent issued its own refresh token");
    assert!(without_consent.get("refresh_token").is_none(), "no refresh token without prompt=consent");
    for tokens in [&tenant_a, &tenant_b] {
        let access = tokens["access_token"].as_str().unwrap();
        let me = http().get(google.userinfo_url()).bearer_auth(access).send().await.unwrap();
        assert_eq!(me.json::<Value>().await.unwrap()["sub"], "1001", "the same Google user");
    }
    assert_eq!(refresh(&google, refresh_a).await.0, 200);
    assert_eq!(refresh(&google, refresh_b).await.0, 200);

    let revoked = http().post(google.revoke_url()).form(&[("token", refresh_a)]).send().await.unwrap();

    assert_eq!(revoked.status(), 200);
    assert!(!google.token_alive(refresh_b), "tenant B's refresh token died with the shared grant");
    assert_eq!(refresh(&google, refresh_b).await.1["error"], "invalid_grant");
    assert_eq!(userinfo_status(&google, tenant_b["access_token"].as_str().unwrap()).await, 401);
}
