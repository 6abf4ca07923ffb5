//! Rate budget, concurrency slot, circuit breaker and idempotency key scenarios: each step is
//! atomic in the store, so racing callers (tasks on separate connections) never over-admit.

use super::*;
use std::sync::Arc;

const SECOND_US: i64 = 1_000_000;

fn bucket(name: &str) -> BucketKey {
    BucketKey { provider: ProviderId::Google, key: format!("user:{name}"), bucket: "rpm".into() }
}

/// One unit per second, ten in a burst.
fn unit(force: bool) -> GcraStep {
    GcraStep { increment_us: SECOND_US, capacity_us: 10 * SECOND_US, force }
}

fn micros(t: DateTime<Utc>, us: i64) -> DateTime<Utc> {
    t + chrono::Duration::microseconds(us)
}

/// A bucket admits exactly capacity ÷ increment units at once, then refuses with the time the
/// next unit fits, and refills with time.
pub async fn gcra_admits_the_burst_then_refuses_until_it_refills(store: Arc<dyn Store>) {
    let (now, key) = (t0(), bucket("burst"));
    for i in 1..=10 {
        let verdict = store.gcra(&key, unit(false), now).await.unwrap();
        assert_eq!(verdict, GcraVerdict { admitted: true, retry_at: now, tat: secs(now, i) }, "unit {i}");
    }
    let refused = store.gcra(&key, unit(false), now).await.unwrap();
    assert_eq!(refused, GcraVerdict { admitted: false, retry_at: secs(now, 1), tat: secs(now, 10) });
    assert!(!store.gcra(&key, unit(false), micros(now, SECOND_US - 1)).await.unwrap().admitted, "not yet");
    let refilled = store.gcra(&key, unit(false), secs(now, 1)).await.unwrap();
    assert_eq!((refilled.admitted, refilled.tat), (true, secs(now, 11)));
    let later = secs(now, 5);
    let mut admitted = 0;
    while store.gcra(&key, unit(false), later).await.unwrap().admitted {
        admitted += 1;
    }
    assert_eq!(admitted, 4, "four seconds refill four units");
    let other = store.gcra(&bucket("other"), unit(false), now).await.unwrap();
    assert_eq!(other.tat, secs(now, 1), "buckets are independent");
}

/// A negative increment refunds but never moves the tat below now; a forced step applies
/// over capacity and the next unforced step waits for it.
pub async fn a_gcra_refund_stops_at_now_and_a_forced_step_applies_over_capacity(store: Arc<dyn Store>) {
    let (now, key) = (t0(), bucket("refund"));
    for _ in 0..3 {
        store.gcra(&key, unit(false), now).await.unwrap();
    }
    let refund = |us: i64| GcraStep { increment_us: us, capacity_us: 10 * SECOND_US, force: false };
    let refunded = store.gcra(&key, refund(-2 * SECOND_US), now).await.unwrap();
    assert_eq!((refunded.admitted, refunded.tat), (true, secs(now, 1)));
    let floored = store.gcra(&key, refund(-5 * SECOND_US), now).await.unwrap();
    assert_eq!((floored.admitted, floored.tat), (true, now), "never below now");
    let fresh = store.gcra(&bucket("fresh-refund"), refund(-SECOND_US), now).await.unwrap();
    assert_eq!(fresh.tat, now, "a refund on an empty bucket leaves it at now");

    let forced = GcraStep { increment_us: 20 * SECOND_US, capacity_us: 10 * SECOND_US, force: true };
    let verdict = store.gcra(&key, forced, now).await.unwrap();
    assert_eq!((verdict.admitted, verdict.tat), (true, secs(now, 20)), "force applies over capacity");
    let refused = store.gcra(&key, unit(false), now).await.unwrap();
    assert_eq!(refused, GcraVerdict { admitted: false, retry_at: secs(now, 11), tat: secs(now, 20) });
    let too_big = GcraStep { increment_us: 11 * SECOND_US, capacity_us: 10 * SECOND_US, force: false };
    let never = store.gcra(&bucket("too-big"), too_big, now).await.unwrap();
    assert_eq!(never, GcraVerdict { admitted: false, retry_at: secs(now, 1), tat: now });
}

