//! The inbox through `Inbox::ingest` on both stores: verification before any write, dedup
//! per source, group commit under concurrency, rotation overlap, and a store that is down.

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue};
use patchbay_store::*;
use patchbay_testkit::conformance::tenant_with_user;
use patchbay_token_vault::{KeyRing, Vault};
use patchbay_webhooks::scheme::sign_standard;
use patchbay_webhooks::{
    body_aad, BatchSettings, Batcher, Inbox, IngestError, Ingested, Rejection, SigningKey, Sources,
};
use std::sync::{Arc, Mutex};

/// A clock tests move by hand.
#[derive(Debug)]
pub(crate) struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl ManualClock {
    pub(crate) fn advance(&self, seconds: i64) {
        *self.0.lock().unwrap() += chrono::Duration::seconds(seconds);
    }
}

pub(crate) struct Harness {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) inbox: Inbox,
    pub(crate) vault: Vault,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) scope: TenantScope,
    /// The vault's key ring as `PATCHBAY_VAULT_KEYS` text (key 1).
    pub(crate) keys: secrecy::SecretString,
}

pub(crate) async fn harness(store: Arc<dyn Store>) -> Harness {
    let (scope, _) = tenant_with_user(store.as_ref(), "org:inbox-test").await;
    let (ring, keys) = KeyRing::generate();
    let vault = Vault::new(ring);
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    let batcher = Batcher::spawn(store.clone(), BatchSettings { committers: 2, ..BatchSettings::default() });
    let inbox = Inbox::new(store.clone(), vault.clone(), batcher, clock.clone());
    Harness { store, inbox, vault, clock, scope, keys }
}

impl Harness {
    pub(crate) async fn source(&self) -> (WebhookSourceId, SigningKey) {
        let created = self
            .inbox
            .sources()
            .create(self.scope, "billing", WebhookScheme::StandardWebhooks, None, self.clock.now())
            .await
            .expect("create a source");
        let key = SigningKey::from_secret(WebhookScheme::StandardWebhooks, &created.secret).expect("whsec_ secret");
        (created.source.id, key)
    }

    pub(crate) fn signed(&self, key: &SigningKey, id: &str, body: &[u8]) -> HeaderMap {
        let ts = self.clock.now().timestamp();
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_str(id).unwrap());
        h.insert("webhook-timestamp", HeaderValue::from(ts));
        h.insert("webhook-signature", HeaderValue::from_str(&sign_standard(key, id, ts, body)).unwrap());
        h
    }

    pub(crate) async fn events(&self) -> Vec<WebhookEvent> {
        let page = Page::new(Some(500), None);
        self.store.list_webhook_events(self.scope, &WebhookEventFilter::default(), page).await.expect("list").items
    }
}

