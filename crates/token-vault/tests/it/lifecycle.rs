//! The token lifecycle against a real store (SQLite and Postgres) and the provider fakes, with
//! no Patchbay HTTP server: single-flight refreshes in one process and across instances, dead
//! grants, monday.com's rotating refresh tokens, key rotation racing a refresh, key retirement
//! with pending connects, and the refresh sweep.
//!
//! Every scenario runs on both stores (`lifecycle::sqlite::…`, `lifecycle::postgres::…`).
//! Tokens are compared, never printed: assertions on them use `assert!` with a fixed message.

mod support;

use crate::support::vault;
use chrono::Utc;
use futures::future::join_all;
use patchbay_oauth::{ProviderId, DEFAULT_REFRESH_MARGIN};
use patchbay_store::{ConnectionId, ConnectionStatus, CredentialStore, OAuthState, StoreError, TokenFlow};
use patchbay_testkit::conformance::{new_session, tenant_with_user};
use patchbay_token_vault::keys::{self, KeyCount, KeyError, RotateProgress};
use patchbay_token_vault::{Aad, Purpose, RefreshSweep, SweepReport, TokenError, Tokens, VaultError};
use secrecy::SecretString;
use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use support::{expires_after, refresh_text, text, Seeded, World};

const K1: u32 = 1;
const K2: u32 = 2;

/// Runs each scenario on SQLite and on Postgres (skipped, with a printed "skipped", only when
/// `PATCHBAY_TEST_POSTGRES=skip`, as testkit does).
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let world = super::World::start(super::support::Backend::Sqlite).await;
                    super::$scenario(world.expect("SQLite is always available")).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let Some(world) = super::World::start(super::support::Backend::Postgres).await else { return };
                    super::$scenario(world).await;
                }
            )*
        }
    };
}

on_both_stores!(
    twenty_concurrent_calls_on_an_expired_google_token_refresh_once,
    two_instances_sharing_a_store_refresh_an_expired_token_once,
    a_dead_google_grant_needs_reauth_after_one_refresh_attempt,
    a_dead_grant_is_declared_dead_even_when_a_rewrap_lands_after_the_failed_refresh,
    a_reconnect_during_a_failing_refresh_wins_over_the_dead_grant,
    a_monday_legacy_grant_has_nothing_to_refresh_with_and_needs_reauth,
    monday_rotated_refresh_tokens_are_stored_and_each_is_presented_once,
    concurrent_monday_refreshes_on_two_instances_never_present_a_refresh_token_twice,
    key_rotation_racing_a_held_monday_refresh_keeps_the_rotated_refresh_token,
    retiring_a_key_waits_for_the_pending_connects_sealed_under_it,
    the_refresh_sweep_renews_exactly_the_tokens_expiring_within_its_horizon,
);

fn margin() -> chrono::Duration {
    chrono::Duration::from_std(DEFAULT_REFRESH_MARGIN).unwrap()
}

/// What one concurrent caller does.
#[derive(Clone, Copy)]
enum Call {
    /// `fresh_access_token`: refreshes only when the token is due.
    Fresh,
    /// `refresh(.., None)`: a forced refresh, as after a provider 401.
    Forced(ProviderId),
}

impl Call {
    async fn run(self, tokens: Arc<Tokens>, at: Seeded) -> Result<SecretString, TokenError> {
        match self {
            Call::Fresh => tokens.fresh_access_token(at.scope, at.id).await,
            Call::Forced(provider) => tokens.refresh(at.scope, at.id, provider, None).await,
        }
    }
}

/// Runs every call as its own task and returns the tokens' text; panics if one fails.
async fn in_parallel(at: Seeded, calls: Vec<(Arc<Tokens>, Call)>) -> Vec<String> {
    let tasks = calls.into_iter().map(|(tokens, call)| tokio::spawn(call.run(tokens, at)));
    join_all(tasks)
        .await
        .into_iter()
        .map(|joined| match joined.expect("the task finishes") {
            Ok(token) => text(&token).to_owned(),
            Err(e) => panic!("a call failed: {e}"),
        })
        .collect()
}

fn distinct(tokens: &[String]) -> usize {
    tokens.iter().collect::<HashSet<_>>().len()
}

