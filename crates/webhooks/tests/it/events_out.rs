//! Events out over real HTTP on loopback, on both stores: signed deliveries with one
//! `webhook-id` across retries, `Retry-After`, exhaustion and redrive, disabling with a final
//! event, test events, and private addresses refused at registration and at connect time.
//! Time is passed to every round by hand, so the day-long schedule runs in milliseconds.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use patchbay_store::*;
use patchbay_testkit::conformance::{new_connection, tenant_with_user};
use patchbay_token_vault::{KeyRing, Vault};
use patchbay_webhooks::out::resolve::{HostResolver, StaticResolver};
use patchbay_webhooks::{rewrap_webhooks, verify, EndpointError, EventsOut, OutSettings, Scheme, SigningKey};
use secrecy::{ExposeSecret, SecretString};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const PUBLIC: IpAddr = IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34));

/// A scripted answer: a status and an optional `Retry-After`.
type Scripted = (u16, Option<&'static str>);

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A loopback receiver answering from a script (the last answer repeats).
#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<Vec<Scripted>>>,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    r.got.lock().unwrap().push(Received { headers, body: body.to_vec() });
    let (status, retry_after) = {
        let mut script = r.script.lock().unwrap();
        if script.len() > 1 {
            script.remove(0)
        } else {
            script.first().copied().unwrap_or((200, None))
        }
    };
    let status = StatusCode::from_u16(status).unwrap();
    match retry_after {
        Some(value) => (status, [("retry-after", value)]).into_response(),
        None => status.into_response(),
    }
}

