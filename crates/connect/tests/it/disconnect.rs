//! The disconnect job against the fakes: whatever the provider's revocation endpoint does, the
//! credential is destroyed and the connection tombstoned; a shared grant is not revoked; a
//! refresh in flight finishes first and its rotated token is what gets revoked.

use crate::both_stores;
use crate::support::{Db, World, GOOGLE_SUB, MONDAY_USER, REVOKE_ATTEMPTS};
use patchbay_oauth::ProviderId;
use patchbay_store::{ConnectionId, ConnectionStatus, JobKind, JobStatus, Outcome, StoreError, TenantScope};
use patchbay_testkit::fakes::{Revocation, RevokeBehaviour, TokenKind, REVOKE_REDIRECT_PATH};
use patchbay_token_vault::TokenError;
use std::time::Duration;

fn revocations(w: &World, provider: ProviderId) -> Vec<Revocation> {
    match provider {
        ProviderId::Google => w.google.revocations(),
        ProviderId::Monday => w.monday.revocations(),
    }
}

fn alive(w: &World, provider: ProviderId, token: &str) -> bool {
    match provider {
        ProviderId::Google => w.google.token_alive(token),
        ProviderId::Monday => w.monday.token_alive(token),
    }
}

fn consenting(provider: ProviderId) -> &'static str {
    match provider {
        ProviderId::Google => GOOGLE_SUB,
        ProviderId::Monday => MONDAY_USER,
    }
}

/// How many `connection.deleted` events the tenant's outbox holds for `id`.
async fn deleted_events(w: &World, scope: TenantScope, id: ConnectionId) -> usize {
    w.events(scope).await.iter().filter(|(t, c)| t == "connection.deleted" && *c == Some(id)).count()
}

/// Asserts the connection is hidden but still held for its job, and serves no token.
async fn assert_disconnecting(w: &World, scope: TenantScope, id: ConnectionId) {
    assert!(matches!(w.store.get_connection(scope, id).await, Err(StoreError::NotFound)), "hidden from reads");
    let held = w.store.connection_for_job(scope, id).await.expect("still there for its job");
    assert_eq!(held.status, ConnectionStatus::Disconnecting);
    assert!(w.store.credential_for_disconnect(scope, id).await.is_ok(), "the credential waits for the job");
    let token = w.tokens.fresh_access_token(scope, id).await;
    assert!(matches!(token, Err(TokenError::NotFound)), "no token for a disconnecting connection: {:?}", token.err());
}

/// Asserts the cleanup happened exactly once, with this audit action.
async fn assert_gone(w: &World, scope: TenantScope, id: ConnectionId, action: &str) {
    assert!(
        matches!(w.store.credential_for_disconnect(scope, id).await, Err(StoreError::NotFound)),
        "the credential is destroyed"
    );
    assert!(matches!(w.store.connection_for_job(scope, id).await, Err(StoreError::NotFound)), "tombstoned");
    assert_eq!(deleted_events(w, scope, id).await, 1, "connection.deleted exactly once");
    assert!(w.all_jobs(JobKind::SyncPurge).await >= 1, "the synced records' purge is queued");
    let audit = w.audit_actions(scope).await;
    let outcomes: Vec<&String> = audit.iter().filter(|a| a.starts_with("connection.disconnected")).collect();
    assert_eq!(outcomes, vec![action], "one audit record says what became of the grant");
    let token = w.tokens.fresh_access_token(scope, id).await;
    assert!(matches!(token, Err(TokenError::NotFound)), "no token for a deleted connection: {:?}", token.err());
}

