//! Events out: endpoints behind the tenant wall with rotating secrets, dispatch that makes one
//! delivery per subscribed endpoint exactly once (also under concurrent dispatchers), leased
//! claims, attempts, disabling with a final event, redrive and test deliveries.

use super::{secs, t0, tenant_with_user};
use patchbay_store::*;
use std::collections::HashSet;
use std::sync::Arc;

fn sealed(seed: u8, created_at: chrono::DateTime<chrono::Utc>) -> SealedWebhookSecret {
    SealedWebhookSecret {
        id: uuid::Uuid::now_v7(),
        key_id: 1,
        ciphertext: vec![seed; 40],
        created_at,
        valid_until: None,
    }
}

fn new_endpoint(tenant: TenantId, types: &[EventType], created_at: chrono::DateTime<chrono::Utc>) -> NewEventEndpoint {
    NewEventEndpoint {
        id: EventEndpointId::new(),
        tenant_id: tenant,
        url: "https://hooks.example.com/patchbay".into(),
        event_types: types.to_vec(),
        secret: sealed(1, created_at),
    }
}

fn event(tenant: TenantId, event_type: EventType) -> NewEvent {
    NewEvent { tenant_id: tenant, connection_id: None, event_type, payload: serde_json::json!({ "n": 1 }) }
}

async fn deliveries(store: &dyn Store, scope: TenantScope, endpoint: EventEndpointId) -> Vec<EventDelivery> {
    let mut all = Vec::new();
    let mut page = Page::new(Some(7), None);
    loop {
        let got =
            store.list_event_deliveries(scope, endpoint, &EventDeliveryFilter::default(), page).await.expect("list");
        all.extend(got.items);
        match got.next_cursor {
            Some(after) => page = Page::new(Some(7), Some(after)),
            None => return all,
        }
    }
}

pub async fn event_endpoints_are_tenant_scoped_and_rotate_with_an_overlap(store: Arc<dyn Store>) {
    let now = t0();
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme-eo").await;
    let (other, _) = tenant_with_user(store.as_ref(), "org:other-eo").await;
    let types = [EventType::ConnectionCreated, EventType::SyncCompleted];
    let created = store.create_event_endpoint(new_endpoint(acme.tenant_id(), &types, now)).await.expect("create");
    assert_eq!(created.event_types, types.to_vec());
    assert_eq!(created.url, "https://hooks.example.com/patchbay");
    assert_eq!((created.disabled_at, created.failing_since), (None, None));
    assert_eq!(created.secrets.len(), 1);
    assert_eq!(created.secrets[0].ciphertext, vec![1; 40], "the sealed secret is stored as given");
    assert!(matches!(store.get_event_endpoint(other, created.id).await, Err(StoreError::NotFound)), "other tenant");
    assert!(store.list_event_endpoints(other, Page::first()).await.expect("list other").items.is_empty());
    let listed = store.list_event_endpoints(acme, Page::first()).await.expect("list");
    assert_eq!(listed.items.iter().map(|e| e.id).collect::<Vec<_>>(), vec![created.id]);
    assert!(listed.items[0].secrets.is_empty(), "lists carry no secrets");

    let rotated = store
        .rotate_event_endpoint_secret(acme, created.id, sealed(2, secs(now, 1)), secs(now, 60), secs(now, 1))
        .await
        .expect("rotate");
    let seeds: Vec<u8> = rotated.secrets.iter().map(|s| s.ciphertext[0]).collect();
    assert_eq!(seeds, vec![2, 1], "old and new during the overlap, newest first");
    assert_eq!(rotated.secrets[1].valid_until, Some(secs(now, 60)));
    let again = store
        .rotate_event_endpoint_secret(acme, created.id, sealed(3, secs(now, 61)), secs(now, 61), secs(now, 61))
        .await
        .expect("rotate after the overlap");
    let seeds: Vec<u8> = again.secrets.iter().map(|s| s.ciphertext[0]).collect();
    assert_eq!(seeds, vec![3, 2], "the expired secret is deleted");
    let refused = store.rotate_event_endpoint_secret(other, created.id, sealed(4, now), now, now).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "another tenant cannot rotate");
    assert!(matches!(store.delete_event_endpoint(other, created.id).await, Err(StoreError::NotFound)));
    let usage = store.event_endpoint_key_usage().await.expect("key usage");
    assert_eq!(usage, vec![WebhookKeyUsage { key_id: 1, ciphertexts: 2 }], "the kept secrets are counted");
    store.delete_event_endpoint(acme, created.id).await.expect("delete");
    assert!(matches!(store.get_event_endpoint(acme, created.id).await, Err(StoreError::NotFound)), "deleted");
    assert!(matches!(store.delete_event_endpoint(acme, created.id).await, Err(StoreError::NotFound)));
}

