//! Connection fixation (security.md A and F): a connect link is a bearer credential for one
//! user's session, so whoever opens it must see whose account they are about to connect, and
//! nothing may happen until they say so. Here the app's backend creates Alice's session and the
//! link is opened in a browser that has never seen the app or Patchbay: the page names Alice,
//! stays put, and only "Continue to Google" sends the browser to the provider.

use crate::{connected_id, json_body, with_harness_args};
use patchbay_testkit::app::token;
use patchbay_tests::browser::{Browser, WAIT};
use serde_json::json;
use std::time::{Duration, Instant};
use url::Url;

const APP_NAME: &str = "Acme Scheduler";

#[tokio::test]
async fn a_connect_link_opened_in_a_fresh_browser_names_the_end_user_and_waits_for_continue() {
    with_harness_args("v2", &["--app-name", APP_NAME], |h| async move {
        let alice = &h.bearer;
        let body = json!({
            "provider": "google",
            "mode": "redirect",
            "return_to": format!("{}/done", h.origin),
            "end_user": {"display_name": "Alice Example"},
        });
        let response = h.w.app.post_as("/v1/connect-sessions", alice, &body).await;
        assert_eq!(response.status(), 201, "Alice's session is created");
        let created = json_body(response).await;
        let session_id = created["id"].as_str().unwrap().to_string();
        let connect_url = Url::parse(created["connect_url"].as_str().unwrap()).unwrap();

        // A new chromedriver session on an empty profile: no cookies, no history.
        let fresh = Browser::start().await;
        let c = &fresh.client;
        c.goto(connect_url.as_str()).await.unwrap();
        assert_eq!(fresh.text_of("end-user").await, "Alice Example", "the page names the person it connects for");
        let heading = c.find(fantoccini::Locator::Css("h1")).await.unwrap().text().await.unwrap();
        assert_eq!(heading, format!("Connect Google to {APP_NAME}"));

        // The page is loaded, holds no script and no refresh, and nothing left this browser.
        let deadline = Instant::now() + WAIT;
        let loaded = loop {
            let state = c.execute("return document.readyState", vec![]).await.unwrap();
            if state == "complete" || Instant::now() >= deadline {
                break state;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(loaded, "complete", "{}", fresh.page_dump().await);
        let active = c
            .execute(
                "return {scripts: document.scripts.length, \
                 refresh: document.querySelectorAll('meta[http-equiv]').length, \
                 forms: Array.from(document.forms).map((f) => f.method + ' ' + new URL(f.action).pathname)}",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            active,
            json!({"scripts": 0, "refresh": 0, "forms": [format!("post {}", connect_url.path())]}),
            "nothing on the page can move on by itself; its one form posts back to the link"
        );
        assert!(c.get_all_cookies().await.unwrap().is_empty(), "the GET set no cookie (no state was made)");
        assert!(h.w.google.authorize_requests().is_empty(), "the provider has seen nothing yet");
        let polled = json_body(h.w.app.get_as(&format!("/v1/connect-sessions/{session_id}"), alice).await).await;
        assert_eq!(polled["status"], "pending", "opening the link consumed nothing: {polled}");
        let url = c.current_url().await.unwrap();
        assert_eq!(url.origin().ascii_serialization(), h.w.app.base, "still on Patchbay: {url}");
        assert_eq!(url.path(), connect_url.path(), "still on the confirmation page: {url}");

        // Only the click moves on: to Google's consent page, for a state Patchbay just made.
        fresh.find("continue").await.click().await.unwrap();
        let approve = fresh.find("approve").await;
        let url = c.current_url().await.unwrap();
        let google = h.w.google.auth_url();
        assert_eq!(url.origin(), google.origin(), "at the provider: {url}");
        assert_eq!(url.path(), google.path(), "on its consent page: {url}");
        let authorizations = h.w.google.authorize_requests();
        assert_eq!(authorizations.len(), 1, "one authorization request, after the click");
        assert!(authorizations[0].param("state").is_some_and(|s| !s.is_empty()), "with a state");
        fresh.find("user").await.select_by_value("g-sub-1").await.unwrap();
        approve.click().await.unwrap();

        // Back in the app, connected for Alice.
        let result = fresh.text_of("result").await;
        let id = connected_id(&result);
        let url = c.current_url().await.unwrap();
        assert_eq!(url.origin().ascii_serialization(), h.origin, "back in the app: {url}");
        assert_eq!(url.path(), "/done", "at return_to: {url}");
        let me = json_body(h.w.app.get_as("/v1/me", alice).await).await;
        let response = h.w.app.get_as(&format!("/v1/connections/{id}"), alice).await;
        assert_eq!(response.status(), 200, "Alice sees the connection");
        let shown = json_body(response).await;
        assert_eq!(shown["user_id"], me["user_id"], "it belongs to Alice: {shown} / {me}");
        assert_eq!(shown["status"], "active", "{shown}");
        assert_eq!(shown["provider"], "google", "{shown}");
        assert_eq!(shown["account_email"], "alice@gmail.test", "{shown}");
        let polled = json_body(h.w.app.get_as(&format!("/v1/connect-sessions/{session_id}"), alice).await).await;
        assert_eq!(polled["status"], "connected", "{polled}");
        assert_eq!(polled["connection_id"].as_str(), Some(id.as_str()), "{polled}");
        let listed = json_body(h.w.app.get_as("/v1/connections", alice).await).await;
        let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
        assert_eq!(ids, [id.as_str()], "Alice has exactly this connection");
        let bob = token("bob", json!({}));
        let foreign = h.w.app.get_as(&format!("/v1/connections/{id}"), &bob).await;
        assert_eq!(foreign.status(), 404, "nobody else sees it");
        assert_eq!(h.w.google.token_calls("authorization_code"), 1);

        // Without `end_user`, the page names the user by their subject.
        let body = json!({"provider": "google", "mode": "redirect", "return_to": format!("{}/done", h.origin)});
        let created = json_body(h.w.app.post_as("/v1/connect-sessions", alice, &body).await).await;
        c.goto(created["connect_url"].as_str().unwrap()).await.unwrap();
        assert_eq!(fresh.text_of("end-user").await, "alice", "the subject is the default");
        fresh.close().await;
    })
    .await;
}