/// Connects, makes the revocation endpoint behave as `behaviour`, disconnects (twice, the
/// second while the first is queued) and drives the worker until the job is done.
async fn disconnect_with(db: Db, provider: ProviderId, behaviour: RevokeBehaviour) {
    let Some(w) = World::new(db).await else { return };
    let (scope, alice) = w.user("tenant-a", "alice").await;
    let id = w.connected(scope, alice.id, provider, consenting(provider)).await;
    let refresh = w.stored_refresh_token(scope, id).await;
    match provider {
        ProviderId::Google => w.google.set_revoke_behaviour(behaviour.clone()),
        ProviderId::Monday => w.monday.set_revoke_behaviour(behaviour.clone()),
    }

    w.begin_disconnect(scope, id).await.expect("disconnect accepted");
    assert_disconnecting(&w, scope, id).await;
    w.begin_disconnect(scope, id).await.expect("a repeated disconnect is accepted");
    assert_eq!(w.all_jobs(JobKind::ConnectionDisconnect).await, 1, "the repeat merged into the queued job");

    let retried = matches!(behaviour, RevokeBehaviour::Status(_));
    if retried {
        for attempt in 1..REVOKE_ATTEMPTS {
            let ran = w.step().await;
            assert!(matches!(ran, Outcome::Done { status: JobStatus::Queued, .. }), "attempt {attempt}: {ran:?}");
            assert_eq!(revocations(&w, provider).len(), attempt as usize, "one revocation call per attempt");
            assert_disconnecting(&w, scope, id).await;
            assert_eq!(w.step().await, Outcome::Empty, "the retry waits for its backoff");
            w.clock.advance(chrono::Duration::hours(2));
        }
    }
    let ran = w.step().await;
    assert!(matches!(ran, Outcome::Done { status: JobStatus::Succeeded, .. }), "the job ends well: {ran:?}");
    assert_eq!(w.drain().await, Vec::new(), "nothing else to run");

    let calls = revocations(&w, provider);
    if behaviour == RevokeBehaviour::Normal {
        assert_gone(&w, scope, id, "connection.disconnected").await;
        assert_eq!(calls.len(), 1, "revoked exactly once");
        assert!(calls[0].token == refresh, "the refresh token was revoked");
        assert_eq!((calls[0].kind, calls[0].via_query, calls[0].effective), (TokenKind::Refresh, false, true));
        assert!(!alive(&w, provider, &refresh), "the grant is dead at the provider");
    } else {
        assert_gone(&w, scope, id, "connection.disconnected.grant_may_be_live").await;
        let expected = if retried { REVOKE_ATTEMPTS as usize } else { 1 };
        assert_eq!(calls.len(), expected, "revocation calls");
        assert!(calls.iter().all(|c| c.token == refresh && !c.effective), "the refresh token each time, to no effect");
        assert!(alive(&w, provider, &refresh), "the fake confirms the grant may be live");
    }
    let followed = w.google.requests().into_iter().chain(w.monday.requests()).any(|r| r.contains(REVOKE_REDIRECT_PATH));
    assert!(!followed, "a revocation redirect is never followed");

    assert_eq!(w.all_jobs(JobKind::SyncPurge).await, 1, "one purge of the synced records");
    let again = w.begin_disconnect(scope, id).await;
    assert!(matches!(again, Err(StoreError::NotFound)), "a deleted connection cannot be disconnected again");
    assert_eq!(w.drain().await, Vec::new());
    assert_eq!(revocations(&w, provider).len(), calls.len(), "never revoked twice");
}

async fn disconnect_revokes_a_google_grant(db: Db) {
    disconnect_with(db, ProviderId::Google, RevokeBehaviour::Normal).await
}
both_stores!(disconnect_revokes_a_google_grant);

async fn disconnect_revokes_a_monday_grant(db: Db) {
    disconnect_with(db, ProviderId::Monday, RevokeBehaviour::Normal).await
}
both_stores!(disconnect_revokes_a_monday_grant);

async fn disconnect_after_google_503s_until_attempts_run_out(db: Db) {
    disconnect_with(db, ProviderId::Google, RevokeBehaviour::Status(503)).await
}
both_stores!(disconnect_after_google_503s_until_attempts_run_out);

async fn disconnect_after_monday_503s_until_attempts_run_out(db: Db) {
    disconnect_with(db, ProviderId::Monday, RevokeBehaviour::Status(503)).await
}
both_stores!(disconnect_after_monday_503s_until_attempts_run_out);

async fn disconnect_when_monday_answers_success_false(db: Db) {
    disconnect_with(db, ProviderId::Monday, RevokeBehaviour::SuccessFalse).await
}
both_stores!(disconnect_when_monday_answers_success_false);

