//! The connect flow end to end against the fakes: sessions, confirmation, begin, callback,
//! answer and status, and every refusal with its stable code.

use crate::both_stores;
use crate::support::{query, request, Db, World, APP, GOOGLE_SUB, GOOGLE_SUB_2, MONDAY_USER, PUBLIC_URL};
use chrono::Utc;
use patchbay_connect::{answer, cookie_name, sha256, Answer, ConnectError, SessionStatus};
use patchbay_oauth::ProviderId;
use patchbay_store::{ConnectMode, ConnectionFilter, ConnectionStatus, EndUser, JobKind, JobStatus, Page, TenantScope};
use patchbay_testkit::fakes::IssMode;

/// How many visible connections the tenant has.
async fn connection_count(w: &World, scope: TenantScope) -> usize {
    w.store.list_connections(scope, ConnectionFilter::default(), Page::new(None, None)).await.unwrap().items.len()
}

/// Token-endpoint code exchanges at both fakes.
fn exchanges(w: &World) -> usize {
    w.google.token_calls("authorization_code") + w.monday.token_calls("authorization_code")
}

async fn happy_path_for_google_and_monday(db: Db) {
    let Some(w) = World::new(db).await else { return };
    let (scope, alice) = w.user("tenant-a", "alice-subject").await;
    for (provider, who, named) in
        [(ProviderId::Google, GOOGLE_SUB, Some("Alice <Ops>")), (ProviderId::Monday, MONDAY_USER, None)]
    {
        let mut req = request(scope, alice.id, provider);
        req.end_user = EndUser { display_name: named.map(str::to_string), email: None };
        let created = w.connect.create_session(req).await.expect("session created");
        assert_eq!(
            created.connect_url.as_str(),
            format!("{PUBLIC_URL}/connect/{}", created.token),
            "{provider}: the connect link"
        );

        let shown = w.connect.confirmation(&created.token, Utc::now()).await.expect("the confirmation shows");
        assert_eq!(shown.end_user, named.unwrap_or("alice-subject"), "{provider}: names the person (or the subject)");
        assert_eq!(shown.app_name, "Acme Scheduler");
        assert!(!shown.reads.is_empty(), "{provider}: says what Patchbay reads");
        match provider {
            ProviderId::Google => {
                assert!(shown.reads.iter().any(|r| r.contains("calendars")), "{:?}", shown.reads);
                assert!(shown.writes.is_empty(), "read-only calendar scope: nothing is changed: {:?}", shown.writes);
            }
            ProviderId::Monday => assert!(!shown.writes.is_empty(), "webhooks:write is a change: {:?}", shown.writes),
        }
        let fake_origin = match provider {
            ProviderId::Google => w.google.base_url(),
            ProviderId::Monday => w.monday.base_url(),
        }
        .origin()
        .ascii_serialization();
        assert_eq!(shown.provider_origin, fake_origin, "{provider}: the form posts towards the provider");

        let redirect = w.connect.begin(&created.token, Utc::now()).await.expect("the session begins");
        assert_eq!(redirect.location.origin().ascii_serialization(), fake_origin, "{provider}: off to the fake");
        let params = query(&redirect.location);
        let state = params.get("state").cloned().unwrap_or_default();
        assert!(state.len() >= 43, "{provider}: a random state of 32 bytes");
        assert_eq!(params.get("code_challenge_method").map(String::as_str), Some("S256"), "{provider}");
        assert!(params.get("code_challenge").is_some_and(|c| c.len() == 43), "{provider}: an S256 challenge");
        assert_eq!(params["redirect_uri"], w.connect.redirect_uri(provider).as_str());
        let cookie = &redirect.cookie;
        assert_eq!(cookie.name, cookie_name(&sha256(&state), false), "{provider}: the cookie names its state");
        let suffix = cookie.name.strip_prefix("pb_oauth_").expect("no __Host- prefix over http");
        assert!(suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit()), "{}", cookie.name);
        assert!(!cookie.secure && !cookie.header().contains("Secure"), "{provider}: http is not Secure");
        assert!(cookie.header().contains("HttpOnly; SameSite=Lax"));
        assert!(!redirect.keep_opener, "redirect mode drops the opener");

        let back = w.consent(provider, &redirect, who);
        let finished = w.callback(provider.as_str(), &back, Some(cookie)).await.expect("a valid state");
        let id = finished.outcome.as_ref().copied().unwrap_or_else(|e| panic!("{provider}: {}", e.code()));
        assert_eq!(finished.cookie_name, cookie.name, "the state cookie is cleared by name");
        let connection = w.store.get_connection(scope, id).await.expect("the connection is stored");
        assert_eq!((connection.provider, connection.status), (provider, ConnectionStatus::Active));
        assert_eq!(connection.user_id, alice.id);

        let stored = w.store.get_connect_session(scope, created.session.id).await.unwrap();
        assert_eq!(w.connect.status(&stored, Utc::now()).await, SessionStatus::Connected(id), "{provider}");
        let Answer::Redirect(to) = answer(&finished.session, &finished.outcome) else {
            panic!("{provider}: redirect mode answers a redirect")
        };
        assert!(to.as_str().starts_with(&format!("{APP}/done?")), "{provider}: back to return_to: {to}");
        let pairs = query(&to);
        assert_eq!(pairs["patchbay_status"], "connected");
        assert_eq!(pairs["connection_id"], id.to_string());
        assert!(!pairs.contains_key("code") && !pairs.contains_key("state"), "no code or state goes back");
    }
    assert_eq!(w.google.token_calls("authorization_code"), 1);
    assert_eq!(w.monday.token_calls("authorization_code"), 1);
    let events = w.events(scope).await;
    assert_eq!(events.iter().filter(|(t, _)| t == "connection.created").count(), 2, "{events:?}");
    assert_eq!(w.jobs(JobKind::SyncInitial, JobStatus::Queued).await, 2, "an initial sync each");
    let audit = w.audit_actions(scope).await;
    assert_eq!(audit.iter().filter(|a| *a == "connection.connect").count(), 2, "{audit:?}");
}
both_stores!(happy_path_for_google_and_monday);