impl Receiver {
    async fn start(script: Vec<Scripted>) -> (Self, SocketAddr) {
        let receiver = Self { script: Arc::new(Mutex::new(script)), ..Self::default() };
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, addr)
    }

    fn answer(&self, script: Vec<Scripted>) {
        *self.script.lock().unwrap() = script;
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

struct Harness {
    store: Arc<dyn Store>,
    out: EventsOut,
    resolver: StaticResolver,
    scope: TenantScope,
    user: AppUser,
    now: DateTime<Utc>,
    /// The vault's key ring as `PATCHBAY_VAULT_KEYS` text (key 1).
    keys: SecretString,
}

async fn harness(store: Arc<dyn Store>, settings: OutSettings) -> Harness {
    let (scope, user) = tenant_with_user(store.as_ref(), "org:events-out").await;
    let resolver = StaticResolver::default();
    let (ring, keys) = KeyRing::generate();
    let vault = Vault::new(ring);
    let dyn_resolver: Arc<dyn HostResolver> = Arc::new(resolver.clone());
    let out = EventsOut::new(store.clone(), vault, settings, dyn_resolver).expect("client");
    // Events written before this test's endpoints exist are not theirs: drain them.
    let now = patchbay_testkit::conformance::t0();
    out.run_once(now).await.expect("drain");
    Harness { store, out, resolver, scope, user, now, keys }
}

fn private_allowed() -> OutSettings {
    OutSettings { allow_private: true, ..OutSettings::default() }
}

impl Harness {
    /// A loopback receiver registered as an endpoint for `types`, under a name.
    async fn endpoint(
        &self,
        name: &str,
        types: &[&str],
        script: Vec<Scripted>,
    ) -> (Receiver, EventEndpoint, SigningKey) {
        let (receiver, addr) = Receiver::start(script).await;
        self.resolver.set(name, &[LOOPBACK]);
        let url = format!("http://{name}:{}/hook", addr.port());
        let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        let created = self.out.create(self.scope, &url, &types, self.now).await.expect("create endpoint");
        let key = SigningKey::from_secret(WebhookScheme::StandardWebhooks, &created.secret).expect("whsec_");
        (receiver, created.endpoint, key)
    }

    async fn deliveries(&self, endpoint: EventEndpointId) -> Vec<EventDelivery> {
        self.out.deliveries(self.scope, endpoint, &EventDeliveryFilter::default(), Page::first()).await.unwrap().items
    }

    /// Runs rounds, each at the earliest due time of `endpoint`'s pending deliveries, until
    /// none is pending; answers the times of the rounds.
    async fn drive(&mut self, endpoint: EventEndpointId) -> Vec<DateTime<Utc>> {
        self.out.run_once(self.now).await.expect("first round");
        let mut rounds = vec![self.now];
        for _ in 0..50 {
            let due = self
                .deliveries(endpoint)
                .await
                .iter()
                .filter(|d| d.status == EventDeliveryStatus::Pending)
                .filter_map(|d| d.next_attempt_at)
                .min();
            let Some(due) = due else { return rounds };
            if self.out.get(self.scope, endpoint).await.unwrap().disabled_at.is_some() {
                return rounds;
            }
            self.now = self.now.max(due);
            self.out.run_once(self.now).await.expect("round");
            rounds.push(self.now);
        }
        panic!("deliveries still pending after 50 rounds");
    }
}

fn verifies(received: &Received, keys: &[SigningKey]) -> bool {
    let ts: i64 = received.headers["webhook-timestamp"].to_str().unwrap().parse().unwrap();
    verify(&Scheme::StandardWebhooks, keys, &received.headers, &received.body, ts).is_ok()
}

pub async fn a_500_then_a_429_then_a_200_make_one_signed_delivery_with_one_webhook_id(store: Arc<dyn Store>) {
    let mut h = harness(store, private_allowed()).await;
    let script = vec![(500, None), (429, Some("3600")), (200, None)];
    let (receiver, endpoint, old_key) = h.endpoint("receiver.test", &["connection.created"], script).await;
    let connection = h.store.create_connection(new_connection(&h.user, "acct-1")).await.expect("connection");

    let first = h.out.run_once(h.now).await.expect("round 1");
    assert_eq!((first.dispatched_events, first.created_deliveries, first.attempted, first.retried), (1, 1, 1, 1));
    let after_500 = h.deliveries(endpoint.id).await.remove(0);
    assert_eq!(
        (after_500.attempts, after_500.last_status, after_500.status),
        (1, Some(500), EventDeliveryStatus::Pending)
    );
    let wait = after_500.next_attempt_at.unwrap() - h.now;
    assert!(wait >= Duration::seconds(54) && wait <= Duration::seconds(66), "about a minute: {wait}");
    let early = h.out.run_once(h.now + Duration::seconds(30)).await.expect("early round");
    assert_eq!(early.attempted, 0, "nothing is sent before it is due");

    h.now = after_500.next_attempt_at.unwrap();
    h.out.run_once(h.now).await.expect("round 2");
    let after_429 = h.deliveries(endpoint.id).await.remove(0);
    assert_eq!((after_429.attempts, after_429.last_status), (2, Some(429)));
    assert!(after_429.next_attempt_at.unwrap() - h.now >= Duration::seconds(3600), "Retry-After: 3600 is honoured");

    // A rotation before the last attempt: it carries a signature per valid secret.
    let rotated = h.out.rotate(h.scope, endpoint.id, Duration::hours(2), h.now).await.expect("rotate");
    let new_key = SigningKey::from_secret(WebhookScheme::StandardWebhooks, &rotated.secret).unwrap();
    h.now = after_429.next_attempt_at.unwrap();
    let last = h.out.run_once(h.now).await.expect("round 3");
    assert_eq!((last.attempted, last.delivered), (1, 1));
    assert_eq!(h.out.run_once(h.now + Duration::days(2)).await.expect("later").attempted, 0, "nothing more");

    let got = receiver.got();
    assert_eq!(got.len(), 3, "three attempts reached the receiver");
    let delivered = h.deliveries(endpoint.id).await.remove(0);
    assert_eq!(
        (delivered.status, delivered.attempts, delivered.last_status),
        (EventDeliveryStatus::Delivered, 3, Some(200))
    );
    assert_eq!(delivered.delivered_at, Some(h.now));
    for r in &got {
        assert_eq!(r.headers["webhook-id"], delivered.event_id.to_string().as_str(), "one webhook-id on every attempt");
        assert_eq!(r.body, got[0].body, "the same bytes on every attempt");
        assert_eq!(r.headers["content-type"], "application/json");
    }
    assert!(verifies(&got[0], std::slice::from_ref(&old_key)) && verifies(&got[1], std::slice::from_ref(&old_key)));
    assert!(!verifies(&got[0], std::slice::from_ref(&new_key)), "the new secret did not exist yet");
    assert!(verifies(&got[2], std::slice::from_ref(&old_key)), "the old secret still signs during the overlap");
    assert!(verifies(&got[2], std::slice::from_ref(&new_key)), "and so does the new one");
    assert_eq!(got[2].headers["webhook-signature"].to_str().unwrap().split(' ').count(), 2);
    let mut tampered = got[2].clone();
    tampered.body.push(b' ');
    assert!(!verifies(&tampered, &[old_key, new_key]), "the signature covers the body");

    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "connection.created");
    assert_eq!(body["id"], delivered.event_id.to_string());
    assert_eq!(body["data"]["connection_id"], connection.id.to_string());
    assert_eq!(body["data"]["sequence"], 1);
    assert_eq!(body["data"]["object"]["id"], connection.id.to_string());
    assert_eq!(body["data"]["object"]["status"], "active");
    assert!(DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
}

pub async fn an_always_failing_endpoint_ends_exhausted_after_seven_attempts_and_redrive_delivers(
    store: Arc<dyn Store>,
) {
    let mut h = harness(store, private_allowed()).await;
    let (receiver, endpoint, key) = h.endpoint("down.test", &["connection.created"], vec![(503, None)]).await;
    h.store.create_connection(new_connection(&h.user, "acct-2")).await.expect("connection");
    let started = h.now;
    let rounds = h.drive(endpoint.id).await;
    let exhausted = h.deliveries(endpoint.id).await.remove(0);
    assert_eq!((exhausted.status, exhausted.attempts), (EventDeliveryStatus::Exhausted, 7));
    assert_eq!((exhausted.last_status, exhausted.last_error.as_deref()), (Some(503), Some("HTTP 503")));
    assert_eq!(receiver.got().len(), 7, "seven attempts");
    let span = *rounds.last().unwrap() - started;
    assert!(span >= Duration::hours(14) && span <= Duration::hours(20), "about a day: {span}");
    let gaps: Vec<i64> = rounds.windows(2).map(|w| (w[1] - w[0]).num_seconds()).collect();
    assert!(gaps.windows(2).all(|g| g[1] > g[0]), "a growing schedule: {gaps:?}");
    let listed = h
        .out
        .deliveries(
            h.scope,
            endpoint.id,
            &EventDeliveryFilter { status: Some(EventDeliveryStatus::Exhausted) },
            Page::first(),
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1, "listable as exhausted");
    assert!(h.out.get(h.scope, endpoint.id).await.unwrap().disabled_at.is_none(), "17 h is not days");

    receiver.answer(vec![(204, None)]);
    let redriven = h.out.redrive(h.scope, endpoint.id, exhausted.id, h.now).await.expect("redrive");
    assert_eq!((redriven.status, redriven.attempts), (EventDeliveryStatus::Pending, 0));
    let round = h.out.run_once(h.now).await.expect("round");
    assert_eq!(round.delivered, 1);
    let got = receiver.got();
    assert_eq!(got.len(), 8);
    assert_eq!(got[7].headers["webhook-id"], got[0].headers["webhook-id"], "a redrive keeps the webhook-id");
    assert!(verifies(&got[7], &[key]));
    assert_eq!(h.deliveries(endpoint.id).await[0].status, EventDeliveryStatus::Delivered);
}

pub async fn a_4xx_is_not_retried_and_a_redirect_is_not_followed(store: Arc<dyn Store>) {
    let h = harness(store, private_allowed()).await;
    let (gone, gone_endpoint, _) = h.endpoint("gone.test", &["connection.created"], vec![(410, None)]).await;
    let (moved, moved_endpoint, _) = h.endpoint("moved.test", &["connection.created"], vec![(302, None)]).await;
    h.store.create_connection(new_connection(&h.user, "acct-3")).await.expect("connection");
    let round = h.out.run_once(h.now).await.expect("round");
    assert_eq!((round.attempted, round.exhausted), (2, 2));
    for (receiver, endpoint, status) in [(gone, gone_endpoint, 410), (moved, moved_endpoint, 302)] {
        assert_eq!(receiver.got().len(), 1, "one attempt only");
        let d = h.deliveries(endpoint.id).await.remove(0);
        assert_eq!((d.status, d.attempts, d.last_status), (EventDeliveryStatus::Exhausted, 1, Some(status)));
    }
}

pub async fn an_endpoint_failing_for_days_is_disabled_with_a_final_event(store: Arc<dyn Store>) {
    let settings = OutSettings { disable_after: Duration::hours(5), ..private_allowed() };
    let mut h = harness(store, settings).await;
    let (failing, endpoint, _) = h.endpoint("failing.test", &["connection.created"], vec![(500, None)]).await;
    let (watcher, watcher_endpoint, watcher_key) =
        h.endpoint("watcher.test", &["endpoint.disabled"], vec![(200, None)]).await;
    h.store.create_connection(new_connection(&h.user, "acct-4")).await.expect("connection");
    h.drive(endpoint.id).await;
    let disabled = h.out.get(h.scope, endpoint.id).await.unwrap();
    assert!(disabled.disabled_at.is_some(), "disabled after failing for more than 5 h");
    let attempts = failing.got().len();
    // Failures at about 0, 1 min, 6 min, 36 min, 2.6 h and 7.6 h: the sixth is past 5 h.
    assert_eq!(attempts, 6, "stopped at the first failure past the limit");
    let pending = h.deliveries(endpoint.id).await.remove(0);
    assert_eq!(pending.status, EventDeliveryStatus::Pending, "left pending for a redrive");

    let round = h.out.run_once(h.now).await.expect("final event round");
    assert_eq!(round.delivered, 1, "the final event reaches the tenant's other endpoint");
    let got = watcher.got();
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "endpoint.disabled");
    assert_eq!(body["data"]["object"]["endpoint_id"], endpoint.id.to_string());
    assert!(verifies(&got[0], &[watcher_key]));
    assert_eq!(h.deliveries(watcher_endpoint.id).await.len(), 1);

    h.store.create_connection(new_connection(&h.user, "acct-5")).await.expect("another event");
    let later = h.out.run_once(h.now + Duration::days(3)).await.expect("later");
    assert_eq!(later.created_deliveries, 0, "a disabled endpoint gets no new deliveries");
    assert_eq!(failing.got().len(), attempts, "and no attempts");
}