async fn disconnect_when_google_revocation_redirects(db: Db) {
    disconnect_with(db, ProviderId::Google, RevokeBehaviour::Redirect).await
}
both_stores!(disconnect_when_google_revocation_redirects);

async fn disconnect_when_monday_revocation_redirects(db: Db) {
    disconnect_with(db, ProviderId::Monday, RevokeBehaviour::Redirect).await
}
both_stores!(disconnect_when_monday_revocation_redirects);

async fn disconnect_when_google_revocation_is_oversized(db: Db) {
    disconnect_with(db, ProviderId::Google, RevokeBehaviour::Oversized).await
}
both_stores!(disconnect_when_google_revocation_is_oversized);

async fn disconnect_when_monday_revocation_is_oversized(db: Db) {
    disconnect_with(db, ProviderId::Monday, RevokeBehaviour::Oversized).await
}
both_stores!(disconnect_when_monday_revocation_is_oversized);

async fn a_grant_shared_with_another_tenant_is_not_revoked(db: Db) {
    let Some(w) = World::new(db).await else { return };
    let (a, alice) = w.user("tenant-a", "alice").await;
    let (b, bob) = w.user("tenant-b", "bob").await;
    // The same Google user consents to the same client for two tenants: one grant at Google.
    let id_a = w.connected(a, alice.id, ProviderId::Google, GOOGLE_SUB).await;
    let id_b = w.connected(b, bob.id, ProviderId::Google, GOOGLE_SUB).await;
    let refresh_b = w.stored_refresh_token(b, id_b).await;

    w.begin_disconnect(a, id_a).await.unwrap();
    let ran = w.drain().await;
    assert!(matches!(ran.as_slice(), [Outcome::Done { status: JobStatus::Succeeded, .. }]), "{ran:?}");
    assert!(w.google.revocations().is_empty(), "a shared grant is not revoked");
    assert_gone(&w, a, id_a, "connection.disconnected.grant_shared").await;

    // Tenant B's connection still works, through a forced refresh at the provider.
    assert!(w.google.token_alive(&refresh_b), "B's refresh token lives");
    w.google.expire_access_tokens();
    let refreshed = w.tokens.refresh(b, id_b, ProviderId::Google, None).await;
    let access = refreshed.unwrap_or_else(|e| panic!("B refreshes: {e}"));
    assert!(w.google.token_alive(secrecy::ExposeSecret::expose_secret(&access)), "B's new access token works");
    assert_eq!(w.google.refresh_calls(&refresh_b), 1, "B refreshed with its own refresh token");
    assert!(w.tokens.fresh_access_token(b, id_b).await.is_ok());
    let kept = w.store.get_connection(b, id_b).await.expect("B's connection is visible");
    assert_eq!(kept.status, ConnectionStatus::Active);
    let b_events = w.events(b).await;
    assert!(
        !b_events.iter().any(|(t, _)| t == "connection.deleted" || t == "connection.needs_reauth"),
        "nothing happened to B: {b_events:?}"
    );

    // Now B is the last one holding the grant: its disconnect revokes it.
    w.begin_disconnect(b, id_b).await.unwrap();
    w.drain().await;
    assert_eq!(w.google.revocations().len(), 1, "the last holder revokes");
    assert_gone(&w, b, id_b, "connection.disconnected").await;
    assert!(!w.google.token_alive(&refresh_b));
}
both_stores!(a_grant_shared_with_another_tenant_is_not_revoked);