async fn confirmation_never_consumes_the_link(db: Db) {
    let Some(w) = World::new(db).await else { return };
    let (scope, alice) = w.user("tenant-a", "alice").await;
    let created = w.connect.create_session(request(scope, alice.id, ProviderId::Google)).await.unwrap();
    for round in 0..3 {
        let shown = w.connect.confirmation(&created.token, Utc::now()).await;
        assert!(shown.is_ok(), "confirmation {round} shows the page");
    }
    assert!(w.connect.begin(&created.token, Utc::now()).await.is_ok(), "the first begin consumes the link");
    let again = w.connect.begin(&created.token, Utc::now()).await;
    assert!(matches!(again, Err(ConnectError::LinkUsed)), "a second begin: {again:?}");
    assert_eq!(again.unwrap_err().code(), "expired");
    let after = w.connect.confirmation(&created.token, Utc::now()).await;
    assert!(matches!(after, Err(ConnectError::LinkUsed)), "a used link shows no confirmation");
    assert_eq!(w.google.authorize_requests().len(), 0, "nothing went to the provider");

    // A link left unused past its lifetime: no page, no begin, and the app reads `expired`.
    let late = Utc::now() + chrono::Duration::minutes(patchbay_connect::SESSION_TTL_MINUTES + 1);
    let unused = w.connect.create_session(request(scope, alice.id, ProviderId::Google)).await.unwrap();
    assert!(matches!(w.connect.confirmation(&unused.token, late).await, Err(ConnectError::LinkUsed)));
    let stored = w.store.get_connect_session(scope, unused.session.id).await.unwrap();
    assert_eq!(
        w.connect.status(&stored, late).await,
        SessionStatus::Failed { code: "expired".into(), connection_id: None }
    );
    assert_eq!(w.connect.status(&stored, Utc::now()).await, SessionStatus::Pending, "pending while valid");
    assert!(matches!(w.connect.begin(&unused.token, late).await, Err(ConnectError::LinkUsed)));

    // A link opened but abandoned at the provider: once its state has expired, the app reads
    // `expired` instead of `pending` forever.
    let abandoned = w.connect.create_session(request(scope, alice.id, ProviderId::Google)).await.unwrap();
    w.connect.begin(&abandoned.token, Utc::now()).await.unwrap();
    let stored = w.store.get_connect_session(scope, abandoned.session.id).await.unwrap();
    assert_eq!(w.connect.status(&stored, Utc::now()).await, SessionStatus::Pending, "pending while at the provider");
    let gone = Utc::now() + chrono::Duration::minutes(patchbay_connect::STATE_TTL_MINUTES + 1);
    assert_eq!(
        w.connect.status(&stored, gone).await,
        SessionStatus::Failed { code: "expired".into(), connection_id: None },
        "abandoned past the state's life"
    );
}
both_stores!(confirmation_never_consumes_the_link);