/// Asserts the connection is `status` (with `reason`), its credential is destroyed and the
/// outbox announced it once with `event`.
async fn assert_dead(w: &World, at: Seeded, status: ConnectionStatus, reason: &str, event: &str) {
    let connection = w.connection(at).await;
    assert_eq!((connection.status, connection.status_reason.as_deref()), (status, Some(reason)));
    assert!(
        matches!(w.store.get_credential(at.scope, at.id).await, Err(StoreError::NotFound)),
        "the dead grant's credential is destroyed"
    );
    assert_eq!(w.store.credential_key_usage().await.unwrap(), vec![], "no ciphertext of it is left");
    let events = w.events(at.scope).await;
    assert_eq!(events.iter().filter(|e| *e == event).count(), 1, "one {event} in the outbox: {events:?}");
}

/// security.md D1: a burst of calls on an expired token costs one provider refresh, and every
/// caller gets the same new token.
async fn twenty_concurrent_calls_on_an_expired_google_token_refresh_once(w: World) {
    let tokens = w.tokens(&[K1], "instance-a");
    let set = w.google_grant("g-alice", 60).await; // inside the refresh margin: due
    let at = w.seed(&tokens, "org:alice", TokenFlow::Google, &set).await;

    let got = in_parallel(at, (0..20).map(|_| (tokens.clone(), Call::Fresh)).collect()).await;

    assert_eq!(w.google.token_calls("refresh_token"), 1, "exactly one refresh at the provider");
    assert_eq!(w.google.refresh_calls(refresh_text(&set)), 1);
    assert_eq!(distinct(&got), 1, "all 20 calls got the same token");
    assert!(got[0] != text(&set.access_token), "a new access token, not the expired one");
    assert!(w.google.token_alive(&got[0]), "the token handed out works at the provider");
    let (credential, stored) = w.stored(&tokens, at).await;
    assert_eq!(credential.version, at.version + 1, "one write");
    assert_eq!(credential.refresh_lease_owner, None, "the write gives the lease back");
    assert!(text(&stored.access_token) == got[0], "the stored token is the one handed out");
    assert!(refresh_text(&stored) == refresh_text(&set), "Google does not rotate: the refresh token is kept");
    assert!(expires_after(&stored, Utc::now() + margin()), "fresh beyond the refresh margin");
    assert_eq!(w.connection(at).await.status, ConnectionStatus::Active);
}

/// The cross-instance lease: while instance A's refresh is at the provider, instance B is
/// refused the lease and waits for A's write instead of refreshing itself.
async fn two_instances_sharing_a_store_refresh_an_expired_token_once(w: World) {
    let a = w.tokens(&[K1], "instance-a");
    let b = w.tokens(&[K1], "instance-b");
    let set = w.google_grant("g-bob", 60).await;
    let at = w.seed(&a, "org:bob", TokenFlow::Google, &set).await;

    let gate = w.google.hold_refreshes();
    let first = tokio::spawn(Call::Fresh.run(a.clone(), at));
    gate.arrived().await;
    let (credential, _) = w.stored(&a, at).await;
    assert_eq!(credential.refresh_lease_owner.as_deref(), Some("instance-a"), "A holds the lease while it refreshes");
    let burst = (0..10).map(|_| (a.clone(), Call::Fresh)).chain((0..10).map(|_| (b.clone(), Call::Fresh)));
    let others = tokio::spawn(in_parallel(at, burst.collect()));
    w.store.lease_refused_to("instance-b").await;
    gate.release();

    let first = text(&first.await.unwrap().expect("A's refresh succeeds")).to_owned();
    let mut got = others.await.unwrap();
    got.push(first);
    assert_eq!(w.google.token_calls("refresh_token"), 1, "exactly one refresh across both instances");
    assert_eq!(distinct(&got), 1, "all 21 calls got the same token");
    let (credential, stored) = w.stored(&a, at).await;
    assert_eq!(credential.version, at.version + 1, "one write");
    assert!(text(&stored.access_token) == got[0]);
    let granted: Vec<_> = w.store.lease_attempts().into_iter().filter(|(_, granted)| *granted).collect();
    assert_eq!(granted.iter().filter(|(owner, _)| owner == "instance-a").count(), 1, "A took the lease once");
}