async fn a_refresh_in_flight_finishes_before_the_disconnect_revokes(db: Db) {
    let Some(w) = World::new(db).await else { return };
    let (scope, alice) = w.user("tenant-a", "alice").await;
    let id = w.connected(scope, alice.id, ProviderId::Monday, MONDAY_USER).await;
    let old_refresh = w.stored_refresh_token(scope, id).await;

    let gate = w.monday.hold_refreshes();
    let refresh = tokio::spawn({
        let tokens = w.tokens.clone();
        async move { tokens.refresh(scope, id, ProviderId::Monday, None).await }
    });
    gate.arrived().await;

    w.begin_disconnect(scope, id).await.unwrap();
    let token = w.tokens.fresh_access_token(scope, id).await;
    assert!(matches!(token, Err(TokenError::NotFound)), "no token once disconnecting: {:?}", token.err());
    let mut job = tokio::spawn({
        let worker = w.worker.clone();
        async move { worker.try_execute_next().await }
    });
    // The job cannot take the credential's refresh lease while the refresh is held: it must
    // not finish (this bounded wait is an assertion of non-progress, not a wait for work).
    let blocked = tokio::time::timeout(Duration::from_millis(500), &mut job).await;
    assert!(blocked.is_err(), "the job waits for the refresh in flight");
    assert_eq!(w.jobs(JobKind::ConnectionDisconnect, JobStatus::Running).await, 1, "the job is running");
    assert!(w.monday.revocations().is_empty(), "nothing revoked while the refresh is held");
    // A repeated DELETE while the job runs is accepted and revokes nothing more.
    w.begin_disconnect(scope, id).await.expect("a repeated disconnect is accepted");

    gate.release();
    let refreshed = refresh.await.unwrap();
    let new_access = refreshed.unwrap_or_else(|e| panic!("the held refresh completes: {e}"));
    let ran = job.await.unwrap().unwrap();
    assert!(matches!(ran, Outcome::Done { status: JobStatus::Succeeded, .. }), "{ran:?}");
    let rest = w.drain().await;
    assert!(rest.iter().all(|o| matches!(o, Outcome::Done { status: JobStatus::Succeeded, .. })), "{rest:?}");

    assert_eq!(w.monday.presented_refresh_tokens().len(), 1, "one refresh");
    assert!(w.monday.presented_refresh_tokens()[0] == old_refresh, "it presented the old refresh token");
    let calls = w.monday.revocations();
    assert_eq!(calls.len(), 1, "revoked exactly once");
    let rotated = calls[0].token.clone();
    assert!(rotated != old_refresh, "the rotated refresh token (written by the refresh) was revoked");
    assert_eq!((calls[0].kind, calls[0].effective), (TokenKind::Refresh, true));
    assert!(!w.monday.token_alive(&old_refresh), "the old refresh token is dead (rotated)");
    assert!(!w.monday.token_alive(&rotated), "the rotated refresh token is dead (revoked)");
    assert!(!w.monday.token_alive(secrecy::ExposeSecret::expose_secret(&new_access)), "its access token died too");
    assert_gone(&w, scope, id, "connection.disconnected").await;
}
both_stores!(a_refresh_in_flight_finishes_before_the_disconnect_revokes);

async fn reconnecting_while_the_old_row_is_disconnecting(db: Db) {
    let Some(w) = World::new(db).await else { return };
    let (scope, alice) = w.user("tenant-a", "alice").await;
    let old = w.connected(scope, alice.id, ProviderId::Google, GOOGLE_SUB).await;
    w.begin_disconnect(scope, old).await.unwrap();
    // The user connects the same account again before the old row's job has run.
    let new = w.connected(scope, alice.id, ProviderId::Google, GOOGLE_SUB).await;
    assert_ne!(new, old, "a new connection, not the hidden one");
    let new_refresh = w.stored_refresh_token(scope, new).await;

    let ran = w.drain().await;
    assert!(matches!(ran.as_slice(), [Outcome::Done { status: JobStatus::Succeeded, .. }]), "{ran:?}");
    assert!(w.google.revocations().is_empty(), "Google keeps one grant per user and client: not revoked");
    assert_gone(&w, scope, old, "connection.disconnected.grant_shared").await;
    assert!(w.google.token_alive(&new_refresh), "the new connection's grant lives");
    assert!(w.tokens.refresh(scope, new, ProviderId::Google, None).await.is_ok(), "and refreshes");
    assert_eq!(w.store.get_connection(scope, new).await.unwrap().status, ConnectionStatus::Active);
}
both_stores!(reconnecting_while_the_old_row_is_disconnecting);