pub async fn dispatch_makes_one_delivery_per_subscribed_enabled_endpoint(store: Arc<dyn Store>) {
    let now = t0();
    let before = secs(now, -60);
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme-dispatch").await;
    let (other, _) = tenant_with_user(store.as_ref(), "org:other-dispatch").await;
    // Drain whatever earlier writes left undispatched (other scenarios share no store, but the
    // tenant upserts may have written events).
    while store.dispatch_events(100, now).await.expect("drain").events > 0 {}
    let both = store
        .create_event_endpoint(new_endpoint(
            acme.tenant_id(),
            &[EventType::ConnectionCreated, EventType::SyncCompleted],
            before,
        ))
        .await
        .expect("both");
    let sync_only = store
        .create_event_endpoint(new_endpoint(acme.tenant_id(), &[EventType::SyncCompleted], before))
        .await
        .expect("one");
    let disabled = store
        .create_event_endpoint(new_endpoint(acme.tenant_id(), &[EventType::SyncCompleted], before))
        .await
        .expect("off");
    let final_event = event(other.tenant_id(), EventType::EndpointDisabled);
    assert!(store.disable_event_endpoint(disabled.id, final_event.clone(), before).await.expect("disable"));
    assert!(!store.disable_event_endpoint(disabled.id, final_event, before).await.expect("again"), "once only");
    let elsewhere = store
        .create_event_endpoint(new_endpoint(other.tenant_id(), &[EventType::SyncCompleted], before))
        .await
        .expect("b");
    let later = store
        .create_event_endpoint(new_endpoint(acme.tenant_id(), &[EventType::SyncCompleted], secs(now, 3600)))
        .await
        .expect("later");

    let created = store.append_event(event(acme.tenant_id(), EventType::ConnectionCreated)).await.expect("append");
    let synced = store.append_event(event(acme.tenant_id(), EventType::SyncCompleted)).await.expect("append");
    store.append_event(event(acme.tenant_id(), EventType::SyncFailed)).await.expect("unsubscribed type");
    let done = store.dispatch_events(100, now).await.expect("dispatch");
    // The disabled endpoint's final event (tenant `other`, no subscriber) counts as an event too.
    assert_eq!(done, Dispatched { events: 4, deliveries: 3 });
    assert_eq!(store.dispatch_events(100, now).await.expect("again"), Dispatched::default(), "nothing twice");

    let got: Vec<EventId> = deliveries(store.as_ref(), acme, both.id).await.iter().map(|d| d.event_id).collect();
    assert_eq!(got, vec![synced.id, created.id], "newest first, one each");
    let got = deliveries(store.as_ref(), acme, sync_only.id).await;
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].event_id, got[0].event_type), (synced.id, EventType::SyncCompleted));
    assert_eq!((got[0].status, got[0].attempts, got[0].next_attempt_at), (EventDeliveryStatus::Pending, 0, Some(now)));
    assert!(deliveries(store.as_ref(), acme, disabled.id).await.is_empty(), "a disabled endpoint gets nothing");
    assert!(deliveries(store.as_ref(), other, elsewhere.id).await.is_empty(), "another tenant's endpoint gets nothing");
    assert!(deliveries(store.as_ref(), acme, later.id).await.is_empty(), "an endpoint gets only later events");
    let refused = store.list_event_deliveries(other, both.id, &EventDeliveryFilter::default(), Page::first()).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "another tenant cannot list them");
}

