//! Group commit: concurrent deliveries share transactions, and a failed commit answers every
//! delivery in it with an error (never a silent success).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use patchbay_testkit::conformance::{delivery, tenant_with_user};
use patchbay_webhooks::{BatchSettings, Batcher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A real store whose inbox commits are counted, slowed (a disk flush) and can be made to fail.
struct Counting {
    inner: Arc<dyn Store>,
    commits: AtomicUsize,
    fail: AtomicBool,
}

#[async_trait]
impl WebhookStore for Counting {
    async fn create_webhook_source(&self, source: NewWebhookSource) -> StoreResult<WebhookSource> {
        self.inner.create_webhook_source(source).await
    }
    async fn find_webhook_source(&self, id: WebhookSourceId) -> StoreResult<WebhookSource> {
        self.inner.find_webhook_source(id).await
    }
    async fn get_webhook_source(&self, scope: TenantScope, id: WebhookSourceId) -> StoreResult<WebhookSource> {
        self.inner.get_webhook_source(scope, id).await
    }
    async fn list_webhook_sources(&self, scope: TenantScope, page: Page) -> StoreResult<Paged<WebhookSource>> {
        self.inner.list_webhook_sources(scope, page).await
    }
    async fn rotate_webhook_secret(
        &self,
        scope: TenantScope,
        id: WebhookSourceId,
        secret: SealedWebhookSecret,
        old_valid_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<WebhookSource> {
        self.inner.rotate_webhook_secret(scope, id, secret, old_valid_until, now).await
    }
    async fn insert_webhook_events(&self, events: Vec<NewWebhookEvent>) -> StoreResult<Vec<WebhookInsert>> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("test: the disk is gone".into()));
        }
        self.inner.insert_webhook_events(events).await
    }
    async fn webhook_key_usage(&self) -> StoreResult<Vec<WebhookKeyUsage>> {
        self.inner.webhook_key_usage().await
    }
    async fn get_webhook_event(&self, scope: TenantScope, id: WebhookEventId) -> StoreResult<WebhookEvent> {
        self.inner.get_webhook_event(scope, id).await
    }
    async fn list_webhook_events(
        &self,
        scope: TenantScope,
        filter: &WebhookEventFilter,
        page: Page,
    ) -> StoreResult<Paged<WebhookEvent>> {
        self.inner.list_webhook_events(scope, filter, page).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_share_commits_and_each_gets_its_own_answer() {
    let (store, _dir) = patchbay_testkit::db::sqlite_store().await;
    let store: Arc<dyn Store> = store;
    let (scope, _) = tenant_with_user(store.as_ref(), "org:batch").await;
    let counting =
        Arc::new(Counting { inner: store.clone(), commits: AtomicUsize::new(0), fail: AtomicBool::new(false) });
    let batcher = Batcher::spawn(counting.clone(), BatchSettings { max_items: 64, ..BatchSettings::default() });
    let tasks: Vec<_> = (0..128)
        .map(|i| {
            let batcher = batcher.clone();
            let event = delivery(scope.tenant_id(), "batched", &format!("m{}", i % 100));
            tokio::spawn(async move { batcher.submit(event).await.expect("committed") })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), WebhookInsert::Stored(_)) {
            stored += 1;
        }
    }
    assert_eq!(stored, 100, "100 distinct keys among 128 deliveries");
    let commits = counting.commits.load(Ordering::SeqCst);
    assert!(commits <= 8, "128 concurrent deliveries took {commits} commits; group commit should need a few");

    counting.fail.store(true, Ordering::SeqCst);
    let failing: Vec<_> = (0..8)
        .map(|i| {
            let batcher = batcher.clone();
            let event = delivery(scope.tenant_id(), "batched", &format!("fail{i}"));
            tokio::spawn(async move { batcher.submit(event).await })
        })
        .collect();
    for task in failing {
        assert!(task.await.unwrap().is_err(), "a failed commit is reported to every delivery in it");
    }
    let page = Page::new(Some(500), None);
    let rows = store.list_webhook_events(scope, &WebhookEventFilter::default(), page).await.unwrap();
    assert_eq!(rows.items.len(), 100, "nothing of the failed batch was stored");
}
