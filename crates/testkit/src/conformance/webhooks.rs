//! Webhook sources and the inbox: tenant walls, secret rotation, and dedup under batches and
//! concurrent batches.

use super::{secs, t0, tenant_with_user};
use patchbay_store::*;
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

fn new_source(tenant: TenantId, name: &str, now: chrono::DateTime<chrono::Utc>) -> NewWebhookSource {
    NewWebhookSource {
        id: WebhookSourceId::new(),
        tenant_id: tenant,
        name: name.into(),
        scheme: WebhookScheme::StandardWebhooks,
        settings: serde_json::json!({}),
        secret: sealed(1, now),
    }
}

/// An inbox delivery for a third-party source.
pub fn delivery(tenant: TenantId, source: &str, dedup_key: &str) -> NewWebhookEvent {
    NewWebhookEvent {
        id: WebhookEventId::new(),
        source_kind: WebhookSourceKind::Source,
        source_id: source.into(),
        tenant_id: Some(tenant),
        dedup_key: dedup_key.into(),
        received_at: t0(),
        headers: serde_json::json!({ "webhook-id": dedup_key }),
        key_id: 1,
        body: vec![7; 48],
    }
}

pub async fn webhook_sources_are_tenant_scoped_and_rotation_keeps_an_overlap(store: Arc<dyn Store>) {
    let now = t0();
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme-wh").await;
    let (other, _) = tenant_with_user(store.as_ref(), "org:other-wh").await;
    let created = store.create_webhook_source(new_source(acme.tenant_id(), "billing", now)).await.expect("create");
    assert_eq!(created.secrets.len(), 1);
    assert_eq!(created.secrets[0].ciphertext, vec![1; 40], "the sealed secret is stored as given");
    assert_eq!(store.find_webhook_source(created.id).await.expect("find by id").tenant_id, acme.tenant_id());
    assert!(matches!(store.get_webhook_source(other, created.id).await, Err(StoreError::NotFound)), "other tenant");
    let listed = store.list_webhook_sources(other, Page::first()).await.expect("list other");
    assert!(listed.items.is_empty(), "another tenant lists nothing");

    let rotated = store
        .rotate_webhook_secret(acme, created.id, sealed(2, secs(now, 1)), secs(now, 60), secs(now, 1))
        .await
        .expect("rotate");
    assert_eq!(rotated.secrets.len(), 2, "old and new during the overlap");
    assert_eq!(rotated.secrets[0].ciphertext, vec![2; 40], "newest first");
    assert_eq!(rotated.secrets[0].valid_until, None);
    assert_eq!(rotated.secrets[1].valid_until, Some(secs(now, 60)), "the old secret ends after the overlap");
    assert!(rotated.secrets[1].is_valid_at(secs(now, 59)) && !rotated.secrets[1].is_valid_at(secs(now, 60)));
    let again = store
        .rotate_webhook_secret(acme, created.id, sealed(3, secs(now, 61)), secs(now, 61), secs(now, 61))
        .await
        .expect("rotate after the overlap");
    let seeds: Vec<u8> = again.secrets.iter().map(|s| s.ciphertext[0]).collect();
    assert_eq!(seeds, vec![3, 2], "the expired secret is deleted; a zero overlap ends the previous one now");
    assert_eq!(again.secrets[1].valid_until, Some(secs(now, 61)));
    let refused = store.rotate_webhook_secret(other, created.id, sealed(4, now), now, now).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "another tenant cannot rotate");
    let usage = store.webhook_key_usage().await.expect("key usage");
    assert_eq!(usage, vec![WebhookKeyUsage { key_id: 1, ciphertexts: 2 }], "the two kept secrets are counted");
    store.insert_webhook_events(vec![delivery(acme.tenant_id(), "s", "k")]).await.expect("insert");
    let usage = store.webhook_key_usage().await.expect("key usage");
    assert_eq!(usage, vec![WebhookKeyUsage { key_id: 1, ciphertexts: 3 }], "inbox bodies are counted too");
}

