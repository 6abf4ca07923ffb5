//! Events out: deliveries per second from the outbox to a loopback receiver (axum answering
//! 204), dispatch, signing, HTTP and the per-attempt commit included, on SQLite (a file in a
//! temp dir) and on the test Postgres. Run it with
//!
//! ```text
//! cargo bench -p patchbay-webhooks --bench events_out -- [events, default 2000]
//! ```

use axum::http::StatusCode;
use chrono::Utc;
use patchbay_store::{EventType, NewEvent, Store};
use patchbay_testkit::conformance::tenant_with_user;
use patchbay_token_vault::{KeyRing, Vault};
use patchbay_webhooks::out::resolve::{HostResolver, StaticResolver};
use patchbay_webhooks::{EventsOut, OutSettings};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

async fn run(store: Arc<dyn Store>, events: usize) -> f64 {
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (scope, _) = tenant_with_user(store.as_ref(), "org:bench-events-out").await;
    let resolver = StaticResolver::default();
    resolver.set("receiver.bench", &[IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    let resolver: Arc<dyn HostResolver> = Arc::new(resolver);
    let settings = OutSettings { allow_private: true, batch: 200, concurrency: 32, ..OutSettings::default() };
    let out = EventsOut::new(store.clone(), Vault::new(KeyRing::generate().0), settings, resolver).unwrap();
    let url = format!("http://receiver.bench:{port}/hook");
    out.create(scope, &url, &["sync.completed".into()], Utc::now()).await.unwrap();
    for i in 0..events {
        let event = NewEvent {
            tenant_id: scope.tenant_id(),
            connection_id: None,
            event_type: EventType::SyncCompleted,
            payload: serde_json::json!({ "n": i, "pad": "x".repeat(300) }),
        };
        store.append_event(event).await.unwrap();
    }
    let started = Instant::now();
    while received.load(Ordering::Relaxed) < events {
        let report = out.run_once(Utc::now()).await.unwrap();
        assert_eq!(report.retried + report.exhausted, 0, "every attempt is answered 204");
    }
    events as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let events: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2000);
    let (sqlite, _dir) = patchbay_testkit::db::sqlite_store().await;
    println!("sqlite:   {:>8.0} deliveries/s ({events} events, batch 200, 32 in flight)", run(sqlite, events).await);
    match patchbay_testkit::db::postgres_store().await {
        Some(pg) => {
            println!("postgres: {:>8.0} deliveries/s ({events} events, batch 200, 32 in flight)", run(pg, events).await)
        }
        None => println!("postgres: skipped (no server)"),
    }
}
