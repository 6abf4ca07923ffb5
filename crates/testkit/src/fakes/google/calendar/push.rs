//! Push notifications (providers.md B7): `POST …/calendars/{calendarId}/events/watch`,
//! `POST …/channels/stop`, and delivery to the channel's address.
//!
//! The unpleasant parts are imitated: the `sync` message is delivered BEFORE the watch response
//! is returned (unless a test turns that off); message numbers increase but skip; the fake keeps
//! delivering to a channel until it expires or is stopped, whatever the receiver answers (a 5xx
//! is retried a few times with a growing delay, anything else drops that message); a stopped
//! channel may still get a late message ([`FakeGoogle::deliver_late`]); deliveries carry no body.

use super::errors::{api_error, not_found, ApiError};
use super::gate::{admit, Need};
use crate::fakes::common::json;
use crate::fakes::google::{FakeGoogle, Shared};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The default channel lifetime when `params.ttl` is absent (B7: 604800 s).
const DEFAULT_TTL: u64 = 604_800;
/// The fake's internal cap on a channel's lifetime (Google's is undocumented; 7 days here).
const MAX_TTL: u64 = 604_800;
/// Attempts per message when the receiver answers 5xx.
const ATTEMPTS: u32 = 3;

/// One watch channel as the fake holds it.
#[derive(Clone, Debug)]
pub(crate) struct Channel {
    pub id: String,
    pub sub: String,
    pub calendar: String,
    pub address: String,
    pub token: Option<String>,
    pub resource_id: String,
    pub resource_uri: String,
    pub expires: SystemTime,
    pub last_number: u64,
    pub stopped: bool,
}

/// One message the fake tried to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushDelivery {
    /// `X-Goog-Channel-ID`.
    pub channel: String,
    /// `X-Goog-Message-Number`.
    pub number: u64,
    /// `X-Goog-Resource-State` (`sync` or `exists`).
    pub state: String,
    /// The receiver's last answer (`None`: no answer, connection failed).
    pub status: Option<u16>,
}

/// What the fake knows about push channels.
#[derive(Debug, Default)]
pub(crate) struct PushState {
    pub channels: Vec<Channel>,
    /// Watch requests received (answered or not).
    pub watch_calls: usize,
    /// `channels/stop` requests received, as `(id, resourceId)`.
    pub stop_calls: Vec<(String, String)>,
    pub deliveries: Vec<PushDelivery>,
    /// When false, the watch response is returned before the `sync` message is sent.
    pub sync_after_response: bool,
    /// Whether `http:` addresses are accepted (Google requires HTTPS; tests serve plain HTTP).
    pub allow_http: bool,
    /// The fake's base URL (resource URIs point at it, so a fetch would be counted).
    pub base: String,
    next_resource: u64,
}

