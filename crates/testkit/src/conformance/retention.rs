//! Retention: what each prune deletes and, as much, what it keeps — a pending inbox event, a
//! dedup key younger than 75 hours, a pending (or redriven) delivery, an undispatched outbox
//! event or one a delivery still refers to, a channel not a day past its expiry.

use super::sync::active_connection;
use super::{t0, tenant_with_user, webhooks::delivery};
use chrono::{DateTime, Duration, Utc};
use patchbay_store::*;
use std::sync::Arc;

/// Calls `prune` with `limit` until a call deletes less than a full batch; answers the total
/// and asserts that no call deleted more than `limit`.
async fn drain<F, Fut>(limit: u32, mut prune: F) -> u64
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = StoreResult<u64>>,
{
    let mut total = 0;
    loop {
        let deleted = prune(limit).await.expect("prune");
        assert!(deleted <= u64::from(limit), "a batch is bounded by its limit");
        total += deleted;
        if deleted < u64::from(limit) {
            return total;
        }
    }
}

/// Stores an inbox event received at `received_at` and leaves it in `settle` (or pending).
async fn inbox_event(
    store: &dyn Store,
    tenant: TenantId,
    key: &str,
    received_at: DateTime<Utc>,
    settle: Option<WebhookSettle>,
) -> WebhookEventId {
    let event = NewWebhookEvent { received_at, ..delivery(tenant, "src", key) };
    let id = event.id;
    store.insert_webhook_events(vec![event]).await.expect("insert");
    if let Some(settle) = settle {
        store.start_webhook_attempt(id).await.expect("start").expect("pending");
        assert!(store.settle_webhook_event(id, &settle).await.expect("settle"));
    }
    id
}

pub async fn inbox_retention_deletes_settled_events_past_their_period_and_never_a_young_dedup_key(
    store: Arc<dyn Store>,
) {
    let now = t0();
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme-retention").await;
    let t = acme.tenant_id();
    let processed = || Some(WebhookSettle::Processed);
    let failed = || Some(WebhookSettle::Failed("no applier".into()));
    let kept = [
        ("processed 74 h ago", inbox_event(&*store, t, "p74h", now - Duration::hours(74), processed()).await),
        ("failed 8 days ago", inbox_event(&*store, t, "f8d", now - Duration::days(8), failed()).await),
        ("pending 40 days ago", inbox_event(&*store, t, "pending", now - Duration::days(40), None).await),
        ("processed just now", inbox_event(&*store, t, "pnow", now, processed()).await),
    ];
    let deleted = [
        ("processed 76 h ago", inbox_event(&*store, t, "p76h", now - Duration::hours(76), processed()).await),
        ("processed 8 days ago", inbox_event(&*store, t, "p8d", now - Duration::days(8), processed()).await),
        ("failed 31 days ago", inbox_event(&*store, t, "f31d", now - Duration::days(31), failed()).await),
    ];

    // One hour asked for processed events: the 75-hour dedup floor wins.
    let cutoffs = InboxCutoffs::new(now, Duration::hours(1), Duration::days(30));
    let total = drain(2, |limit| {
        let store = store.clone();
        async move { store.prune_webhook_events(&cutoffs, limit).await }
    })
    .await;

    assert_eq!(total, 3, "exactly the three settled events past their period");
    for (what, id) in kept {
        assert!(store.find_webhook_event(id).await.is_ok(), "{what} is kept");
    }
    for (what, id) in deleted {
        assert!(matches!(store.find_webhook_event(id).await, Err(StoreError::NotFound)), "{what} is deleted");
    }
    let again = store
        .insert_webhook_events(vec![delivery(t, "src", "p74h"), delivery(t, "src", "p76h")])
        .await
        .expect("redeliver");
    assert_eq!(again[0], WebhookInsert::Duplicate, "a kept dedup key still refuses a redelivery");
    assert!(matches!(again[1], WebhookInsert::Stored(_)), "a key past the floor no longer does");
}

fn sealed(created_at: DateTime<Utc>) -> SealedWebhookSecret {
    SealedWebhookSecret { id: uuid::Uuid::now_v7(), key_id: 1, ciphertext: vec![1; 40], created_at, valid_until: None }
}

fn event(tenant: TenantId, event_type: EventType) -> NewEvent {
    NewEvent { tenant_id: tenant, connection_id: None, event_type, payload: serde_json::json!({ "n": 1 }) }
}

async fn finish(store: &dyn Store, id: EventDeliveryId, outcome: AttemptOutcome, at: DateTime<Utc>) {
    let attempt = DeliveryAttempt { status: None, error: None, outcome };
    store.record_delivery_attempt(id, attempt, at).await.expect("record");
}

