//! The `retention.prune` sweep on both stores: bounded batches per sweep, a backlog finished by
//! the next sweep, young and pending rows kept, and the sweep queuing its successor.

use patchbay_store::*;
use patchbay_testkit::conformance::{delivery, t0, tenant_with_user};
use patchbay_webhooks::{RetentionJob, RetentionSettings};
use std::sync::Arc;

fn job(store: &Arc<dyn Store>, batch: u32, max_batches: u32) -> RetentionJob {
    RetentionJob {
        store: store.clone(),
        jobs: store.clone(),
        clock: Arc::new(SystemClock),
        settings: RetentionSettings { batch, max_batches, ..RetentionSettings::default() },
    }
}

async fn processed(store: &dyn Store, tenant: TenantId, key: &str, age: chrono::Duration) -> WebhookEventId {
    let event = NewWebhookEvent { received_at: t0() - age, ..delivery(tenant, "src", key) };
    let id = event.id;
    store.insert_webhook_events(vec![event]).await.expect("insert");
    store.start_webhook_attempt(id).await.expect("start").expect("pending");
    assert!(store.settle_webhook_event(id, &WebhookSettle::Processed).await.expect("settle"));
    id
}

macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let (store, _dir) = patchbay_testkit::db::sqlite_store().await;
                    super::$scenario(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let Some(store) = patchbay_testkit::db::postgres_store().await else { return };
                    super::$scenario(store).await;
                }
            )*
        }
    };
}

on_both!(a_sweep_deletes_in_bounded_batches_and_the_next_finishes_the_backlog, the_sweep_job_queues_its_successor);

async fn a_sweep_deletes_in_bounded_batches_and_the_next_finishes_the_backlog(store: Arc<dyn Store>) {
    let (scope, _) = tenant_with_user(store.as_ref(), "org:retention-job").await;
    let t = scope.tenant_id();
    let mut old = Vec::new();
    for n in 0..5 {
        old.push(processed(&*store, t, &format!("old-{n}"), chrono::Duration::days(8)).await);
    }
    let young = processed(&*store, t, "young", chrono::Duration::days(1)).await;
    let sweeper = job(&store, 2, 2);

    let first = sweeper.sweep(t0(), &|| false).await.expect("sweep");
    assert_eq!((first.webhook_events, first.complete), (4, false), "two batches of two, then it stops");
    let second = sweeper.sweep(t0(), &|| false).await.expect("sweep");
    assert_eq!((second.webhook_events, second.complete), (1, true), "the next sweep finishes the backlog");
    for id in old {
        assert!(matches!(store.find_webhook_event(id).await, Err(StoreError::NotFound)), "8 days old: deleted");
    }
    assert!(store.find_webhook_event(young).await.is_ok(), "a day old: kept");
    let stopped = sweeper.sweep(t0(), &|| true).await.expect("sweep");
    assert_eq!((stopped.webhook_events, stopped.complete), (0, false), "a cancelled sweep deletes nothing more");
}

async fn the_sweep_job_queues_its_successor(store: Arc<dyn Store>) {
    let now = t0();
    store.enqueue(RetentionPrunePayload {}.job(now), now).await.expect("enqueue");
    let worker = Worker::new(store.clone(), "w", WorkerSettings::default())
        .handle(JobKind::RetentionPrune.as_str(), Arc::new(job(&store, 1_000, 100)));
    assert!(matches!(
        worker.try_execute_next().await.expect("run"),
        Outcome::Done { status: JobStatus::Succeeded, .. }
    ));
    let counts = store.job_counts().await.expect("counts");
    let queued: i64 =
        counts.iter().filter(|c| c.kind == "retention.prune" && c.status == JobStatus::Queued).map(|c| c.count).sum();
    assert_eq!(queued, 1, "the next sweep is queued");
    assert_eq!(worker.try_execute_next().await.expect("idle"), Outcome::Empty, "and not due before the interval");
}