pub async fn a_name_rebound_to_loopback_after_registration_is_refused_when_connecting(store: Arc<dyn Store>) {
    let h = harness(store, OutSettings::default()).await;
    // A plain TCP listener counting connections: a refused address must not even be connected to.
    let listener = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    h.resolver.set("hooks.rebind.test", &[PUBLIC]);
    let url = format!("https://hooks.rebind.test:{port}/hook");
    let created =
        h.out.create(h.scope, &url, &["connection.created".into()], h.now).await.expect("public at registration");
    h.resolver.set("hooks.rebind.test", &[LOOPBACK]);
    h.store.create_connection(new_connection(&h.user, "acct-6")).await.expect("connection");
    let round = h.out.run_once(h.now).await.expect("round");
    assert_eq!((round.attempted, round.retried), (1, 1));
    let d = h.deliveries(created.endpoint.id).await.remove(0);
    let error = d.last_error.unwrap();
    assert!(error.contains("loopback"), "the refusal is recorded: {error}");
    assert!(!error.contains("hooks.rebind.test:"), "no URL in the error: {error}");
    assert_eq!(d.last_status, None);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "no connection was made to 127.0.0.1");

    // A mixed answer is refused whole, at connect time and at registration.
    h.resolver.set("hooks.rebind.test", &[PUBLIC, LOOPBACK]);
    let again = h.out.run_once(d.next_attempt_at.unwrap()).await.expect("round");
    assert_eq!(again.retried, 1);
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    let refused = h.out.create(h.scope, &url, &["connection.created".into()], h.now).await;
    assert!(matches!(refused, Err(EndpointError::Invalid(m)) if m.contains("loopback")));
}