async fn iss_is_required_from_google_and_optional_from_monday(db: Db) {
    let Some(w) = World::new(db).await else { return };
    let (scope, alice) = w.user("tenant-a", "alice").await;
    for mode in [
        IssMode::Missing,
        IssMode::Wrong("https://evil.example".into()),
        IssMode::Wrong("https://accounts.google.com/".into()),
        IssMode::Duplicated,
    ] {
        w.google.set_iss(mode.clone());
        let finished = w.connect_as(request(scope, alice.id, ProviderId::Google), GOOGLE_SUB).await;
        let code = finished.outcome.as_ref().err().map(ConnectError::code);
        assert_eq!(code, Some("issuer_mismatch"), "{mode:?}");
        let stored = w.store.get_connect_session(scope, finished.session.id).await.unwrap();
        let status = w.connect.status(&stored, Utc::now()).await;
        assert_eq!(status, SessionStatus::Failed { code: "issuer_mismatch".into(), connection_id: None }, "{mode:?}");
    }
    assert_eq!(w.google.token_calls("authorization_code"), 0, "no code was sent to Google's token endpoint");
    assert_eq!(connection_count(&w, scope).await, 0, "nothing stored");

    // monday.com never sends `iss` (the fake's default): accepted.
    let finished = w.connect_as(request(scope, alice.id, ProviderId::Monday), MONDAY_USER).await;
    assert!(finished.outcome.is_ok(), "monday without iss: {:?}", finished.outcome.as_ref().err().map(|e| e.code()));
    assert_eq!(w.monday.token_calls("authorization_code"), 1);
    // Google with its exact issuer works again.
    w.google.set_iss(IssMode::Correct);
    let finished = w.connect_as(request(scope, alice.id, ProviderId::Google), GOOGLE_SUB).await;
    assert!(finished.outcome.is_ok(), "the exact issuer is accepted");
    assert_eq!(connection_count(&w, scope).await, 2);
}
both_stores!(iss_is_required_from_google_and_optional_from_monday);

async fn a_consent_without_the_calendar_scope_is_insufficient_scope(db: Db) {
    let Some(w) = World::new(db).await else { return };
    let (scope, alice) = w.user("tenant-a", "alice").await;
    w.google.drop_scope("https://www.googleapis.com/auth/calendar.readonly");

    let redirect_mode = w.connect_as(request(scope, alice.id, ProviderId::Google), GOOGLE_SUB).await;
    let Err(ConnectError::InsufficientScope(id)) = redirect_mode.outcome else {
        panic!("expected insufficient_scope, got {:?}", redirect_mode.outcome.map_err(|e| e.code()))
    };
    let Answer::Redirect(to) = answer(&redirect_mode.session, &redirect_mode.outcome) else {
        panic!("redirect mode answers a redirect")
    };
    let pairs = query(&to);
    assert_eq!(pairs["patchbay_status"], "error");
    assert_eq!(pairs["error"], "insufficient_scope");
    assert_eq!(pairs["connection_id"], id.to_string());
    let stored = w.store.get_connect_session(scope, redirect_mode.session.id).await.unwrap();
    let failed = SessionStatus::Failed { code: "insufficient_scope".into(), connection_id: Some(id) };
    assert_eq!(w.connect.status(&stored, Utc::now()).await, failed);

    let mut popup = request(scope, alice.id, ProviderId::Google);
    popup.mode = ConnectMode::Popup;
    popup.return_to = None;
    popup.opener_origin = Some(APP.into());
    let popup_mode = w.connect_as(popup, GOOGLE_SUB).await;
    assert_eq!(popup_mode.outcome.as_ref().err().and_then(ConnectError::connection_id), Some(id), "the same row");
    match answer(&popup_mode.session, &popup_mode.outcome) {
        Answer::Popup { origin, message } => {
            assert_eq!(origin, APP, "posted to the exact opener origin");
            assert_eq!(message["patchbay_status"], "error");
            assert_eq!(message["error"], "insufficient_scope");
            assert_eq!(message["connection_id"], id.to_string());
        }
        other => panic!("popup mode answers a popup page: {other:?}"),
    }
    let stored = w.store.get_connect_session(scope, popup_mode.session.id).await.unwrap();
    assert_eq!(w.connect.status(&stored, Utc::now()).await, failed);

    let connection = w.store.get_connection(scope, id).await.unwrap();
    assert_eq!(connection.status, ConnectionStatus::InsufficientScope);
    assert!(connection.status_reason.unwrap_or_default().contains("calendar.readonly"));
    assert_eq!(w.all_jobs(JobKind::SyncInitial).await, 0, "no sync for an insufficient grant");
    assert_eq!(connection_count(&w, scope).await, 1);
}
both_stores!(a_consent_without_the_calendar_scope_is_insufficient_scope);