pub async fn concurrent_dispatchers_neither_skip_nor_double_an_event(store: Arc<dyn Store>) {
    let now = t0();
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme-concurrent-dispatch").await;
    while store.dispatch_events(100, now).await.expect("drain").events > 0 {}
    let endpoint = store
        .create_event_endpoint(new_endpoint(acme.tenant_id(), &[EventType::SyncCompleted], secs(now, -60)))
        .await
        .expect("create");
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..30 {
                    ids.push(
                        store.append_event(event(acme.tenant_id(), EventType::SyncCompleted)).await.expect("append").id,
                    );
                }
                ids
            })
        })
        .collect();
    let dispatchers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut made = 0;
                for _ in 0..200 {
                    let done = store.dispatch_events(7, now).await.expect("dispatch");
                    made += done.deliveries;
                    if done.events == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                made
            })
        })
        .collect();
    let mut written = HashSet::new();
    for w in writers {
        written.extend(w.await.expect("writer"));
    }
    let mut made = 0;
    for d in dispatchers {
        made += d.await.expect("dispatcher");
    }
    while store.dispatch_events(100, now).await.expect("finish").events > 0 {}
    let got = deliveries(store.as_ref(), acme, endpoint.id).await;
    let ids: HashSet<EventId> = got.iter().map(|d| d.event_id).collect();
    assert_eq!(got.len(), 120, "one delivery per event");
    assert_eq!(ids, written, "no event skipped or doubled");
    assert!(made <= 120);
}