pub async fn registration_refuses_private_names_and_addresses(store: Arc<dyn Store>) {
    let h = harness(store, OutSettings::default()).await;
    let types = vec!["sync.completed".to_owned()];
    h.resolver.set("localhost", &[LOOPBACK]);
    h.resolver.set("metadata.test", &["169.254.169.254".parse().unwrap()]);
    h.resolver.set("intranet.test", &["10.1.2.3".parse().unwrap()]);
    h.resolver.set("v6.test", &["fd00::1".parse().unwrap()]);
    h.resolver.set("mapped.test", &["::ffff:192.168.0.1".parse().unwrap()]);
    h.resolver.set("cgnat.test", &["100.64.0.7".parse().unwrap()]);
    h.resolver.set("public.test", &[PUBLIC]);
    for url in [
        "https://localhost/hook",
        "https://metadata.test/latest",
        "https://intranet.test/",
        "https://v6.test/",
        "https://mapped.test/",
        "https://cgnat.test/",
        "https://127.0.0.1/",
        "https://0x7f000001/",
        "https://[::ffff:127.0.0.1]/",
        "https://[fe80::1%25eth0]/",
        "https://169.254.169.254/",
        "https://unknown.test/",
        "http://public.test/",
        "https://user:pw@public.test/",
        "not a url",
    ] {
        let refused = h.out.create(h.scope, url, &types, h.now).await;
        assert!(matches!(refused, Err(EndpointError::Invalid(_))), "{url}: {refused:?}");
    }
    for bad in [vec![], vec!["nope".to_owned()], vec!["endpoint.test".to_owned()]] {
        let refused = h.out.create(h.scope, "https://public.test/", &bad, h.now).await;
        assert!(matches!(refused, Err(EndpointError::Invalid(_))), "{bad:?}");
    }
    assert!(h.out.list(h.scope, Page::first()).await.unwrap().items.is_empty(), "nothing was stored");
    let ok = h.out.create(h.scope, "https://public.test/hook", &types, h.now).await.expect("a public name");
    assert!(ok.secret_is_whsec());
}