pub(super) async fn watch(
    State(shared): State<Shared>,
    Path(calendar_id): Path<String>,
    RawQuery(_query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    shared.lock().unwrap().push.watch_calls += 1;
    let caller = admit(&shared, &headers, &format!("/calendars/{calendar_id}/events/watch"), Need::Events).await?;
    let body: Value = serde_json::from_slice(&body).map_err(|_| parse_error())?;
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let id = text("id").filter(|id| !id.is_empty()).ok_or_else(|| required("id"))?;
    if id.len() > 64 {
        return Err(invalid("channel id longer than 64 characters"));
    }
    let kind = text("type").ok_or_else(|| required("type"))?;
    if kind != "web_hook" && kind != "webhook" {
        return Err(invalid("unknown channel type"));
    }
    let address = text("address").ok_or_else(|| required("address"))?;
    let token = text("token");
    if token.as_ref().is_some_and(|t| t.len() > 256) {
        return Err(invalid("channel token longer than 256 characters"));
    }
    let ttl = match body.pointer("/params/ttl") {
        None => DEFAULT_TTL,
        Some(Value::String(s)) => s.parse().map_err(|_| invalid("params.ttl is not a number"))?,
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| invalid("params.ttl is not a number"))?,
        Some(_) => return Err(invalid("params.ttl is not a number")),
    };
    let channel = {
        let mut st = shared.lock().unwrap();
        let https = address.starts_with("https://");
        let plain_allowed = st.push.allow_http && address.starts_with("http://");
        if !https && !plain_allowed {
            return Err(api_error(
                400,
                "push",
                "push.webhookUrlNotHttps",
                &format!("WebHook callback must be HTTPS: {address}"),
                None,
            ));
        }
        if st.push.channels.iter().any(|c| c.id == id) {
            return Err(api_error(400, "global", "channelIdNotUnique", "Channel id not unique", None));
        }
        let now = st.clock.now();
        let state = &mut st.calendar;
        let calendar = match state.calendar(&caller.sub, &caller.email, &calendar_id) {
            Some(calendar) if !calendar.deleted => calendar.id.clone(),
            _ => return Err(not_found()),
        };
        // One resource id per watched collection, like Google's (stable across channels).
        let existing = st.push.channels.iter().find(|c| c.sub == caller.sub && c.calendar == calendar);
        let resource_id = match existing {
            Some(c) => c.resource_id.clone(),
            None => {
                st.push.next_resource += 1;
                format!("res-{:08x}-{}", st.push.next_resource, id.len())
            }
        };
        let resource_uri = format!("{}calendar/v3/calendars/{}/events?alt=json", shared_base(&st), encode(&calendar));
        let channel = Channel {
            id,
            sub: caller.sub,
            calendar,
            address,
            token,
            resource_id,
            resource_uri,
            expires: now + Duration::from_secs(ttl.min(MAX_TTL)),
            last_number: 0,
            stopped: false,
        };
        st.push.channels.push(channel.clone());
        channel
    };
    let answer = json!({
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": channel.resource_uri,
        "token": channel.token,
        // Google's discovery schema says string; accept either on the client side.
        "expiration": unix_ms(channel.expires).to_string(),
    });
    let sync_first = !shared.lock().unwrap().push.sync_after_response;
    if sync_first {
        // B7: the `sync` message may arrive before the watch response.
        deliver(&shared, &channel, "sync", 1).await;
    } else {
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            deliver(&shared, &channel, "sync", 1).await;
        });
    }
    Ok(json(StatusCode::OK, answer))
}

pub(super) async fn stop(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let caller = admit(&shared, &headers, "/channels/stop", Need::Events).await?;
    let body: Value = serde_json::from_slice(&body).map_err(|_| parse_error())?;
    let id = body.get("id").and_then(Value::as_str).ok_or_else(|| required("id"))?.to_owned();
    let resource = body.get("resourceId").and_then(Value::as_str).ok_or_else(|| required("resourceId"))?.to_owned();
    let mut st = shared.lock().unwrap();
    st.push.stop_calls.push((id.clone(), resource.clone()));
    let channel = st.push.channels.iter_mut().find(|c| c.id == id && c.resource_id == resource && !c.stopped);
    match channel {
        // Only the user who made the channel may stop it.
        Some(channel) if channel.sub == caller.sub => {
            channel.stopped = true;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Some(_) => Err(api_error(403, "global", "forbidden", "Forbidden", None)),
        None => Err(api_error(404, "global", "notFound", &format!("Channel '{id}' not found for project"), None)),
    }
}

fn shared_base(st: &crate::fakes::google::state::GoogleState) -> String {
    st.push.base.clone()
}

fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>().replace('+', "%20")
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

fn parse_error() -> ApiError {
    api_error(400, "global", "parseError", "Parse Error", None)
}

fn required(field: &str) -> ApiError {
    api_error(400, "global", "required", &format!("Required: {field}"), None)
}

fn invalid(message: &str) -> ApiError {
    api_error(400, "global", "invalid", message, None)
}

/// Sends one message to `channel` (retrying a 5xx a few times) and records the outcome.
async fn deliver(shared: &Shared, channel: &Channel, state: &str, number: u64) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a plain HTTP client");
    let expires = httpdate(channel.expires);
    let mut status = None;
    for attempt in 0..ATTEMPTS {
        let mut request = client
            .post(&channel.address)
            .header("User-Agent", "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)")
            .header("Content-Type", "application/json; utf-8")
            .header("Content-Length", "0")
            .header("X-Goog-Channel-ID", &channel.id)
            .header("X-Goog-Channel-Expiration", &expires)
            .header("X-Goog-Message-Number", number.to_string())
            .header("X-Goog-Resource-ID", &channel.resource_id)
            .header("X-Goog-Resource-State", state)
            .header("X-Goog-Resource-URI", &channel.resource_uri);
        if let Some(token) = &channel.token {
            request = request.header("X-Goog-Channel-Token", token);
        }
        status = request.send().await.ok().map(|r| r.status().as_u16());
        match status {
            Some(500 | 502 | 503 | 504) | None if attempt + 1 < ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            _ => break,
        }
    }
    let record = PushDelivery { channel: channel.id.clone(), number, state: state.to_owned(), status };
    shared.lock().unwrap().push.deliveries.push(record);
}