/// A grant the user revoked: one refresh attempt, then `needs_reauth` with its event, and the
/// ciphertext is destroyed; later calls do not ask the provider again.
async fn a_dead_google_grant_needs_reauth_after_one_refresh_attempt(w: World) {
    let tokens = w.tokens(&[K1], "instance-a");
    let set = w.google_grant("g-carol", 60).await;
    let at = w.seed(&tokens, "org:carol", TokenFlow::Google, &set).await;
    w.google.kill_refresh_tokens_of("g-carol");

    let result = tokens.fresh_access_token(at.scope, at.id).await;
    assert!(matches!(&result, Err(TokenError::NeedsReauth(reason)) if reason == "invalid_grant"), "{result:?}");
    assert_eq!(w.google.token_calls("refresh_token"), 1, "one refresh attempt, no retry loop");
    assert_dead(&w, at, ConnectionStatus::NeedsReauth, "invalid_grant", "connection.needs_reauth").await;

    let again = tokens.fresh_access_token(at.scope, at.id).await;
    assert!(matches!(again, Err(TokenError::NotFound)), "{again:?}");
    assert_eq!(w.google.token_calls("refresh_token"), 1, "a dead connection is not refreshed again");
}

/// The re-read before declaring a grant dead must tell a newer grant from a re-encryption of
/// the same one: a `vault rotate` rewrap landing right after the failed refresh changes the
/// row's version but not its (dead) refresh token.
async fn a_dead_grant_is_declared_dead_even_when_a_rewrap_lands_after_the_failed_refresh(w: World) {
    let tokens = w.tokens(&[K1, K2], "instance-a");
    let set = w.google_grant("g-erin", 60).await;
    let at = w.seed(&tokens, "org:erin", TokenFlow::Google, &set).await;
    w.google.kill_refresh_tokens_of("g-erin");
    let moved = Arc::new(AtomicI64::new(0));
    let (store, counter) = (w.store.clone(), moved.clone());
    w.store.after_next_release(Box::pin(async move {
        let done = keys::rotate(&*store, &vault(&[K2, K1]), 10, |_, _| {}).await.expect("rotate");
        counter.store(done, Ordering::SeqCst);
    }));

    let result = tokens.fresh_access_token(at.scope, at.id).await;
    assert_eq!(moved.load(Ordering::SeqCst), 1, "the rewrap landed between the failed refresh and the re-read");
    assert!(matches!(&result, Err(TokenError::NeedsReauth(reason)) if reason == "invalid_grant"), "{result:?}");
    assert_eq!(w.google.token_calls("refresh_token"), 1);
    assert_dead(&w, at, ConnectionStatus::NeedsReauth, "invalid_grant", "connection.needs_reauth").await;
}

/// The other side of that re-read: a reconnect that stores a new grant while the old grant's
/// refresh is failing at the provider wins — the caller gets the new grant's token and the
/// connection stays active.
async fn a_reconnect_during_a_failing_refresh_wins_over_the_dead_grant(w: World) {
    let tokens = w.tokens(&[K1], "instance-a");
    let set = w.google_grant("g-frank", 60).await;
    let at = w.seed(&tokens, "org:frank", TokenFlow::Google, &set).await;

    let gate = w.google.hold_refreshes();
    let refresh = tokio::spawn(Call::Fresh.run(tokens.clone(), at));
    gate.arrived().await;
    w.google.kill_refresh_tokens_of("g-frank");
    let renewed = w.google_consent("g-frank", 3599).await;
    w.reconnect(&tokens, "org:frank", at, TokenFlow::Google, &renewed).await;
    gate.release();

    let token = refresh.await.unwrap().expect("the new grant's token");
    assert_eq!(w.google.token_calls("refresh_token"), 1, "the old grant's one failed refresh");
    assert!(text(&token) == text(&renewed.access_token), "the reconnect's access token");
    let (credential, stored) = w.stored(&tokens, at).await;
    assert_eq!(credential.version, at.version + 1, "the reconnect's write only");
    assert!(refresh_text(&stored) == refresh_text(&renewed), "the new grant is kept");
    assert_eq!(w.connection(at).await.status, ConnectionStatus::Active);
    assert!(!w.events(at.scope).await.iter().any(|e| e == "connection.needs_reauth"));
}