pub async fn a_test_event_goes_to_its_endpoint_only(store: Arc<dyn Store>) {
    let h = harness(store, private_allowed()).await;
    let (receiver, endpoint, key) = h.endpoint("test.test", &["sync.completed"], vec![(200, None)]).await;
    let (other, _, _) = h.endpoint("other.test", &["sync.completed", "endpoint.disabled"], vec![(200, None)]).await;
    let queued = h.out.test(h.scope, endpoint.id, h.now).await.expect("test");
    assert_eq!(queued.event_type, EventType::EndpointTest);
    let round = h.out.run_once(h.now).await.expect("round");
    assert_eq!(round.delivered, 1);
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert!(verifies(&got[0], &[key]));
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!((body["type"].as_str(), body["data"]["sequence"].is_null()), (Some("endpoint.test"), true));
    assert!(other.got().is_empty(), "no other endpoint gets a test event");
}

trait WhsecExt {
    fn secret_is_whsec(&self) -> bool;
}

impl WhsecExt for patchbay_webhooks::EndpointWithSecret {
    fn secret_is_whsec(&self) -> bool {
        use secrecy::ExposeSecret;
        self.secret.expose_secret().starts_with("whsec_")
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
    vault_rotate_rewraps_endpoint_secrets_and_the_endpoint_still_signs_after_the_old_key_is_retired,
    a_500_then_a_429_then_a_200_make_one_signed_delivery_with_one_webhook_id,
    an_always_failing_endpoint_ends_exhausted_after_seven_attempts_and_redrive_delivers,
    a_4xx_is_not_retried_and_a_redirect_is_not_followed,
    an_endpoint_failing_for_days_is_disabled_with_a_final_event,
    a_name_rebound_to_loopback_after_registration_is_refused_when_connecting,
    registration_refuses_private_names_and_addresses,
    a_test_event_goes_to_its_endpoint_only,
);

pub async fn vault_rotate_rewraps_endpoint_secrets_and_the_endpoint_still_signs_after_the_old_key_is_retired(
    store: Arc<dyn Store>,
) {
    let h = harness(store, private_allowed()).await;
    let (receiver, endpoint, key) = h.endpoint("rotated.test", &["connection.created"], vec![(200, None)]).await;
    assert_eq!(h.store.event_endpoint_key_usage().await.unwrap(), vec![WebhookKeyUsage { key_id: 1, ciphertexts: 1 }]);

    // Deploy k2 first with k1 still loaded, then `vault rotate`.
    let (_, fresh) = KeyRing::generate();
    let k2 = SecretString::from(format!("2:{}", &fresh.expose_secret()[2..]));
    let both = format!("{},{}", k2.expose_secret(), h.keys.expose_secret());
    let both = Vault::new(KeyRing::parse(&SecretString::from(both)).unwrap());
    let done = rewrap_webhooks(h.store.as_ref(), &both, 1, |_, _| {}).await.expect("rewrap");
    assert_eq!((done.moved, done.failed), (1, 0), "the endpoint secret moved");
    let usage = h.store.event_endpoint_key_usage().await.unwrap();
    assert_eq!(usage, vec![WebhookKeyUsage { key_id: 2, ciphertexts: 1 }], "nothing left on k1: it can be retired");
    assert_eq!(rewrap_webhooks(h.store.as_ref(), &both, 10, |_, _| {}).await.unwrap().moved, 0, "a rerun is a no-op");

    // k1 retired: a sender holding k2 alone still signs with the endpoint's unchanged secret.
    let resolver: Arc<dyn HostResolver> = Arc::new(h.resolver.clone());
    let only_k2 = Vault::new(KeyRing::parse(&k2).unwrap());
    let out = EventsOut::new(h.store.clone(), only_k2, private_allowed(), resolver).expect("client");
    assert_eq!(out.keys(&h.out.get(h.scope, endpoint.id).await.unwrap(), h.now).len(), 1, "the secret opens");
    h.store.create_connection(new_connection(&h.user, "acct-rotated")).await.expect("connection");
    let round = out.run_once(h.now).await.expect("round");
    assert_eq!((round.attempted, round.delivered), (1, 1));
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert!(verifies(&got[0], std::slice::from_ref(&key)), "the delivery verifies with the secret shown at creation");
}