macro_rules! on_both_stores {
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

on_both_stores!(
    a_verified_delivery_is_stored_sealed_and_a_redelivery_is_a_duplicate,
    a_bad_signature_or_stale_timestamp_writes_nothing,
    the_same_delivery_sent_concurrently_is_stored_once,
    sixty_four_concurrent_deliveries_all_land_exactly_once,
    the_same_webhook_id_at_two_sources_is_two_events,
    a_rotated_secret_verifies_during_the_overlap_only,
    a_rotation_takes_effect_at_once_here_and_within_the_key_cache_ttl_elsewhere,
);

async fn a_verified_delivery_is_stored_sealed_and_a_redelivery_is_a_duplicate(store: Arc<dyn Store>) {
    let h = harness(store).await;
    let (source, key) = h.source().await;
    let body = br#"{"type":"invoice.paid"}"#;
    let headers = h.signed(&key, "msg_1", body);
    let Ingested::Stored(id) = h.inbox.ingest(source, &headers, body).await.expect("stored") else {
        panic!("the first delivery must be stored")
    };
    assert_eq!(h.inbox.ingest(source, &headers, body).await.expect("again"), Ingested::Duplicate);
    let events = h.events().await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!((event.id, event.dedup_key.as_str(), event.source_id.clone()), (id, "msg_1", source.to_string()));
    assert!(!event.body.windows(body.len()).any(|w| w == body), "the body is not stored in plaintext");
    let opened = h.vault.decrypt(&event.body, &body_aad(Some(h.scope.tenant_id()), id)).expect("opens");
    assert_eq!(opened.as_slice(), body);
    assert!(event.headers.get("webhook-signature").is_none(), "no signature is kept");
}

async fn a_bad_signature_or_stale_timestamp_writes_nothing(store: Arc<dyn Store>) {
    let h = harness(store).await;
    let (source, key) = h.source().await;
    let body = br#"{"n":1}"#;
    let mut tampered = h.signed(&key, "msg_t", body);
    tampered.insert("webhook-id", HeaderValue::from_static("msg_other"));
    let got = h.inbox.ingest(source, &tampered, body).await;
    assert!(matches!(got, Err(IngestError::Rejected(Rejection::BadSignature))), "{got:?}");
    let stale = h.signed(&key, "msg_s", body);
    h.clock.advance(301);
    let got = h.inbox.ingest(source, &stale, body).await;
    assert!(matches!(got, Err(IngestError::Rejected(Rejection::TimestampTooOld))), "{got:?}");
    let unknown = h.inbox.ingest(WebhookSourceId::new(), &stale, body).await;
    assert!(matches!(unknown, Err(IngestError::UnknownSource)), "{unknown:?}");
    assert!(h.events().await.is_empty(), "nothing refused was written");
}

async fn the_same_delivery_sent_concurrently_is_stored_once(store: Arc<dyn Store>) {
    let h = Arc::new(harness(store).await);
    let (source, key) = h.source().await;
    let body = br#"{"same":true}"#.to_vec();
    let headers = h.signed(&key, "msg_same", &body);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (h, headers, body) = (h.clone(), headers.clone(), body.clone());
            tokio::spawn(async move { h.inbox.ingest(source, &headers, &body).await.expect("acknowledged") })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), Ingested::Stored(_)) {
            stored += 1;
        }
    }
    assert_eq!(stored, 1, "exactly one of sixteen concurrent copies is stored; the rest are duplicates");
    assert_eq!(h.events().await.len(), 1);
}

async fn sixty_four_concurrent_deliveries_all_land_exactly_once(store: Arc<dyn Store>) {
    let h = Arc::new(harness(store).await);
    let (source, key) = h.source().await;
    let key = Arc::new(key);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (h, key) = (h.clone(), key.clone());
            tokio::spawn(async move {
                let body = format!(r#"{{"n":{i}}}"#).into_bytes();
                let headers = h.signed(&key, &format!("msg_{i}"), &body);
                // Every delivery is sent twice at once, as a retrying sender might.
                let (a, b) =
                    tokio::join!(h.inbox.ingest(source, &headers, &body), h.inbox.ingest(source, &headers, &body));
                [a.expect("acknowledged"), b.expect("acknowledged")]
            })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        stored += task.await.unwrap().iter().filter(|o| matches!(o, Ingested::Stored(_))).count();
    }
    assert_eq!(stored, 64, "one stored outcome per distinct delivery");
    let mut keys: Vec<String> = h.events().await.into_iter().map(|e| e.dedup_key).collect();
    keys.sort();
    let mut expected: Vec<String> = (0..64).map(|i| format!("msg_{i}")).collect();
    expected.sort();
    assert_eq!(keys, expected, "every delivery landed exactly once");
}

