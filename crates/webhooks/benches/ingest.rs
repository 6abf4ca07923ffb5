//! Inbox ingest with and without group commit: Standard-Webhooks-signed deliveries verified,
//! sealed and committed through `Inbox::ingest` (no HTTP), 64 at a time, on SQLite (a file in a
//! temp dir, WAL, `synchronous=FULL`) and on the test Postgres. Run it with
//!
//! ```text
//! cargo bench -p patchbay-webhooks --bench ingest -- [deliveries, default 4000]
//! ```
//!
//! "one per commit" is the batcher with one item per transaction (what a plain insert per
//! request costs); "group commit" is the default batcher. The two alternate three times per
//! store so load from elsewhere on the machine hits both.

use chrono::Utc;
use http::{HeaderMap, HeaderValue};
use patchbay_store::{Store, SystemClock, WebhookScheme};
use patchbay_testkit::conformance::tenant_with_user;
use patchbay_token_vault::{KeyRing, Vault};
use patchbay_webhooks::scheme::sign_standard;
use patchbay_webhooks::{BatchSettings, Batcher, Inbox, SigningKey};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 64;

async fn run(store: Arc<dyn Store>, batch: BatchSettings, deliveries: usize, run: usize) -> (f64, Duration, Duration) {
    let (scope, _) = tenant_with_user(store.as_ref(), &format!("org:bench-{run}-{}", batch.max_items)).await;
    let vault = Vault::new(KeyRing::generate().0);
    let inbox = Inbox::new(store.clone(), vault, Batcher::spawn(store.clone(), batch), Arc::new(SystemClock));
    let created =
        inbox.sources().create(scope, "bench", WebhookScheme::StandardWebhooks, None, Utc::now()).await.unwrap();
    let key = Arc::new(SigningKey::from_secret(WebhookScheme::StandardWebhooks, &created.secret).unwrap());
    let source = created.source.id;
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|w| {
            let (inbox, key) = (inbox.clone(), key.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for i in (w..deliveries).step_by(CONCURRENCY) {
                    let body = format!(r#"{{"type":"invoice.paid","n":{i},"pad":"{}"}}"#, "x".repeat(400)).into_bytes();
                    let id = format!("msg_{i}");
                    let ts = Utc::now().timestamp();
                    let mut h = HeaderMap::new();
                    h.insert("webhook-id", HeaderValue::from_str(&id).unwrap());
                    h.insert("webhook-timestamp", HeaderValue::from(ts));
                    h.insert("webhook-signature", HeaderValue::from_str(&sign_standard(&key, &id, ts, &body)).unwrap());
                    let sent = Instant::now();
                    inbox.ingest(source, &h, &body).await.expect("stored");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(deliveries);
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    (deliveries as f64 / elapsed.as_secs_f64(), pct(0.50), pct(0.99))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let deliveries: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(4000);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "inbox ingest, {deliveries} deliveries at concurrency {CONCURRENCY}; load average before: {}",
        load.trim()
    );
    let (sqlite, _dir) = patchbay_testkit::db::sqlite_store().await;
    let postgres = patchbay_testkit::db::postgres_store().await;
    let mut stores: Vec<(&str, Arc<dyn Store>, usize)> = vec![("sqlite", sqlite, 1)];
    if let Some(pg) = postgres {
        stores.push(("postgres", pg, 4));
    }
    for (name, store, committers) in stores {
        let single = BatchSettings { max_items: 1, max_wait: Duration::ZERO, committers };
        let group = BatchSettings { committers, ..BatchSettings::default() };
        for round in 0..3 {
            for (label, batch) in [("one per commit", single), ("group commit", group)] {
                let (rate, p50, p99) = run(store.clone(), batch, deliveries, round).await;
                println!(
                    "{name:<9} {label:<15} round {round}: {rate:>8.0} deliveries/s  p50 {:>6.1} ms  p99 {:>6.1} ms",
                    p50.as_secs_f64() * 1e3,
                    p99.as_secs_f64() * 1e3
                );
            }
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
}