pub async fn delivery_and_outbox_retention_keep_pending_work_and_events_a_delivery_refers_to(store: Arc<dyn Store>) {
    let now = t0();
    let long_ago = now - Duration::days(40);
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme-outbox-retention").await;
    let t = acme.tenant_id();
    while store.dispatch_events(100, long_ago).await.expect("drain").events > 0 {}
    let endpoint = NewEventEndpoint {
        id: EventEndpointId::new(),
        tenant_id: t,
        url: "https://hooks.example.com/retention".into(),
        event_types: vec![EventType::SyncCompleted],
        secret: sealed(long_ago),
    };
    // Created before the events (an endpoint gets only events written after it).
    let endpoint = store.create_event_endpoint(endpoint).await.expect("endpoint");
    let mut events = Vec::new();
    for _ in 0..5 {
        events.push(store.append_event(event(t, EventType::SyncCompleted)).await.expect("append").id);
    }
    let unsubscribed = store.append_event(event(t, EventType::SyncFailed)).await.expect("append").id;
    assert_eq!(store.dispatch_events(100, long_ago).await.expect("dispatch").deliveries, 5);
    let undispatched = store.append_event(event(t, EventType::SyncCompleted)).await.expect("append").id;
    let claimed = store.claim_due_deliveries(long_ago, long_ago + Duration::minutes(5), 10).await.expect("claim");
    let by_event = |e: EventId| claimed.iter().find(|d| d.event_id == e).expect("claimed").id;
    let (delivered_old, exhausted_old, pending, delivered_young, redriven) =
        (by_event(events[0]), by_event(events[1]), by_event(events[2]), by_event(events[3]), by_event(events[4]));
    let old = now - Duration::days(35);
    finish(&*store, delivered_old, AttemptOutcome::Delivered, old).await;
    finish(&*store, exhausted_old, AttemptOutcome::Exhausted, old).await;
    finish(&*store, pending, AttemptOutcome::Retry(now + Duration::hours(1)), old).await;
    finish(&*store, delivered_young, AttemptOutcome::Delivered, now - Duration::days(1)).await;
    finish(&*store, redriven, AttemptOutcome::Exhausted, old).await;
    store.redrive_event_delivery(acme, endpoint.id, redriven, now).await.expect("redrive");

    let deliveries = drain(1, |limit| {
        let store = store.clone();
        async move { store.prune_event_deliveries(now - Duration::days(30), limit).await }
    })
    .await;
    assert_eq!(deliveries, 2, "the delivered and the exhausted delivery finished 35 days ago");
    let left = store
        .list_event_deliveries(acme, endpoint.id, &EventDeliveryFilter::default(), Page::first())
        .await
        .expect("list");
    let mut left: Vec<EventDeliveryId> = left.items.iter().map(|d| d.id).collect();
    left.sort_by_key(|id| id.0);
    let mut expected = vec![pending, delivered_young, redriven];
    expected.sort_by_key(|id| id.0);
    assert_eq!(left, expected, "pending, young and redriven deliveries are kept");

    let outbox = drain(2, |limit| {
        let store = store.clone();
        async move { store.prune_outbox_events(now - Duration::days(7), limit).await }
    })
    .await;
    assert_eq!(outbox, 3, "the two events whose deliveries went, and the one nobody subscribed to");
    for (what, id) in
        [("delivered long ago", events[0]), ("exhausted long ago", events[1]), ("unsubscribed", unsubscribed)]
    {
        assert!(matches!(store.find_outbox_event(id).await, Err(StoreError::NotFound)), "{what}: deleted");
    }
    for (what, id) in [
        ("with a pending delivery", events[2]),
        ("with a young delivery", events[3]),
        ("with a redriven delivery", events[4]),
        ("undispatched", undispatched),
    ] {
        assert!(store.find_outbox_event(id).await.is_ok(), "{what}: kept");
    }
    let far_future = now + Duration::days(365);
    assert_eq!(store.prune_outbox_events(far_future, 100).await.expect("prune"), 0, "the rest is still needed");
}

fn channel(scope: TenantScope, connection: ConnectionId, expires_at: DateTime<Utc>) -> NewWatchChannel {
    NewWatchChannel {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: scope.tenant_id(),
        connection_id: connection,
        calendar_id: "team@example.com".into(),
        token_sha256: [3; 32],
        expires_at,
        created_at: expires_at - Duration::days(7),
    }
}

pub async fn watch_channel_retention_deletes_channels_a_day_past_their_expiry(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, connection) = active_connection(&*store, "org:watch-retention").await;
    let mut ids = Vec::new();
    for (expires_at, stopped) in [
        (now - Duration::days(2), false),
        (now - Duration::days(2), true),
        (now - Duration::hours(1), false),
        (now + Duration::days(5), true),
        (now + Duration::days(5), false),
    ] {
        let inserted = store.insert_watch_channel(channel(scope, connection.id, expires_at)).await.expect("insert");
        if stopped {
            store.stop_watch_channel(&inserted.id, now - Duration::days(3)).await.expect("stop");
        }
        ids.push(inserted.id);
    }

    let total = drain(1, |limit| {
        let store = store.clone();
        async move { store.prune_watch_channels(now - Duration::days(1), limit).await }
    })
    .await;

    assert_eq!(total, 2, "the two channels (stopped or not) expired two days ago");
    for (what, id) in [("expired 2 days ago", &ids[0]), ("stopped, expired 2 days ago", &ids[1])] {
        assert!(matches!(store.find_watch_channel(id).await, Err(StoreError::NotFound)), "{what}: deleted");
    }
    for (what, id) in [("expired an hour ago", &ids[2]), ("stopped, not expired", &ids[3]), ("live", &ids[4])] {
        assert!(store.find_watch_channel(id).await.is_ok(), "{what}: kept");
    }
}