pub async fn an_inbox_batch_stores_each_dedup_key_once_per_source(store: Arc<dyn Store>) {
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme-inbox").await;
    let t = acme.tenant_id();
    let batch = vec![
        delivery(t, "source-a", "msg-1"),
        delivery(t, "source-a", "msg-1"), // the same delivery twice in one batch
        delivery(t, "source-b", "msg-1"), // the same id at another source
        delivery(t, "source-a", "msg-2"),
    ];
    let ids: Vec<WebhookEventId> = batch.iter().map(|e| e.id).collect();
    let outcomes = store.insert_webhook_events(batch).await.expect("insert a batch");
    assert_eq!(
        outcomes,
        vec![
            WebhookInsert::Stored(ids[0]),
            WebhookInsert::Duplicate,
            WebhookInsert::Stored(ids[2]),
            WebhookInsert::Stored(ids[3])
        ]
    );
    let redelivered = store.insert_webhook_events(vec![delivery(t, "source-a", "msg-2")]).await.expect("redeliver");
    assert_eq!(redelivered, vec![WebhookInsert::Duplicate], "a later redelivery writes nothing");
    let stored = store.list_webhook_events(acme, &WebhookEventFilter::default(), Page::first()).await.expect("list");
    assert_eq!(stored.items.len(), 3);
    let first = store.get_webhook_event(acme, ids[0]).await.expect("get");
    assert_eq!((first.status, first.attempts, first.error.clone()), (WebhookEventStatus::Pending, 0, None));
    assert_eq!(first.body, vec![7; 48]);
    assert_eq!(first.headers, serde_json::json!({ "webhook-id": "msg-1" }));
    let only_b = WebhookEventFilter { source_id: Some("source-b".into()), status: None };
    let b = store.list_webhook_events(acme, &only_b, Page::first()).await.expect("filter");
    assert_eq!(b.items.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[2]]);
}

pub async fn concurrent_inbox_batches_store_every_delivery_exactly_once(store: Arc<dyn Store>) {
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme-race").await;
    let t = acme.tenant_id();
    // Eight writers each send the same 50 deliveries in batches of 10: 50 rows, whatever order.
    let writers = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut stored = 0;
            for chunk in 0..5 {
                let batch = (0..10).map(|i| delivery(t, "race", &format!("msg-{}", chunk * 10 + i))).collect();
                let outcomes = store.insert_webhook_events(batch).await.expect("insert");
                stored += outcomes.iter().filter(|o| matches!(o, WebhookInsert::Stored(_))).count();
            }
            stored
        })
    });
    let mut stored = 0;
    for writer in writers {
        stored += writer.await.expect("writer");
    }
    assert_eq!(stored, 50, "each delivery is reported stored once across all writers");
    let rows = store.list_webhook_events(acme, &WebhookEventFilter::default(), Page::new(Some(500), None)).await;
    assert_eq!(rows.expect("list").items.len(), 50);
}

pub async fn webhook_events_page_by_id_and_are_invisible_to_other_tenants(store: Arc<dyn Store>) {
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme-page").await;
    let (other, _) = tenant_with_user(store.as_ref(), "org:other-page").await;
    let batch: Vec<_> = (0..5).map(|i| delivery(acme.tenant_id(), "pager", &format!("m{i}"))).collect();
    let ids: Vec<_> = batch.iter().map(|e| e.id).collect();
    store.insert_webhook_events(batch).await.expect("insert");
    let filter = WebhookEventFilter::default();
    let first = store.list_webhook_events(acme, &filter, Page::new(Some(2), None)).await.expect("page 1");
    assert_eq!(first.items.iter().map(|e| e.id).collect::<Vec<_>>(), ids[..2]);
    let second =
        store.list_webhook_events(acme, &filter, Page::new(Some(10), first.next_cursor)).await.expect("page 2");
    assert_eq!(second.items.iter().map(|e| e.id).collect::<Vec<_>>(), ids[2..]);
    assert_eq!(second.next_cursor, None);
    assert!(store.list_webhook_events(other, &filter, Page::first()).await.expect("other").items.is_empty());
    assert!(matches!(store.get_webhook_event(other, ids[0]).await, Err(StoreError::NotFound)));
}