async fn callbacks_that_are_refused(db: Db) {
    let Some(w) = World::new(db).await else { return };
    let (scope, alice) = w.user("tenant-a", "alice").await;

    // No cookie, and the right cookie name with another browser's value.
    let (_, redirect) = w.start(request(scope, alice.id, ProviderId::Google)).await;
    let back = w.consent(ProviderId::Google, &redirect, GOOGLE_SUB);
    let finished = w.callback("google", &back, None).await.expect("a valid state");
    assert_eq!(finished.outcome.as_ref().err().map(ConnectError::code), Some("invalid_binding"), "no cookie");
    let (_, redirect) = w.start(request(scope, alice.id, ProviderId::Google)).await;
    let back = w.consent(ProviderId::Google, &redirect, GOOGLE_SUB);
    let mut forged = redirect.cookie.clone();
    forged.value = "another-browsers-binding".into();
    let finished = w.callback("google", &back, Some(&forged)).await.expect("a valid state");
    assert_eq!(finished.outcome.as_ref().err().map(ConnectError::code), Some("invalid_binding"), "wrong cookie");
    let stored = w.store.get_connect_session(scope, finished.session.id).await.unwrap();
    assert_eq!(
        w.connect.status(&stored, Utc::now()).await,
        SessionStatus::Failed { code: "invalid_binding".into(), connection_id: None }
    );

    // A state made for monday.com arriving at Google's callback.
    let (_, redirect) = w.start(request(scope, alice.id, ProviderId::Monday)).await;
    let back = w.consent(ProviderId::Monday, &redirect, MONDAY_USER);
    let finished = w.callback("google", &back, Some(&redirect.cookie)).await.expect("a valid state");
    assert_eq!(finished.outcome.as_ref().err().map(ConnectError::code), Some("provider_mismatch"));
    assert_eq!(exchanges(&w), 0, "no refused callback reached a token endpoint");

    // Access denied at the provider.
    w.google.set_access_denied(true);
    let finished = w.connect_as(request(scope, alice.id, ProviderId::Google), GOOGLE_SUB).await;
    assert_eq!(finished.outcome.as_ref().err().map(ConnectError::code), Some("access_denied"));
    let Answer::Redirect(to) = answer(&finished.session, &finished.outcome) else { panic!("a redirect") };
    assert_eq!((query(&to)["patchbay_status"].as_str(), query(&to)["error"].as_str()), ("error", "access_denied"));
    w.google.set_access_denied(false);
    assert_eq!(exchanges(&w), 0);
    assert_eq!(connection_count(&w, scope).await, 0, "nothing stored by any refusal");

    // A state used once is refused the second time: no session, nothing stored, no exchange.
    let (_, redirect) = w.start(request(scope, alice.id, ProviderId::Google)).await;
    let back = w.consent(ProviderId::Google, &redirect, GOOGLE_SUB);
    let first = w.callback("google", &back, Some(&redirect.cookie)).await.expect("a valid state");
    let id = first.outcome.as_ref().copied().unwrap_or_else(|e| panic!("{}", e.code()));
    let audit_before = w.audit_actions(scope).await.len();
    let events_before = w.events(scope).await.len();
    let replay = w.callback("google", &back, Some(&redirect.cookie)).await;
    assert!(matches!(replay, Err(ConnectError::InvalidState)), "{:?}", replay.as_ref().err());
    assert_eq!(replay.as_ref().err().map(ConnectError::code), Some("invalid_state"));
    let unknown = w.callback("google", &url::Url::parse("http://x.test/cb?state=made-up&code=c").unwrap(), None).await;
    assert!(matches!(unknown, Err(ConnectError::InvalidState)), "an unknown state");
    let missing = w.callback("google", &url::Url::parse("http://x.test/cb?code=c").unwrap(), None).await;
    assert!(matches!(missing, Err(ConnectError::InvalidState)), "no state");
    assert_eq!(w.google.token_calls("authorization_code"), 1, "the replay never reached the token endpoint");
    assert_eq!(w.audit_actions(scope).await.len(), audit_before, "no audit record for a replay");
    assert_eq!(w.events(scope).await.len(), events_before, "no event for a replay");
    assert_eq!(connection_count(&w, scope).await, 1);

    // A reconnect that consents with another Google account.
    let mut reconnect = request(scope, alice.id, ProviderId::Google);
    reconnect.reconnect = Some(id);
    let finished = w.connect_as(reconnect.clone(), GOOGLE_SUB_2).await;
    assert_eq!(finished.outcome.as_ref().err().map(ConnectError::code), Some("account_mismatch"));
    let kept = w.store.get_connection(scope, id).await.unwrap();
    assert_eq!(kept.account_email.as_deref(), Some("alice@gmail.test"), "the connection is kept as it was");
    assert_eq!(kept.status, ConnectionStatus::Active);
    assert_eq!(connection_count(&w, scope).await, 1, "no second connection");
    let same = w.connect_as(reconnect, GOOGLE_SUB).await;
    assert_eq!(same.outcome.as_ref().ok(), Some(&id), "a reconnect of the same account keeps the id");
}
both_stores!(callbacks_that_are_refused);