/// Eight tasks hammering one bucket at the same instant never take more than its burst.
pub async fn concurrent_gcra_steps_never_admit_more_than_the_capacity(store: Arc<dyn Store>) {
    let (now, key) = (t0(), bucket("race"));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let mut admitted = 0;
                for _ in 0..5 {
                    if store.gcra(&key, unit(false), now).await.unwrap().admitted {
                        admitted += 1;
                    }
                }
                admitted
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += task.await.unwrap();
    }
    assert_eq!(admitted, 10, "exactly the burst of ten, across 40 racing steps");
    let after = store.gcra(&key, unit(false), now).await.unwrap();
    assert_eq!((after.admitted, after.tat), (false, secs(now, 10)));
}

/// N slots hold N holders; a release or a lapsed lease frees one; racing takers get exactly N.
pub async fn concurrency_slots_admit_n_holders_and_free_on_release_or_lapse(store: Arc<dyn Store>) {
    let (now, key) = (t0(), bucket("slots"));
    let until = secs(now, 30);
    let holders: Vec<uuid::Uuid> = (0..5).map(|_| uuid::Uuid::new_v4()).collect();
    for holder in &holders[..3] {
        assert!(store.acquire_slot(&key, 3, *holder, until, now).await.unwrap(), "one of three slots");
    }
    assert!(!store.acquire_slot(&key, 3, holders[3], until, now).await.unwrap(), "the fourth waits");
    store.release_slot(&key, holders[0]).await.unwrap();
    store.release_slot(&key, holders[0]).await.unwrap(); // a second release is a no-op
    assert!(store.acquire_slot(&key, 3, holders[3], until, now).await.unwrap(), "a release frees one");
    assert!(!store.acquire_slot(&key, 3, holders[4], until, secs(now, 29)).await.unwrap(), "all held");
    // holders[1], [2] took theirs until 30 s; [3] too: at 31 s every lease has lapsed.
    assert!(store.acquire_slot(&key, 3, holders[4], secs(now, 60), secs(now, 31)).await.unwrap(), "lapsed");

    let raced = bucket("slots-race");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, key) = (store.clone(), raced.clone());
            tokio::spawn(async move { store.acquire_slot(&key, 3, uuid::Uuid::new_v4(), until, now).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        taken += usize::from(task.await.unwrap());
    }
    assert_eq!(taken, 3, "eight racing takers of three slots: exactly three succeed");
}

fn policy() -> BreakerPolicy {
    BreakerPolicy { failure_threshold: 3, base_cooldown_ms: 1_000, max_cooldown_ms: 4_000 }
}

/// Closed → open at the threshold; one probe after the cooldown; a failed probe doubles the
/// cooldown up to the maximum; a success closes; a success on a healthy breaker writes nothing.
pub async fn a_breaker_opens_at_the_threshold_probes_once_and_backs_off(store: Arc<dyn Store>) {
    let (now, key) = (t0(), "connection:breaker-test");
    store.breaker_success(key, now).await.unwrap();
    assert_eq!(store.breaker(key).await.unwrap(), None, "a success on a missing breaker writes nothing");
    for n in 1..=2 {
        let b = store.breaker_failure(key, policy(), now).await.unwrap();
        assert_eq!((b.state, b.consecutive_failures), (BreakerState::Closed, n));
    }
    let open = store.breaker_failure(key, policy(), now).await.unwrap();
    assert_eq!((open.state, open.consecutive_failures, open.cooldown_ms), (BreakerState::Open, 3, 1_000));
    assert_eq!((open.opened_at, open.next_probe_at), (Some(now), Some(secs(now, 1))));
    assert!(!store.breaker_try_probe(key, micros(now, 999_999)).await.unwrap(), "no probe before the cooldown");
    let late = store.breaker_failure(key, policy(), micros(now, 500_000)).await.unwrap();
    assert_eq!(
        (late.state, late.consecutive_failures, late.next_probe_at),
        (BreakerState::Open, 4, Some(secs(now, 1)))
    );

    let mut at = secs(now, 1);
    for cooldown_s in [2, 4, 4] {
        let (s1, s2) = (store.clone(), store.clone());
        let (a, b) = tokio::join!(s1.breaker_try_probe(key, at), s2.breaker_try_probe(key, at));
        assert!(a.unwrap() ^ b.unwrap(), "exactly one of two racing callers is the probe");
        assert_eq!(store.breaker(key).await.unwrap().unwrap().state, BreakerState::HalfOpen);
        let reopened = store.breaker_failure(key, policy(), at).await.unwrap();
        assert_eq!(reopened.state, BreakerState::Open);
        assert_eq!((reopened.cooldown_ms, reopened.next_probe_at), (cooldown_s * 1_000, Some(secs(at, cooldown_s))));
        at = secs(at, cooldown_s);
    }
    assert!(store.breaker_try_probe(key, at).await.unwrap());
    store.breaker_success(key, at).await.unwrap();
    let closed = store.breaker(key).await.unwrap().unwrap();
    assert_eq!((closed.state, closed.consecutive_failures, closed.cooldown_ms), (BreakerState::Closed, 0, 0));
    assert_eq!((closed.opened_at, closed.next_probe_at, closed.updated_at), (None, None, at));
    store.breaker_success(key, secs(at, 5)).await.unwrap();
    assert_eq!(store.breaker(key).await.unwrap().unwrap().updated_at, at, "a healthy breaker is not rewritten");
}