/// monday.com legacy tokens never expire and carry no refresh token. They are served as they
/// are; a forced refresh (after a provider 401) has nothing to refresh with: `needs_reauth`,
/// without any provider call.
///
/// `ErrorClass::Revoked` (status `revoked`, event `connection.revoked`) cannot come out of a
/// refresh: `classify` answers it only for a monday.com legacy 401 from the *API*, never for a
/// token-endpoint answer, and the legacy flow never reaches the token endpoint for a refresh.
async fn a_monday_legacy_grant_has_nothing_to_refresh_with_and_needs_reauth(w: World) {
    let tokens = w.tokens(&[K1], "instance-a");
    let set = w.monday_legacy_grant();
    let at = w.seed(&tokens, "org:legacy", TokenFlow::MondayLegacy, &set).await;

    let served = tokens.fresh_access_token(at.scope, at.id).await.expect("a legacy token is served");
    assert!(text(&served) == text(&set.access_token), "the legacy token itself");
    let result = tokens.refresh(at.scope, at.id, ProviderId::Monday, None).await;
    assert!(matches!(&result, Err(TokenError::NeedsReauth(reason)) if reason == "no_refresh_token"), "{result:?}");
    assert_eq!(w.monday.refresh_calls() + w.monday.token_calls("legacy"), 0, "no provider call");
    assert_dead(&w, at, ConnectionStatus::NeedsReauth, "no_refresh_token", "connection.needs_reauth").await;
    assert!(!w.events(at.scope).await.iter().any(|e| e == "connection.revoked"));
}

/// monday.com v2 rotates the refresh token on every refresh: the new one is stored, the old one
/// is dead at the provider, and the next refresh presents the new one.
async fn monday_rotated_refresh_tokens_are_stored_and_each_is_presented_once(w: World) {
    let tokens = w.tokens(&[K1], "instance-a");
    let set = w.monday_grant(60).await;
    let at = w.seed(&tokens, "org:monday", TokenFlow::MondayV2, &set).await;
    let rt0 = refresh_text(&set).to_owned();

    let first = tokens.fresh_access_token(at.scope, at.id).await.expect("the first refresh");
    assert_eq!(w.monday.refresh_calls(), 1);
    let (credential, stored) = w.stored(&tokens, at).await;
    let rt1 = refresh_text(&stored).to_owned();
    assert_eq!(credential.version, at.version + 1);
    assert!(text(&stored.access_token) == text(&first), "the stored access token is the one handed out");
    assert!(rt1 != rt0, "the rotated refresh token is stored");
    assert!(!w.monday.token_alive(&rt0), "the old refresh token is dead at the provider");
    assert!(w.monday.token_alive(&rt1), "the stored refresh token works");

    let second = tokens.refresh(at.scope, at.id, ProviderId::Monday, None).await.expect("the second refresh");
    let (credential, stored) = w.stored(&tokens, at).await;
    let rt2 = refresh_text(&stored).to_owned();
    assert_eq!(credential.version, at.version + 2);
    assert!(text(&stored.access_token) == text(&second));
    assert!(w.monday.presented_refresh_tokens() == [rt0, rt1.clone()], "each refresh presented the stored token");
    assert!(!w.monday.token_alive(&rt1) && w.monday.token_alive(&rt2), "rotated again");
    assert_eq!(w.connection(at).await.status, ConnectionStatus::Active);
}

/// Refresh-token reuse kills a monday.com grant, so concurrent refreshes — in one process and
/// across instances, on demand and forced — must present each refresh token at most once.
async fn concurrent_monday_refreshes_on_two_instances_never_present_a_refresh_token_twice(w: World) {
    let a = w.tokens(&[K1], "instance-a");
    let b = w.tokens(&[K1], "instance-b");
    let set = w.monday_grant(60).await;
    let at = w.seed(&a, "org:monday-burst", TokenFlow::MondayV2, &set).await;

    let mut calls = Vec::new();
    for tokens in [&a, &b] {
        for _ in 0..6 {
            calls.push((tokens.clone(), Call::Fresh));
            calls.push((tokens.clone(), Call::Forced(ProviderId::Monday)));
        }
    }
    in_parallel(at, calls).await;

    let presented = w.monday.presented_refresh_tokens();
    assert!(!presented.is_empty() && presented.len() <= 24, "{} refreshes", presented.len());
    assert_eq!(distinct(&presented), presented.len(), "no refresh token was presented twice");
    assert!(presented.iter().all(|t| !w.monday.token_alive(t)), "every presented token was rotated away");
    let (credential, stored) = w.stored(&a, at).await;
    assert!(w.monday.token_alive(refresh_text(&stored)), "the grant is alive: the stored refresh token works");
    assert_eq!(credential.version, at.version + presented.len() as i64, "one write per refresh");
    assert_eq!(w.connection(at).await.status, ConnectionStatus::Active);
    assert!(!w.events(at.scope).await.iter().any(|e| e == "connection.needs_reauth"));
    b.refresh(at.scope, at.id, ProviderId::Monday, None).await.expect("the grant still refreshes");
}