/// `Tue, 19 Nov 2013 01:13:52 GMT`.
fn httpdate(at: SystemTime) -> String {
    let at: chrono::DateTime<chrono::Utc> = at.into();
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Queues an `exists` message on every live channel watching `(sub, calendar)`. Message numbers
/// increase but skip (like Google's). Deliveries run on the current Tokio runtime.
pub(crate) fn changed(shared: &Shared, sub: &str, email: &str, calendar: &str) {
    let targets: Vec<(Channel, u64)> = {
        let mut st = shared.lock().unwrap();
        let now = st.clock.now();
        let calendar = if calendar == "primary" {
            st.calendar.calendar(sub, email, calendar).map(|c| c.id.clone()).unwrap_or_default()
        } else {
            calendar.to_owned()
        };
        st.push
            .channels
            .iter_mut()
            .filter(|c| c.sub == sub && c.calendar == calendar && !c.stopped && c.expires > now)
            .map(|c| {
                c.last_number = c.last_number.max(1) + 1 + (c.last_number % 3);
                (c.clone(), c.last_number)
            })
            .collect()
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    for (channel, number) in targets {
        let shared = shared.clone();
        runtime.spawn(async move { deliver(&shared, &channel, "exists", number).await });
    }
}

impl FakeGoogle {
    /// Accepts `http:` watch addresses (Google requires HTTPS with a trusted certificate).
    pub fn allow_http_push_addresses(&self) {
        self.with(|st| st.push.allow_http = true);
    }

    /// When on, the watch response is returned before the `sync` message is sent (by default
    /// the fake sends `sync` first, as Google may).
    pub fn set_sync_after_watch_response(&self, on: bool) {
        self.with(|st| st.push.sync_after_response = on);
    }

    /// Watch requests received.
    pub fn watch_calls(&self) -> usize {
        self.with(|st| st.push.watch_calls)
    }

    /// `channels/stop` requests received, as `(id, resourceId)`.
    pub fn stop_calls(&self) -> Vec<(String, String)> {
        self.with(|st| st.push.stop_calls.clone())
    }

    /// Every message the fake tried to deliver, in completion order.
    pub fn push_deliveries(&self) -> Vec<PushDelivery> {
        self.with(|st| st.push.deliveries.clone())
    }

    /// Ids of channels that are neither stopped nor expired.
    pub fn live_channels(&self) -> Vec<String> {
        self.with(|st| {
            let now = st.clock.now();
            st.push.channels.iter().filter(|c| !c.stopped && c.expires > now).map(|c| c.id.clone()).collect()
        })
    }

    /// `(id, resourceId, token)` of a channel the fake knows.
    pub fn channel(&self, id: &str) -> Option<(String, String, Option<String>)> {
        self.with(|st| {
            st.push.channels.iter().find(|c| c.id == id).map(|c| (c.id.clone(), c.resource_id.clone(), c.token.clone()))
        })
    }

    /// Requests for a channel's `X-Goog-Resource-URI` (which a receiver must never fetch).
    pub fn resource_uri_fetches(&self) -> usize {
        self.requests().iter().filter(|r| r.contains("alt=json")).count()
    }

    /// Delivers one more `exists` message on channel `id` even if it was stopped (Google has been
    /// seen to deliver briefly after a stop); waits for the delivery and returns the answer.
    pub async fn deliver_late(&self, id: &str) -> Option<u16> {
        let channel = self.with(|st| {
            let channel = st.push.channels.iter_mut().find(|c| c.id == id)?;
            channel.last_number += 1;
            Some((channel.clone(), channel.last_number))
        });
        let (channel, number) = channel?;
        deliver(&self.state, &channel, "exists", number).await;
        self.with(|st| st.push.deliveries.last().and_then(|d| d.status))
    }

    /// Waits until `count` deliveries have been recorded (or panics after 10 s).
    pub async fn wait_for_deliveries(&self, count: usize) -> Vec<PushDelivery> {
        for _ in 0..1000 {
            let deliveries = self.push_deliveries();
            if deliveries.len() >= count {
                return deliveries;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fake Google: fewer than {count} push deliveries after 10 s: {:?}", self.push_deliveries());
    }
}
