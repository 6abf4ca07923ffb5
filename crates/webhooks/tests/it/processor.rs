//! The processor on both stores, driven through the job worker: each stored event's job, retries
//! with backoff, `failed` with the error kept, reprocessing, one application per event under
//! concurrency, a crash between effect and mark, `webhook.received` in the outbox, and
//! `vault rotate` for webhook material.

use super::inbox::{harness, Harness};
use async_trait::async_trait;
use patchbay_store::*;
use patchbay_token_vault::{KeyRing, Vault};
use patchbay_webhooks::{
    body_aad, rewrap_webhooks, Applier, ApplyError, Ingested, Processor, ReceivedApplier, SigningKey,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An applier that answers from a script (then `Ok`) and counts its calls.
#[derive(Default)]
struct Scripted {
    script: Mutex<VecDeque<Result<(), ApplyError>>>,
    calls: AtomicUsize,
    delay: Duration,
}

impl Scripted {
    fn new(script: Vec<Result<(), ApplyError>>) -> Arc<Self> {
        Arc::new(Self { script: Mutex::new(script.into()), ..Self::default() })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Applier for Scripted {
    async fn apply(&self, _event: &WebhookEvent, _body: &[u8]) -> Result<(), ApplyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.script.lock().unwrap().pop_front().unwrap_or(Ok(()))
    }
}

fn worker(h: &Harness, owner: &str, processor: Processor) -> Worker {
    Worker::new(h.store.clone(), owner, WorkerSettings::default())
        .with_clock(h.clock.clone())
        .handle(JobKind::WebhookProcess.as_str(), Arc::new(processor))
}

fn processor(h: &Harness, applier: Arc<dyn Applier>) -> Processor {
    Processor::new(h.store.clone(), h.vault.clone(), h.clock.clone()).with_applier(WebhookSourceKind::Source, applier)
}

async fn ingest(h: &Harness, source: WebhookSourceId, key: &SigningKey, id: &str, body: &[u8]) -> WebhookEventId {
    match h.inbox.ingest(source, &h.signed(key, id, body), body).await.expect("stored") {
        Ingested::Stored(id) => id,
        Ingested::Duplicate => panic!("a new delivery"),
    }
}

async fn event(h: &Harness, id: WebhookEventId) -> WebhookEvent {
    h.store.get_webhook_event(h.scope, id).await.expect("the event")
}

async fn drain(w: &Worker) -> usize {
    let mut ran = 0;
    while let Outcome::Done { .. } = w.try_execute_next().await.expect("the store answers") {
        ran += 1;
        assert!(ran < 100, "the queue drains");
    }
    ran
}

async fn received(h: &Harness) -> Vec<OutboxEvent> {
    let all = h.store.list_events(h.scope, 0, 500).await.expect("outbox");
    all.into_iter().filter(|e| e.event_type == EventType::WebhookReceived).collect()
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

on_both!(
    a_stored_event_is_forwarded_as_webhook_received,
    a_transient_failure_is_retried_with_backoff_then_processed,
    a_permanent_failure_fails_at_once_with_its_error,
    exhausted_retries_end_failed_with_the_error_kept,
    a_kind_without_an_applier_fails_with_a_clear_error,
    reprocessing_a_failed_event_applies_it,
    one_event_delivered_twice_concurrently_is_applied_once,
    a_crash_between_effect_and_mark_applies_again_harmlessly,
    rotate_rewraps_webhook_secrets_and_bodies,
);

async fn a_stored_event_is_forwarded_as_webhook_received(store: Arc<dyn Store>) {
    let h = harness(store).await;
    let (source, key) = h.source().await;
    let json_id = ingest(&h, source, &key, "msg_json", br#"{"type":"invoice.paid","n":1}"#).await;
    let bin_id = ingest(&h, source, &key, "msg_bin", b"\xff\x00not json").await;
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(64));
    let big_id = ingest(&h, source, &key, "msg_big", big.as_bytes()).await;
    let counts = h.store.job_counts().await.unwrap();
    let queued = counts.iter().find(|c| c.kind == "webhook.process" && c.status == JobStatus::Queued);
    assert_eq!(queued.map(|c| c.count), Some(3), "each stored event committed with its job: {counts:?}");

    let applier = Arc::new(ReceivedApplier::new(h.store.clone()).with_max_inline_body(64));
    let w = worker(&h, "w1", processor(&h, applier));
    assert_eq!(drain(&w).await, 3);
    for id in [json_id, bin_id, big_id] {
        let e = event(&h, id).await;
        assert_eq!((e.status, e.attempts, e.error.clone()), (WebhookEventStatus::Processed, 1, None), "{e:?}");
    }
    let out = received(&h).await;
    assert_eq!(out.len(), 3, "{out:?}");
    let by = |id: WebhookEventId| {
        out.iter()
            .find(|e| e.payload["webhook_event_id"] == json!(id.0.to_string()))
            .expect("forwarded")
            .payload
            .clone()
    };
    let p = by(json_id);
    assert_eq!(p["source_id"], json!(source.to_string()));
    assert_eq!(p["body_encoding"], "json");
    assert_eq!(p["body"], json!({"type": "invoice.paid", "n": 1}));
    assert_eq!(p["headers"]["webhook-id"], "msg_json", "{p}");
    assert!(p["headers"].get("webhook-signature").is_none(), "no signature forwarded: {p}");
    assert!(p["received_at"].is_string(), "{p}");
    let p = by(bin_id);
    assert_eq!((p["body_encoding"].as_str(), p["body"].as_str()), (Some("base64"), Some("/wBub3QganNvbg==")), "{p}");
    let p = by(big_id);
    assert_eq!(p["body_encoding"], "omitted", "{p}");
    assert!(p["body"].is_null(), "{p}");
    assert_eq!(p["body_size"], json!(big.len()), "{p}");
    assert_eq!(p["body_sha256"].as_str().map(str::len), Some(64), "{p}");
}

async fn a_transient_failure_is_retried_with_backoff_then_processed(store: Arc<dyn Store>) {
    let h = harness(store).await;
    let (source, key) = h.source().await;
    let id = ingest(&h, source, &key, "msg_1", b"{}").await;
    let applier = Scripted::new(vec![Err(ApplyError::Transient("provider 503".into()))]);
    let w = worker(&h, "w1", processor(&h, applier.clone()));
    let Outcome::Done { status, .. } = w.try_execute_next().await.unwrap() else { panic!("the job ran") };
    assert_eq!(status, JobStatus::Queued, "retried later");
    let e = event(&h, id).await;
    assert_eq!((e.status, e.attempts, e.error.as_deref()), (WebhookEventStatus::Pending, 1, Some("provider 503")));
    assert_eq!(w.try_execute_next().await.unwrap(), Outcome::Empty, "not before the backoff");
    h.clock.advance(3600);
    assert_eq!(drain(&w).await, 1);
    let e = event(&h, id).await;
    assert_eq!((e.status, e.attempts, e.error), (WebhookEventStatus::Processed, 2, None));
    assert_eq!(applier.calls(), 2);
}

async fn a_permanent_failure_fails_at_once_with_its_error(store: Arc<dyn Store>) {
    let h = harness(store).await;
    let (source, key) = h.source().await;
    let id = ingest(&h, source, &key, "msg_1", b"{}").await;
    let applier = Scripted::new(vec![Err(ApplyError::Permanent("unknown board 42".into()))]);
    let w = worker(&h, "w1", processor(&h, applier.clone()));
    assert_eq!(drain(&w).await, 1);
    h.clock.advance(86_400);
    assert_eq!(drain(&w).await, 0, "no retry");
    let e = event(&h, id).await;
    assert_eq!((e.status, e.attempts, e.error.as_deref()), (WebhookEventStatus::Failed, 1, Some("unknown board 42")));
    assert_eq!(applier.calls(), 1);
}

async fn exhausted_retries_end_failed_with_the_error_kept(store: Arc<dyn Store>) {
    let h = harness(store).await;
    let (source, key) = h.source().await;
    let id = ingest(&h, source, &key, "msg_1", b"{}").await;
    let transient = || Err(ApplyError::Transient("timeout".into()));
    let applier = Scripted::new(vec![transient(), transient(), transient(), transient()]);
    let w = worker(&h, "w1", processor(&h, applier.clone()).with_max_attempts(3));
    for _ in 0..5 {
        drain(&w).await;
        h.clock.advance(3600);
    }
    let e = event(&h, id).await;
    assert_eq!((e.status, e.attempts), (WebhookEventStatus::Failed, 3), "{e:?}");
    assert_eq!(e.error.as_deref(), Some("gave up after 3 attempts: timeout"));
    assert_eq!(applier.calls(), 3);
}

async fn a_kind_without_an_applier_fails_with_a_clear_error(store: Arc<dyn Store>) {
    let h = harness(store).await;
    let (source, key) = h.source().await;
    let id = ingest(&h, source, &key, "msg_1", b"{}").await;
    let bare = Processor::new(h.store.clone(), h.vault.clone(), h.clock.clone());
    assert_eq!(drain(&worker(&h, "w1", bare)).await, 1);
    let e = event(&h, id).await;
    assert_eq!(e.status, WebhookEventStatus::Failed);
    assert_eq!(e.error.as_deref(), Some("no applier for source kind `source`"));
}

async fn reprocessing_a_failed_event_applies_it(store: Arc<dyn Store>) {
    let h = harness(store.clone()).await;
    let (source, key) = h.source().await;
    let id = ingest(&h, source, &key, "msg_1", b"{}").await;
    let applier = Scripted::new(vec![Err(ApplyError::Permanent("bad payload".into()))]);
    let w = worker(&h, "w1", processor(&h, applier.clone()));
    drain(&w).await;
    assert_eq!(event(&h, id).await.status, WebhookEventStatus::Failed);

    let (other, _) = patchbay_testkit::conformance::tenant_with_user(store.as_ref(), "org:other").await;
    let refused = h.store.reprocess_webhook_event(other, id, h.clock.now()).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "another tenant's id: {refused:?}");
    assert_eq!(event(&h, id).await.status, WebhookEventStatus::Failed, "unchanged");

    let back = h.store.reprocess_webhook_event(h.scope, id, h.clock.now()).await.expect("reprocess");
    assert_eq!((back.status, back.attempts, back.error), (WebhookEventStatus::Pending, 0, None));
    assert_eq!(drain(&w).await, 1);
    let e = event(&h, id).await;
    assert_eq!((e.status, e.attempts, e.error), (WebhookEventStatus::Processed, 1, None));
    assert_eq!(applier.calls(), 2);
}

async fn one_event_delivered_twice_concurrently_is_applied_once(store: Arc<dyn Store>) {
    let h = harness(store).await;
    let (source, key) = h.source().await;
    let body = br#"{"n":1}"#;
    let headers = h.signed(&key, "msg_twice", body);
    let (a, b) = tokio::join!(h.inbox.ingest(source, &headers, body), h.inbox.ingest(source, &headers, body));
    let ids: Vec<_> = [a.unwrap(), b.unwrap()]
        .into_iter()
        .filter_map(|i| match i {
            Ingested::Stored(id) => Some(id),
            Ingested::Duplicate => None,
        })
        .collect();
    assert_eq!(ids.len(), 1, "stored once");
    let id = ids[0];
    // A second job for the same event (a reprocess racing the first run) under its concurrency key.
    let mut second = WebhookProcessPayload { event_id: id }.job(h.clock.now());
    second.dedup_key = None;
    h.store.enqueue(second, h.clock.now()).await.unwrap();

    let applier = Arc::new(Scripted { delay: Duration::from_millis(300), ..Scripted::default() });
    let (w1, w2) = (worker(&h, "w1", processor(&h, applier.clone())), worker(&h, "w2", processor(&h, applier.clone())));
    let (r1, r2) = tokio::join!(w1.try_execute_next(), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        w2.try_execute_next().await
    });
    assert!(matches!(r1.unwrap(), Outcome::Done { .. }));
    assert_eq!(r2.unwrap(), Outcome::Empty, "the event's concurrency key keeps a second run out");
    drain(&w2).await;
    assert_eq!(applier.calls(), 1, "applied once");
    assert_eq!(event(&h, id).await.status, WebhookEventStatus::Processed);
}

/// A processing store whose first `processed` mark fails, as if the process died after the
/// applier's effect and before the mark.
struct CrashBeforeMark {
    inner: Arc<dyn Store>,
    crashed: AtomicUsize,
}

#[async_trait]
impl WebhookProcessingStore for CrashBeforeMark {
    async fn find_webhook_event(&self, id: WebhookEventId) -> StoreResult<WebhookEvent> {
        self.inner.find_webhook_event(id).await
    }
    async fn start_webhook_attempt(&self, id: WebhookEventId) -> StoreResult<Option<WebhookEvent>> {
        self.inner.start_webhook_attempt(id).await
    }
    async fn settle_webhook_event(&self, id: WebhookEventId, settle: &WebhookSettle) -> StoreResult<bool> {
        if *settle == WebhookSettle::Processed && self.crashed.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(StoreError::Unavailable("connection reset".into()));
        }
        self.inner.settle_webhook_event(id, settle).await
    }
    async fn reprocess_webhook_event(
        &self,
        scope: TenantScope,
        id: WebhookEventId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<WebhookEvent> {
        self.inner.reprocess_webhook_event(scope, id, now).await
    }
    async fn webhook_ciphertexts_not_under(&self, primary: u32, limit: u32) -> StoreResult<Vec<WebhookCiphertext>> {
        self.inner.webhook_ciphertexts_not_under(primary, limit).await
    }
    async fn rewrap_webhook_ciphertext(&self, old: &WebhookCiphertext, key_id: u32, c: &[u8]) -> StoreResult<bool> {
        self.inner.rewrap_webhook_ciphertext(old, key_id, c).await
    }
}

async fn a_crash_between_effect_and_mark_applies_again_harmlessly(store: Arc<dyn Store>) {
    let h = harness(store).await;
    let (source, key) = h.source().await;
    let id = ingest(&h, source, &key, "msg_1", br#"{"a":1}"#).await;
    let crashing = Arc::new(CrashBeforeMark { inner: h.store.clone(), crashed: AtomicUsize::new(0) });
    let p = Processor::new(crashing, h.vault.clone(), h.clock.clone())
        .with_applier(WebhookSourceKind::Source, Arc::new(ReceivedApplier::new(h.store.clone())));
    let w = worker(&h, "w1", p);
    drain(&w).await;
    assert_eq!(event(&h, id).await.status, WebhookEventStatus::Pending, "the mark was lost");
    assert_eq!(received(&h).await.len(), 1, "the effect happened");
    h.clock.advance(3600);
    drain(&w).await;
    let e = event(&h, id).await;
    assert_eq!((e.status, e.attempts), (WebhookEventStatus::Processed, 2));
    let out = received(&h).await;
    assert_eq!(out.len(), 2, "applied again");
    assert_eq!(out[0].payload, out[1].payload, "the same event, recognisable by its webhook_event_id");
    h.clock.advance(86_400);
    assert_eq!(drain(&w).await, 0, "nothing more to do");
}

fn second_key() -> (KeyRing, SecretString) {
    let (_, text) = KeyRing::generate();
    let text = SecretString::from(format!("2:{}", &text.expose_secret()[2..]));
    (KeyRing::parse(&text).unwrap(), text)
}

async fn rotate_rewraps_webhook_secrets_and_bodies(store: Arc<dyn Store>) {
    let h = harness(store).await;
    let (source, key) = h.source().await;
    let body = br#"{"kept":true}"#;
    let id = ingest(&h, source, &key, "msg_1", body).await;
    let usage = h.store.webhook_key_usage().await.unwrap();
    assert_eq!(usage.iter().map(|u| (u.key_id, u.ciphertexts)).collect::<Vec<_>>(), vec![(1, 2)]);

    // Deploy: k2 first, k1 still loaded.
    let (_, k2) = second_key();
    let both = Vault::new(
        KeyRing::parse(&SecretString::from(format!("{},{}", k2.expose_secret(), h.keys.expose_secret()))).unwrap(),
    );
    assert_eq!(both.ring().ids(), vec![2, 1]);
    let done = rewrap_webhooks(h.store.as_ref(), &both, 1, |_, _| {}).await.expect("rewrap");
    assert_eq!((done.moved, done.failed), (2, 0));
    let usage = h.store.webhook_key_usage().await.unwrap();
    assert_eq!(usage.iter().map(|u| (u.key_id, u.ciphertexts)).collect::<Vec<_>>(), vec![(2, 2)], "nothing on k1");
    assert_eq!(rewrap_webhooks(h.store.as_ref(), &both, 10, |_, _| {}).await.unwrap().moved, 0, "a rerun is a no-op");

    // Retire k1: everything opens with k2 alone.
    let only_k2 = Vault::new(KeyRing::parse(&k2).unwrap());
    let e = event(&h, id).await;
    assert_eq!(e.key_id, 2);
    let opened = only_k2.decrypt(&e.body, &body_aad(Some(h.scope.tenant_id()), id)).expect("the body opens");
    assert_eq!(opened.as_slice(), body);
    let src = h.store.get_webhook_source(h.scope, source).await.unwrap();
    let sources = patchbay_webhooks::Sources::new(h.store.clone(), only_k2.clone());
    assert_eq!(sources.keys(&src, h.clock.now()).len(), 1, "the secret opens under k2");
    let p = Processor::new(h.store.clone(), only_k2, h.clock.clone())
        .with_applier(WebhookSourceKind::Source, Arc::new(ReceivedApplier::new(h.store.clone())));
    assert_eq!(drain(&worker(&h, "w1", p)).await, 1);
    assert_eq!(event(&h, id).await.status, WebhookEventStatus::Processed, "processed with k2 alone");
}