/// `vault rotate` (k2 now primary) runs while an instance still on the old ring (k1 primary)
/// has a monday.com refresh at the provider: rotate leaves the leased row alone, the refresh
/// stores the rotated refresh token, and rotate then moves that write to k2. Nothing is lost
/// and the version only goes up.
async fn key_rotation_racing_a_held_monday_refresh_keeps_the_rotated_refresh_token(w: World) {
    let old_fleet = w.tokens(&[K1, K2], "old-fleet");
    let set = w.monday_grant(60).await;
    let at = w.seed(&old_fleet, "org:rotate", TokenFlow::MondayV2, &set).await;
    let rt0 = refresh_text(&set).to_owned();

    let gate = w.monday.hold_refreshes();
    let refresh = tokio::spawn(Call::Fresh.run(old_fleet.clone(), at));
    gate.arrived().await;
    let (credential, _) = w.stored(&old_fleet, at).await;
    assert_eq!((credential.refresh_lease_owner.as_deref(), credential.key_id), (Some("old-fleet"), K1));

    let (tried, mut tries) = tokio::sync::mpsc::unbounded_channel();
    let store = w.store.clone();
    let rotation = tokio::spawn(async move {
        let new_primary = vault(&[K2, K1]);
        let progress = move |p: RotateProgress, failure: Option<(ConnectionId, &VaultError)>| {
            let _ = tried.send((p, failure.is_some()));
        };
        keys::rotate(&*store, &new_primary, 10, progress).await
    });
    let (first_try, failed) = tries.recv().await.expect("rotate reports the row it tried");
    assert_eq!((first_try.done, failed), (0, false), "the leased row is left to the refresh");
    let (credential, _) = w.stored(&old_fleet, at).await;
    assert_eq!((credential.key_id, credential.version), (K1, at.version), "untouched while the refresh is out");
    gate.release();

    let token = refresh.await.unwrap().expect("the refresh succeeds");
    let moved = rotation.await.unwrap().expect("rotate finishes");
    assert_eq!(moved, 1, "rotate moved the refreshed row");
    // Deploy 3: k1 is gone from the ring; the row reads with k2 alone.
    let new_fleet = w.tokens(&[K2], "new-fleet");
    let (credential, stored) = w.stored(&new_fleet, at).await;
    assert_eq!(credential.key_id, K2);
    assert_eq!(credential.version, at.version + 2, "the refresh's write, then rotate's rewrap");
    assert!(text(&stored.access_token) == text(&token), "the refreshed access token");
    let rt1 = refresh_text(&stored).to_owned();
    assert!(rt1 != rt0 && w.monday.token_alive(&rt1), "the rotated refresh token survived the rewrap");
    assert!(!w.monday.token_alive(&rt0));
    let ring = vault(&[K2, K1]).ring().clone();
    keys::check_retire(&*w.store.inner, &ring, K1).await.expect("k1 encrypts nothing any more");

    new_fleet.refresh(at.scope, at.id, ProviderId::Monday, None).await.expect("the next refresh works");
    assert!(w.monday.presented_refresh_tokens() == [rt0, rt1], "each refresh token presented once");
    assert_eq!(w.connection(at).await.status, ConnectionStatus::Active);
}