/// Started, InFlight, Replay and Mismatch; expired and stale keys are taken over; an abandoned
/// key starts again; keys are per tenant and connection.
pub async fn idempotency_keys_start_once_replay_and_expire(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(store.as_ref(), "org:idempotency").await;
    let connection = store.create_connection(new_connection(&user, "idem-1")).await.unwrap().id;
    let stale = chrono::Duration::seconds(60);
    let expires = secs(now, 3600);
    let begin = |key: &'static str, hash: &'static [u8], at: DateTime<Utc>| {
        let store = store.clone();
        async move { store.begin_idempotent(scope, connection, key, hash, secs(at, 3600), stale, at).await.unwrap() }
    };
    assert_eq!(begin("k1", b"body-a", now).await, IdempotencyBegin::Started);
    assert_eq!(begin("k1", b"body-a", secs(now, 1)).await, IdempotencyBegin::InFlight);
    assert_eq!(begin("k1", b"body-b", secs(now, 1)).await, IdempotencyBegin::Mismatch);
    store.finish_idempotent(scope, connection, "k1", 201, b"sealed answer".to_vec()).await.unwrap();
    let replay = IdempotencyBegin::Replay { status: 201, response: b"sealed answer".to_vec() };
    assert_eq!(begin("k1", b"body-a", secs(now, 2)).await, replay);
    assert_eq!(begin("k1", b"body-b", secs(now, 2)).await, IdempotencyBegin::Mismatch);
    store.abandon_idempotent(scope, connection, "k1").await.unwrap();
    assert_eq!(begin("k1", b"body-a", secs(now, 3)).await, replay, "an answered key is not abandoned");
    assert_eq!(begin("k1", b"body-b", expires).await, IdempotencyBegin::Started, "an expired key is absent");

    assert_eq!(begin("k2", b"body", now).await, IdempotencyBegin::Started);
    assert_eq!(begin("k2", b"body", secs(now, 59)).await, IdempotencyBegin::InFlight);
    assert_eq!(begin("k2", b"other", secs(now, 61)).await, IdempotencyBegin::Mismatch, "only the same body takes over");
    assert_eq!(begin("k2", b"body", secs(now, 60)).await, IdempotencyBegin::Started, "stale: taken over");
    assert_eq!(
        begin("k2", b"body", secs(now, 61)).await,
        IdempotencyBegin::InFlight,
        "the takeover restarted the clock"
    );
    store.abandon_idempotent(scope, connection, "k2").await.unwrap();
    assert_eq!(begin("k2", b"body", secs(now, 62)).await, IdempotencyBegin::Started, "abandoned: a retry starts");

    let (other_scope, other_user) = tenant_with_user(store.as_ref(), "org:idempotency-other").await;
    let other_connection = store.create_connection(new_connection(&other_user, "idem-2")).await.unwrap().id;
    let theirs = store.begin_idempotent(other_scope, other_connection, "k1", b"x", expires, stale, now).await.unwrap();
    assert_eq!(theirs, IdempotencyBegin::Started, "another tenant's key of the same name is its own");
    let second = store.create_connection(new_connection(&user, "idem-3")).await.unwrap().id;
    let mine = store.begin_idempotent(scope, second, "k1", b"x", expires, stale, now).await.unwrap();
    assert_eq!(mine, IdempotencyBegin::Started, "keys are per connection");
    let (s1, s2) = (store.clone(), store.clone());
    let (a, b) = tokio::join!(
        s1.begin_idempotent(scope, connection, "k3", b"race", expires, stale, now),
        s2.begin_idempotent(scope, connection, "k3", b"race", expires, stale, now)
    );
    let mut outcomes = [a.unwrap(), b.unwrap()].map(|o| o == IdempotencyBegin::Started);
    outcomes.sort();
    assert_eq!(outcomes, [false, true], "of two racing claims exactly one starts");
}