pub async fn deliveries_are_leased_attempted_redriven_and_disabled_with_a_final_event(store: Arc<dyn Store>) {
    let now = t0();
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme-attempts").await;
    let (other, _) = tenant_with_user(store.as_ref(), "org:other-attempts").await;
    while store.dispatch_events(100, now).await.expect("drain").events > 0 {}
    let endpoint = store
        .create_event_endpoint(new_endpoint(
            acme.tenant_id(),
            &[EventType::SyncCompleted, EventType::EndpointDisabled],
            secs(now, -60),
        ))
        .await
        .expect("create");
    let watcher = store
        .create_event_endpoint(new_endpoint(acme.tenant_id(), &[EventType::EndpointDisabled], secs(now, -60)))
        .await
        .expect("watcher");
    let first = store.append_event(event(acme.tenant_id(), EventType::SyncCompleted)).await.expect("append");
    let second = store.append_event(event(acme.tenant_id(), EventType::SyncCompleted)).await.expect("append");
    assert_eq!(store.dispatch_events(100, now).await.expect("dispatch").deliveries, 2);

    let claimed = store.claim_due_deliveries(now, secs(now, 120), 10).await.expect("claim");
    assert_eq!(claimed.iter().map(|d| d.event_id).collect::<Vec<_>>(), vec![first.id, second.id]);
    assert!(claimed.iter().all(|d| d.next_attempt_at == Some(secs(now, 120))), "leased");
    assert!(store.claim_due_deliveries(secs(now, 60), secs(now, 180), 10).await.expect("claim").is_empty(), "held");
    let back = store.claim_due_deliveries(secs(now, 120), secs(now, 240), 1).await.expect("lapsed");
    assert_eq!(back.len(), 1, "a lapsed lease comes back, `limit` at a time");

    let failed = DeliveryAttempt {
        status: Some(500),
        error: Some("HTTP 500".into()),
        outcome: AttemptOutcome::Retry(secs(now, 300)),
    };
    let ep = store.record_delivery_attempt(claimed[0].id, failed, secs(now, 1)).await.expect("record");
    assert_eq!(ep.failing_since, Some(secs(now, 1)));
    let failed_again =
        DeliveryAttempt { status: None, error: Some("timed out".into()), outcome: AttemptOutcome::Exhausted };
    let ep = store.record_delivery_attempt(claimed[0].id, failed_again, secs(now, 2)).await.expect("record");
    assert_eq!(ep.failing_since, Some(secs(now, 1)), "the first failure is kept");
    let ok = DeliveryAttempt { status: Some(204), error: None, outcome: AttemptOutcome::Delivered };
    let ep = store.record_delivery_attempt(claimed[1].id, ok, secs(now, 3)).await.expect("record");
    assert_eq!(ep.failing_since, None, "a success clears it");

    let all = deliveries(store.as_ref(), acme, endpoint.id).await;
    let exhausted = all.iter().find(|d| d.id == claimed[0].id).expect("first");
    assert_eq!(
        (exhausted.status, exhausted.attempts, exhausted.next_attempt_at),
        (EventDeliveryStatus::Exhausted, 2, None)
    );
    assert_eq!((exhausted.last_status, exhausted.last_error.as_deref()), (None, Some("timed out")));
    let delivered = all.iter().find(|d| d.id == claimed[1].id).expect("second");
    assert_eq!(
        (delivered.status, delivered.attempts, delivered.delivered_at),
        (EventDeliveryStatus::Delivered, 1, Some(secs(now, 3)))
    );
    assert_eq!(delivered.last_status, Some(204));
    let filter = EventDeliveryFilter { status: Some(EventDeliveryStatus::Exhausted) };
    let only = store.list_event_deliveries(acme, endpoint.id, &filter, Page::first()).await.expect("filtered");
    assert_eq!(only.items.iter().map(|d| d.id).collect::<Vec<_>>(), vec![claimed[0].id]);

    // Disabled: nothing is claimed, and the final event goes to the tenant's other endpoints.
    let disabled_event = NewEvent {
        tenant_id: acme.tenant_id(),
        connection_id: None,
        event_type: EventType::EndpointDisabled,
        payload: serde_json::json!({ "endpoint_id": endpoint.id }),
    };
    assert!(store.disable_event_endpoint(endpoint.id, disabled_event, secs(now, 4)).await.expect("disable"));
    assert!(store.get_event_endpoint(acme, endpoint.id).await.expect("get").disabled_at.is_some());
    assert_eq!(store.dispatch_events(100, secs(now, 5)).await.expect("dispatch").deliveries, 1, "to the watcher only");
    let to_watcher = deliveries(store.as_ref(), acme, watcher.id).await;
    assert_eq!(to_watcher[0].event_type, EventType::EndpointDisabled);
    assert!(deliveries(store.as_ref(), acme, endpoint.id)
        .await
        .iter()
        .all(|d| d.event_type == EventType::SyncCompleted));

    // Redrive: pending again with a fresh schedule, the endpoint enabled again.
    let refused = store.redrive_event_delivery(other, endpoint.id, claimed[0].id, secs(now, 6)).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "another tenant cannot redrive");
    let redriven = store.redrive_event_delivery(acme, endpoint.id, claimed[0].id, secs(now, 6)).await.expect("redrive");
    assert_eq!(
        (redriven.status, redriven.attempts, redriven.next_attempt_at),
        (EventDeliveryStatus::Pending, 0, Some(secs(now, 6)))
    );
    assert!(store.get_event_endpoint(acme, endpoint.id).await.expect("get").disabled_at.is_none(), "enabled again");
    let again = store.redrive_event_delivery(acme, endpoint.id, claimed[0].id, secs(now, 6)).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "a pending delivery is not redriven");

    // A test delivery goes to its endpoint only and is never dispatched.
    let test = event(acme.tenant_id(), EventType::EndpointTest);
    let delivery = store.create_test_delivery(acme, watcher.id, test.clone(), secs(now, 7)).await.expect("test");
    assert_eq!((delivery.endpoint_id, delivery.event_type), (watcher.id, EventType::EndpointTest));
    assert_eq!(store.find_outbox_event(delivery.event_id).await.expect("event").event_type, EventType::EndpointTest);
    assert_eq!(store.dispatch_events(100, secs(now, 8)).await.expect("dispatch"), Dispatched::default());
    let refused =
        store.create_test_delivery(other, watcher.id, event(other.tenant_id(), EventType::EndpointTest), now).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "another tenant's endpoint");
    assert_eq!(store.find_event_endpoint(watcher.id).await.expect("find").tenant_id, acme.tenant_id());
}