async fn create_session_refusals(db: Db) {
    let Some(w) = World::new(db).await else { return };
    let (scope, alice) = w.user("tenant-a", "alice").await;
    let (_, bob) = w.user("tenant-a", "bob").await;
    let (other_tenant, mallory) = w.user("tenant-b", "mallory").await;
    let code = |result: Result<patchbay_connect::CreatedSession, ConnectError>| match result {
        Ok(_) => "created".to_string(),
        Err(e) => format!("{}:{e}", e.code()),
    };
    let long = format!("{APP}/{}", "a".repeat(2048));

    let mut off_list = request(scope, alice.id, ProviderId::Google);
    off_list.return_to = Some("https://evil.example/done".into());
    let refused = code(w.connect.create_session(off_list).await);
    assert!(refused.starts_with("bad_request:") && refused.contains("PATCHBAY_RETURN_TO_ORIGINS"), "{refused}");

    let mut too_long = request(scope, alice.id, ProviderId::Google);
    too_long.return_to = Some(long.clone());
    let refused = code(w.connect.create_session(too_long).await);
    assert!(refused.starts_with("bad_request:") && refused.contains("2048"), "redirect mode: {refused}");

    let mut popup_long = request(scope, alice.id, ProviderId::Google);
    popup_long.mode = ConnectMode::Popup;
    popup_long.opener_origin = Some(APP.into());
    popup_long.return_to = Some(long);
    let refused = code(w.connect.create_session(popup_long).await);
    assert!(refused.starts_with("bad_request:") && refused.contains("2048"), "popup mode checks it too: {refused}");

    let mut popup_without_opener = request(scope, alice.id, ProviderId::Google);
    popup_without_opener.mode = ConnectMode::Popup;
    let refused = w.connect.create_session(popup_without_opener).await;
    assert!(matches!(refused, Err(ConnectError::MissingOpenerOrigin)), "{:?}", refused.err());

    let mut redirect_without_return = request(scope, alice.id, ProviderId::Google);
    redirect_without_return.return_to = None;
    let refused = w.connect.create_session(redirect_without_return).await;
    assert!(matches!(refused, Err(ConnectError::MissingReturnTo)), "{:?}", refused.err());

    for (name, email) in [(Some("n".repeat(201)), None), (None, Some(format!("{}@x.test", "e".repeat(200))))] {
        let mut long_user = request(scope, alice.id, ProviderId::Google);
        long_user.end_user = EndUser { display_name: name, email };
        let refused = w.connect.create_session(long_user).await;
        assert!(matches!(refused, Err(ConnectError::EndUserTooLong)), "{:?}", refused.err());
    }
    let mut at_limit = request(scope, alice.id, ProviderId::Google);
    at_limit.end_user = EndUser { display_name: Some("n".repeat(200)), email: None };
    assert_eq!(code(w.connect.create_session(at_limit).await), "created", "200 characters are fine");

    let id = w.connected(scope, alice.id, ProviderId::Google, GOOGLE_SUB).await;
    let mut bobs = request(scope, bob.id, ProviderId::Google);
    bobs.reconnect = Some(id);
    let refused = w.connect.create_session(bobs).await;
    assert!(matches!(refused, Err(ConnectError::NotFound)), "another user's connection: {:?}", refused.err());
    let mut mallorys = request(other_tenant, mallory.id, ProviderId::Google);
    mallorys.reconnect = Some(id);
    let refused = w.connect.create_session(mallorys).await;
    assert_eq!(refused.err().map(|e| e.code()), Some("not_found"), "another tenant's connection");
    let mut wrong_provider = request(scope, alice.id, ProviderId::Monday);
    wrong_provider.reconnect = Some(id);
    let refused = w.connect.create_session(wrong_provider).await;
    assert!(matches!(refused, Err(ConnectError::NotFound)), "a Google connection is no Monday reconnect target");
}
both_stores!(create_session_refusals);