async fn the_same_webhook_id_at_two_sources_is_two_events(store: Arc<dyn Store>) {
    let h = harness(store).await;
    let (first, first_key) = h.source().await;
    let (second, second_key) = h.source().await;
    let body = br#"{"x":1}"#;
    let a = h.inbox.ingest(first, &h.signed(&first_key, "msg_shared", body), body).await.expect("first");
    let b = h.inbox.ingest(second, &h.signed(&second_key, "msg_shared", body), body).await.expect("second");
    assert!(matches!((a, b), (Ingested::Stored(_), Ingested::Stored(_))));
    let wrong = h.inbox.ingest(second, &h.signed(&first_key, "msg_cross", body), body).await;
    assert!(
        matches!(wrong, Err(IngestError::Rejected(Rejection::BadSignature))),
        "one source's secret is not another's"
    );
    assert_eq!(h.events().await.len(), 2);
}

async fn a_rotated_secret_verifies_during_the_overlap_only(store: Arc<dyn Store>) {
    let h = harness(store).await;
    let (source, old_key) = h.source().await;
    let rotated =
        h.inbox.sources().rotate(h.scope, source, chrono::Duration::seconds(600), h.clock.now()).await.expect("rotate");
    let new_key = SigningKey::from_secret(WebhookScheme::StandardWebhooks, &rotated.secret).unwrap();
    let body = br#"{"r":1}"#;
    let during_old = h.inbox.ingest(source, &h.signed(&old_key, "during-old", body), body).await;
    let during_new = h.inbox.ingest(source, &h.signed(&new_key, "during-new", body), body).await;
    assert!(during_old.is_ok() && during_new.is_ok(), "both secrets verify during the overlap");
    h.clock.advance(601);
    let after_old = h.inbox.ingest(source, &h.signed(&old_key, "after-old", body), body).await;
    assert!(matches!(after_old, Err(IngestError::Rejected(Rejection::BadSignature))), "{after_old:?}");
    let after_new = h.inbox.ingest(source, &h.signed(&new_key, "after-new", body), body).await;
    assert!(after_new.is_ok(), "the new secret keeps verifying");
    assert_eq!(h.events().await.len(), 3);
}

async fn a_rotation_takes_effect_at_once_here_and_within_the_key_cache_ttl_elsewhere(store: Arc<dyn Store>) {
    let h = harness(store.clone()).await;
    // A second instance over the same database, with its own (short) key cache.
    let ttl = std::time::Duration::from_millis(400);
    let other_sources = Sources::with_key_cache(store.clone(), h.vault.clone(), ttl);
    let other_batcher = Batcher::spawn(store.clone(), BatchSettings::default());
    let other = Inbox::with_sources(other_sources, h.vault.clone(), other_batcher, h.clock.clone());
    let (source, old_key) = h.source().await;
    let body = br#"{"c":1}"#;
    // Both instances have opened the source (and cached its keys).
    assert!(h.inbox.ingest(source, &h.signed(&old_key, "warm-here", body), body).await.is_ok());
    assert!(other.ingest(source, &h.signed(&old_key, "warm-other", body), body).await.is_ok());
    let rotated = h.inbox.sources().rotate(h.scope, source, chrono::Duration::zero(), h.clock.now()).await.unwrap();
    let new_key = SigningKey::from_secret(WebhookScheme::StandardWebhooks, &rotated.secret).unwrap();
    let here_old = h.inbox.ingest(source, &h.signed(&old_key, "here-old", body), body).await;
    assert!(matches!(here_old, Err(IngestError::Rejected(Rejection::BadSignature))), "at once here: {here_old:?}");
    assert!(h.inbox.ingest(source, &h.signed(&new_key, "here-new", body), body).await.is_ok());
    // The other instance still holds the old keys for at most its TTL, then reads the row again.
    tokio::time::sleep(ttl + std::time::Duration::from_millis(100)).await;
    let other_old = other.ingest(source, &h.signed(&old_key, "other-old", body), body).await;
    assert!(matches!(other_old, Err(IngestError::Rejected(Rejection::BadSignature))), "after the TTL: {other_old:?}");
    assert!(other.ingest(source, &h.signed(&new_key, "other-new", body), body).await.is_ok());
    assert_eq!(h.events().await.len(), 4, "warm-here, warm-other, here-new, other-new");
}
