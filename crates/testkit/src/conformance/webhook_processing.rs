//! Applying inbox events: each stored event commits with its `webhook.process` job (a
//! duplicate gets none), attempts and outcomes change only a pending event, reprocessing is
//! tenant-walled and queues a job, and rewrapping is a compare-and-set.

use super::{t0, tenant_with_user, webhooks::delivery};
use patchbay_store::*;
use std::sync::Arc;

fn queued_process_jobs(counts: &[JobCount]) -> i64 {
    counts.iter().filter(|c| c.kind == "webhook.process" && c.status == JobStatus::Queued).map(|c| c.count).sum()
}

pub async fn each_stored_inbox_event_commits_with_its_process_job(store: Arc<dyn Store>) {
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme").await;
    let t = acme.tenant_id();
    let batch = vec![delivery(t, "s", "m1"), delivery(t, "s", "m2"), delivery(t, "s", "m1")];
    let outcomes = store.insert_webhook_events(batch.clone()).await.expect("insert");
    assert!(matches!(outcomes[..], [WebhookInsert::Stored(_), WebhookInsert::Stored(_), WebhookInsert::Duplicate]));
    assert_eq!(queued_process_jobs(&store.job_counts().await.unwrap()), 2, "one job per stored event");
    store.insert_webhook_events(vec![delivery(t, "s", "m2")]).await.expect("redeliver");
    assert_eq!(queued_process_jobs(&store.job_counts().await.unwrap()), 2, "a duplicate gets no job");

    let claim = Claim { owner: "w", kinds: &["webhook.process"], lease: chrono::Duration::seconds(30), now: t0() };
    let leased = store.claim(claim).await.expect("claim").expect("a job is due at received_at");
    let payload = WebhookProcessPayload::from_job(&leased.job).expect("payload");
    assert_eq!(payload.event_id, batch[0].id, "jobs run in arrival order");
    assert_eq!(leased.job.concurrency_key.as_deref(), Some(format!("webhook_event:{}", batch[0].id.0).as_str()));
}

pub async fn webhook_attempts_and_outcomes_change_only_a_pending_event(store: Arc<dyn Store>) {
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme").await;
    let event = delivery(acme.tenant_id(), "s", "m1");
    let id = event.id;
    store.insert_webhook_events(vec![event]).await.expect("insert");
    let started = store.start_webhook_attempt(id).await.expect("start").expect("pending");
    assert_eq!((started.attempts, started.status), (1, WebhookEventStatus::Pending));
    assert!(store.settle_webhook_event(id, &WebhookSettle::Retry("503".into())).await.unwrap());
    let e = store.find_webhook_event(id).await.unwrap();
    assert_eq!((e.status, e.attempts, e.error.as_deref()), (WebhookEventStatus::Pending, 1, Some("503")));
    assert_eq!(store.start_webhook_attempt(id).await.unwrap().map(|e| e.attempts), Some(2));
    assert!(store.settle_webhook_event(id, &WebhookSettle::Failed("gave up".into())).await.unwrap());
    assert_eq!(store.start_webhook_attempt(id).await.unwrap(), None, "a failed event starts no attempt");
    assert!(!store.settle_webhook_event(id, &WebhookSettle::Processed).await.unwrap(), "nor is it settled again");
    let e = store.find_webhook_event(id).await.unwrap();
    assert_eq!((e.status, e.attempts, e.error.as_deref()), (WebhookEventStatus::Failed, 2, Some("gave up")));
    assert!(matches!(store.find_webhook_event(WebhookEventId::new()).await, Err(StoreError::NotFound)));
}

pub async fn reprocessing_is_tenant_walled_and_queues_a_job(store: Arc<dyn Store>) {
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme").await;
    let (other, _) = tenant_with_user(store.as_ref(), "org:other").await;
    let event = delivery(acme.tenant_id(), "s", "m1");
    let id = event.id;
    store.insert_webhook_events(vec![event]).await.expect("insert");
    store.start_webhook_attempt(id).await.unwrap();
    store.settle_webhook_event(id, &WebhookSettle::Failed("bad".into())).await.unwrap();
    let claim = Claim { owner: "w", kinds: &["webhook.process"], lease: chrono::Duration::seconds(30), now: t0() };
    let first = store.claim(claim).await.unwrap().expect("the ingest job");
    store.complete(&first.lease, t0()).await.unwrap();

    let refused = store.reprocess_webhook_event(other, id, t0()).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    assert_eq!(queued_process_jobs(&store.job_counts().await.unwrap()), 0, "a refused reprocess queues nothing");
    let back = store.reprocess_webhook_event(acme, id, t0()).await.expect("reprocess");
    assert_eq!((back.status, back.attempts, back.error), (WebhookEventStatus::Pending, 0, None));
    store.reprocess_webhook_event(acme, id, t0()).await.expect("again");
    assert_eq!(queued_process_jobs(&store.job_counts().await.unwrap()), 1, "a second reprocess merges");
}

pub async fn a_webhook_rewrap_replaces_only_the_ciphertext_it_read(store: Arc<dyn Store>) {
    let (acme, _) = tenant_with_user(store.as_ref(), "org:acme").await;
    store.insert_webhook_events(vec![delivery(acme.tenant_id(), "s", "m1")]).await.expect("insert");
    assert!(store.webhook_ciphertexts_not_under(1, 10).await.unwrap().is_empty(), "all under key 1");
    let found = store.webhook_ciphertexts_not_under(2, 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(store.rewrap_webhook_ciphertext(&found[0], 2, &[9; 48]).await.unwrap());
    assert!(!store.rewrap_webhook_ciphertext(&found[0], 2, &[8; 48]).await.unwrap(), "stale read: no write");
    assert!(store.webhook_ciphertexts_not_under(2, 10).await.unwrap().is_empty());
    let usage = store.webhook_key_usage().await.unwrap();
    assert_eq!(usage, vec![WebhookKeyUsage { key_id: 2, ciphertexts: 1 }]);
}
