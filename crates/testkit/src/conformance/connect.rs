//! Connect-session and OAuth-state scenarios: single use under concurrency, expiry, peeking,
//! first outcome wins, exact round trips.

use super::*;
use std::sync::Arc;

/// Twenty concurrent consumers of one session token: exactly one gets the session, and a
/// consumed session is neither peeked nor consumed again.
pub async fn a_connect_session_is_consumed_once_by_one_of_many_concurrent_callers(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(&*store, "org:consume").await;
    let created = store.create_connect_session(new_session(&user, 1, secs(now, 600))).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.spawn(async move { store.consume_connect_session(&[1; 32], now).await.unwrap() });
    }
    let won: Vec<ConnectSession> = tasks.join_all().await.into_iter().flatten().collect();
    assert_eq!(won.len(), 1, "exactly one consumer gets the session");
    assert_eq!(won[0], ConnectSession { consumed_at: Some(now), ..created.clone() });
    assert_eq!(store.consume_connect_session(&[1; 32], secs(now, 1)).await.unwrap(), None, "single use");
    assert_eq!(store.peek_connect_session(&[1; 32], now).await.unwrap(), None, "a consumed session is not peeked");
    assert_eq!(store.get_connect_session(scope, created.id).await.unwrap().consumed_at, Some(now));
}

/// Peeking (the GET page a link scanner may fetch) leaves the session consumable; an expired
/// session is neither peeked nor consumed; every field round-trips.
pub async fn peeking_leaves_a_session_consumable_and_an_expired_one_is_never_returned(store: Arc<dyn Store>) {
    let now = t0();
    let (_, user) = tenant_with_user(&*store, "org:peek").await;
    let target = store.create_connection(new_connection(&user, "acct-1")).await.unwrap();
    let popup = NewConnectSession {
        mode: ConnectMode::Popup,
        return_to: None,
        opener_origin: Some("https://app.test".into()),
        reconnect_connection_id: Some(target.id),
        ..new_session(&user, 2, secs(now, 600))
    };
    let created = store.create_connect_session(popup).await.unwrap();
    let expected = (ConnectMode::Popup, Some("https://app.test"), None, Some(target.id), secs(now, 600), None, None);
    let got = (
        created.mode,
        created.opener_origin.as_deref(),
        created.return_to.as_deref(),
        created.reconnect_connection_id,
        created.expires_at,
        created.consumed_at,
        created.outcome.clone(),
    );
    assert_eq!(got, expected);
    for _ in 0..2 {
        assert_eq!(store.peek_connect_session(&[2; 32], now).await.unwrap().as_ref(), Some(&created), "peek");
    }
    assert!(store.consume_connect_session(&[2; 32], now).await.unwrap().is_some(), "still consumable after peeks");

    store.create_connect_session(new_session(&user, 3, secs(now, 10))).await.unwrap();
    let at_expiry = secs(now, 10);
    assert_eq!(store.peek_connect_session(&[3; 32], at_expiry).await.unwrap(), None, "expired: not peeked");
    assert_eq!(store.consume_connect_session(&[3; 32], at_expiry).await.unwrap(), None, "expired: not consumed");
    assert_eq!(store.peek_connect_session(&[9; 32], now).await.unwrap(), None, "unknown token");
    let duplicate = store.create_connect_session(new_session(&user, 2, secs(now, 600))).await;
    assert!(matches!(duplicate, Err(StoreError::Conflict(_))), "token hashes are unique: {duplicate:?}");
}

/// The first outcome of a session wins; an unknown session is `NotFound`.
pub async fn the_first_outcome_of_a_connect_session_wins(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(&*store, "org:outcome").await;
    let conn = store.create_connection(new_connection(&user, "acct-1")).await.unwrap();
    let failed = store.create_connect_session(new_session(&user, 1, secs(now, 600))).await.unwrap();
    let connected = store.create_connect_session(new_session(&user, 2, secs(now, 600))).await.unwrap();
    let writes = [
        (failed.id, ConnectOutcome::Failed("access_denied".into())),
        (failed.id, ConnectOutcome::Connected(conn.id)),
        (connected.id, ConnectOutcome::Connected(conn.id)),
        (connected.id, ConnectOutcome::Failed("invalid_state".into())),
    ];
    for (id, outcome) in writes {
        store.finish_connect_session(id, outcome, now).await.unwrap();
    }
    let cases = [
        (failed.id, Some(ConnectOutcome::Failed("access_denied".into()))),
        (connected.id, Some(ConnectOutcome::Connected(conn.id))),
    ];
    for (id, expected) in cases {
        assert_eq!(store.get_connect_session(scope, id).await.unwrap().outcome, expected, "session {id}");
    }
    let unknown = store.finish_connect_session(ConnectSessionId::new(), ConnectOutcome::Failed("x".into()), now).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

/// Twenty concurrent consumers of one OAuth state: exactly one gets it, byte for byte; an
/// expired state gives `None` and is gone all the same.
pub async fn an_oauth_state_is_consumed_once_and_an_expired_one_is_deleted(store: Arc<dyn Store>) {
    let now = t0();
    let (_, user) = tenant_with_user(&*store, "org:state").await;
    let session = store.create_connect_session(new_session(&user, 1, secs(now, 600))).await.unwrap();
    let state = |seed: u8, expires_at| OAuthState {
        state_sha256: [seed; 32],
        provider: ProviderId::Google,
        tenant_id: user.tenant_id,
        user_id: user.id,
        session_id: session.id,
        pkce_verifier: Some((0..=255).rev().collect()),
        binding_sha256: [seed.wrapping_add(1); 32],
        redirect_uri: "https://patchbay.test/oauth/google/callback".into(),
        created_at: now,
        expires_at,
    };
    store.create_oauth_state(state(7, secs(now, 300))).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.spawn(async move { store.consume_oauth_state(&[7; 32], now).await.unwrap() });
    }
    let won: Vec<OAuthState> = tasks.join_all().await.into_iter().flatten().collect();
    assert_eq!(won, vec![state(7, secs(now, 300))], "exactly one consumer, and the row round-trips exactly");

    let without_pkce = OAuthState { pkce_verifier: None, ..state(8, secs(now, 300)) };
    store.create_oauth_state(without_pkce.clone()).await.unwrap();
    assert_eq!(store.consume_oauth_state(&[8; 32], now).await.unwrap(), Some(without_pkce));

    store.create_oauth_state(state(9, secs(now, 5))).await.unwrap();
    assert_eq!(store.consume_oauth_state(&[9; 32], secs(now, 5)).await.unwrap(), None, "expired");
    store.create_oauth_state(state(9, secs(now, 600))).await.expect("the expired state was deleted");
    assert!(store.consume_oauth_state(&[9; 32], now).await.unwrap().is_some());
    assert_eq!(store.consume_oauth_state(&[9; 32], now).await.unwrap(), None, "single use");
}