/// A connect started before the key moved holds its PKCE verifier under the old key: retiring
/// that key is refused until the connect's state is consumed (or has expired).
async fn retiring_a_key_waits_for_the_pending_connects_sealed_under_it(w: World) {
    let store = &*w.store.inner;
    let now = Utc::now();
    let new_fleet = w.tokens(&[K2, K1], "new-fleet");
    let set = w.google_grant("g-dan", 3599).await;
    w.seed(&new_fleet, "org:dan", TokenFlow::Google, &set).await;
    let (_, user) = tenant_with_user(store, "org:pending").await;
    let session = store.create_connect_session(new_session(&user, 7, now + chrono::Duration::minutes(10))).await;
    let session = session.unwrap();
    let state = |seed: u8, created_at, expires_at| OAuthState {
        state_sha256: [seed; 32],
        provider: ProviderId::Monday,
        tenant_id: user.tenant_id,
        user_id: user.id,
        session_id: session.id,
        pkce_verifier: Some(
            vault(&[K1])
                .encrypt(b"verifier-sealed-under-k1", &Aad::new(Purpose::PkceVerifier).with("state", [seed; 32])),
        ),
        binding_sha256: [seed; 32],
        redirect_uri: "https://patchbay.test/oauth/monday/callback".into(),
        created_at,
        expires_at,
    };
    store.create_oauth_state(state(1, now, now + chrono::Duration::minutes(10))).await.unwrap();
    let ring = vault(&[K2, K1]).ring().clone();

    let usage = keys::key_usage(store).await.unwrap();
    assert_eq!(
        usage.get(&K1),
        Some(&KeyCount { credentials: 0, pending_verifiers: 1, records: 0, webhooks: 0 }),
        "{usage:?}"
    );
    assert_eq!(
        usage.get(&K2),
        Some(&KeyCount { credentials: 1, pending_verifiers: 0, records: 0, webhooks: 0 }),
        "{usage:?}"
    );
    let refused = keys::check_retire(store, &ring, K1).await;
    assert!(
        matches!(refused, Err(KeyError::InUse { id: K1, credentials: 0, records: 0, pending: 1, webhooks: 0 })),
        "{refused:?}"
    );

    assert!(store.consume_oauth_state(&[1; 32], Utc::now()).await.unwrap().is_some(), "the connect finishes");
    keys::check_retire(store, &ring, K1).await.expect("accepted once no pending connect uses k1");

    let created = now - chrono::Duration::minutes(11);
    store.create_oauth_state(state(2, created, now - chrono::Duration::seconds(1))).await.unwrap();
    keys::check_retire(store, &ring, K1).await.expect("an expired state's verifier does not hold k1");
    assert_eq!(keys::key_usage(store).await.unwrap().get(&K1), None);
    let primary = keys::check_retire(store, &ring, K2).await;
    assert!(matches!(primary, Err(KeyError::Primary(K2))), "{primary:?}");
}

/// One sweep step renews exactly the tokens that expire before `now + horizon` — including
/// those still outside the refresh margin — and leaves the others (and never-expiring legacy
/// tokens) alone. `step(now)` judges by the `now` it is given.
async fn the_refresh_sweep_renews_exactly_the_tokens_expiring_within_its_horizon(w: World) {
    let tokens = w.tokens(&[K1], "sweeper");
    let horizon = chrono::Duration::minutes(15);
    let mut seeded = Vec::new();
    for (sub, expires_in) in [("g-due", 60), ("g-soon", 600), ("g-later", 3599)] {
        let set = w.google_grant(sub, expires_in).await;
        let at = w.seed(&tokens, &format!("org:{sub}"), TokenFlow::Google, &set).await;
        seeded.push((refresh_text(&set).to_owned(), at));
    }
    let legacy = w.seed(&tokens, "org:legacy", TokenFlow::MondayLegacy, &w.monday_legacy_grant()).await;
    let store: Arc<dyn CredentialStore> = w.store.clone();
    let sweep = RefreshSweep::new(store, tokens.clone(), horizon);

    let start = Utc::now();
    assert_eq!(sweep.step(start).await, SweepReport { refreshed: 2, failed: 0 });
    let calls: Vec<usize> = seeded.iter().map(|(rt, _)| w.google.refresh_calls(rt)).collect();
    assert_eq!(calls, [1, 1, 0], "the 1-minute and 10-minute tokens are renewed, the 1-hour one is not");
    for (i, (_, at)) in seeded.iter().enumerate() {
        let (credential, stored) = w.stored(&tokens, *at).await;
        assert_eq!(credential.version, at.version + calls[i] as i64, "token {i}");
        assert!(expires_after(&stored, start + horizon), "token {i} now lasts beyond the horizon");
    }
    assert_eq!(w.stored(&tokens, legacy).await.0.version, legacy.version, "legacy tokens are never swept");
    assert_eq!(w.monday.refresh_calls() + w.monday.token_calls("legacy"), 0);

    assert_eq!(sweep.step(Utc::now()).await, SweepReport::default(), "nothing is due right after");
    assert_eq!(w.google.token_calls("refresh_token"), 2);

    // A step dated 50 minutes on finds all three (now 1-hour) tokens within its horizon.
    assert_eq!(sweep.step(Utc::now() + chrono::Duration::minutes(50)).await, SweepReport { refreshed: 3, failed: 0 });
    let calls: Vec<usize> = seeded.iter().map(|(rt, _)| w.google.refresh_calls(rt)).collect();
    assert_eq!(calls, [2, 2, 1]);
}
