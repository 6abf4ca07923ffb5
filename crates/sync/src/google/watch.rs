//! Google Calendar push channels (architecture §4.4, providers.md B7, security.md O1–O5).
//!
//! - After a sync run, every calendar without a live channel gets one ([`ensure_watched`]).
//! - A channel's row (id, SHA-256 of its random token) is inserted BEFORE `events.watch` is
//!   called, so the `sync` message Google may send before its response is recognised.
//! - Each channel has a `google.watch.renew` job due `renew_margin` before it expires: it makes a
//!   NEW channel for the calendar first, then stops the old one (both deliver during the overlap,
//!   and each delivery only marks the calendar dirty, so no change is lost and none is doubled).
//! - `google.watch.stop` (queued by the disconnect job) stops a connection's channels.
//!
//! Every Google call goes through the connection's [`Session`] (budget, breaker, token refresh).
//! The token is shown only to Google; nothing here logs it or a calendar id.

use super::calendars;
use super::events::part_name;
use crate::call::{ApiRequest, Session};
use crate::engine::Engine;
use crate::{GooglePush, SyncDeps, SyncError};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use patchbay_store::{
    ConnectionId, ConnectionStatus, Job, JobContext, JobError, JobHandler, JobKind, JobPayload, NewJob,
    NewWatchChannel, StoreError, TenantId, TenantScope, WatchChannel, WatchStopPayload,
};
use rand::RngCore;
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The sync part a calendar's push channel watches (`events:{calendar id}`).
pub fn events_part(calendar_id: &str) -> String {
    part_name(calendar_id)
}

/// SHA-256 of a channel token, as stored and compared.
pub fn token_sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Payload of [`JobKind::GoogleWatchRenew`]: replace channel `channel_id` before it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchRenewPayload {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub channel_id: String,
}

impl WatchRenewPayload {
    /// The renewal job, due at `run_at`.
    pub fn job_at(&self, now: DateTime<Utc>, run_at: DateTime<Utc>) -> NewJob {
        let mut job = self.job(now);
        job.run_at = run_at;
        job
    }
}

impl JobPayload for WatchRenewPayload {
    const KIND: JobKind = JobKind::GoogleWatchRenew;

    fn job(&self, now: DateTime<Utc>) -> NewJob {
        let mut job = NewJob::new(Self::KIND.as_str(), json!(self), now);
        job.dedup_key = Some(format!("{}:{}", Self::KIND, self.channel_id));
        job.concurrency_key = Some(format!("watch:{}", self.connection_id));
        job.max_attempts = 8;
        job
    }
}

/// After a run: every live calendar of the connection without a live channel that outlasts the
/// renewal margin gets one. Failures are logged and left to the next run (polling still works).
pub(crate) async fn ensure_watched(engine: &Engine<'_>) -> Result<(), SyncError> {
    let session = engine.session;
    let deps = session.deps();
    let Some(push) = deps.settings.google_push.clone() else { return Ok(()) };
    let connection = session.connection().id;
    let now = deps.clock.now();
    let margin = chrono::Duration::from_std(push.renew_margin).unwrap_or_default();
    let open = deps.store.open_watch_channels(connection).await?;
    for calendar in calendars::calendar_refs(engine).await? {
        let covered = open.iter().any(|c| c.calendar_id == calendar.provider_id && c.expires_at > now + margin);
        if covered {
            continue;
        }
        if let Err(error) = watch_calendar(session, &push, &calendar.provider_id).await {
            tracing::warn!(%connection, calendar = %calendar.record_id, code = error.code(), "push channel not made");
            if error.wait_until().is_some() {
                break; // out of budget: the next run tries again
            }
        }
    }
    Ok(())
}

/// Makes a channel on `calendar_id`: row first, then `events.watch`, then the confirmation, the
/// part's change signal and the renewal job. Returns the confirmed channel.
pub async fn watch_calendar(
    session: &Session,
    push: &GooglePush,
    calendar_id: &str,
) -> Result<WatchChannel, SyncError> {
    let deps = session.deps();
    let connection = session.connection();
    let now = deps.clock.now();
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let id = uuid::Uuid::new_v4().to_string();
    let ttl = chrono::Duration::from_std(push.ttl).unwrap_or_default();
    let row = NewWatchChannel {
        id: id.clone(),
        tenant_id: connection.tenant_id,
        connection_id: connection.id,
        calendar_id: calendar_id.to_owned(),
        token_sha256: token_sha256(&token),
        expires_at: now + ttl,
        created_at: now,
    };
    deps.store.insert_watch_channel(row).await?;
    let body = json!({
        "id": id,
        "type": "web_hook",
        "address": push.address.as_str(),
        "token": token,
        "params": { "ttl": push.ttl.as_secs().to_string() },
    });
    let request = ApiRequest {
        method: Method::POST,
        url: calendar_url(deps, &["calendars", calendar_id, "events", "watch"])?,
        headers: vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body: Some(Bytes::from(body.to_string())),
        spend: session.google_spend(),
    };
    let answer = match session.call(&request).await {
        Ok(answer) => answer,
        Err(error) => {
            // Never made (or unknown): the row only keeps late messages recognisable.
            let _ = deps.store.stop_watch_channel(&id, deps.clock.now()).await;
            return Err(error);
        }
    };
    let answer: Value = serde_json::from_slice(&answer.body)
        .map_err(|_| SyncError::Protocol("a watch response that is not JSON".into()))?;
    let resource_id = answer
        .get("resourceId")
        .and_then(Value::as_str)
        .ok_or_else(|| SyncError::Protocol("a watch response without resourceId".into()))?;
    let expires_at = expiration(answer.get("expiration"));
    let channel = match deps.store.confirm_watch_channel(&id, resource_id, expires_at).await {
        Ok(channel) => channel,
        Err(StoreError::Conflict(_)) => {
            return Err(SyncError::Protocol("the watch response and the sync message disagree on resourceId".into()))
        }
        Err(e) => return Err(e.into()),
    };
    deps.store.set_change_signal(connection.id, &part_name(calendar_id), Some(channel.expires_at)).await?;
    let margin = chrono::Duration::from_std(push.renew_margin).unwrap_or_default();
    let renew = WatchRenewPayload { tenant_id: connection.tenant_id, connection_id: connection.id, channel_id: id };
    let now = deps.clock.now();
    deps.store.enqueue(renew.job_at(now, (channel.expires_at - margin).max(now)), now).await?;
    tracing::info!(connection = %connection.id, channel = %channel.id, expires_at = %channel.expires_at, "push channel made");
    Ok(channel)
}

/// `POST {root}/calendar/v3/channels/stop` with `{id, resourceId}`; marks the row stopped
/// whatever Google answers about a channel it no longer knows (404).
pub async fn stop_channel(session: &Session, channel: &WatchChannel) -> Result<(), SyncError> {
    let deps = session.deps();
    if let Some(resource_id) = &channel.resource_id {
        let request = ApiRequest {
            method: Method::POST,
            url: calendar_url(deps, &["channels", "stop"])?,
            headers: vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body: Some(Bytes::from(json!({ "id": channel.id, "resourceId": resource_id }).to_string())),
            spend: session.google_spend(),
        };
        match session.call(&request).await {
            Ok(_) => {}
            Err(error) if super::client::is_not_found(&error) => {}
            Err(error) => return Err(error),
        }
    }
    deps.store.stop_watch_channel(&channel.id, deps.clock.now()).await?;
    Ok(())
}

/// `expiration` in Unix milliseconds, as a number or a string (the discovery schema says string).
fn expiration(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let ms = match value? {
        Value::String(s) => s.parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    DateTime::from_timestamp_millis(ms)
}

fn calendar_url(deps: &SyncDeps, segments: &[&str]) -> Result<url::Url, SyncError> {
    let mut url = deps.settings.google_api_url.clone();
    url.path_segments_mut()
        .map_err(|()| SyncError::Protocol("the Google API root cannot take a path".into()))?
        .pop_if_empty()
        .extend(["calendar", "v3"])
        .extend(segments);
    Ok(url)
}

fn retry(error: impl std::fmt::Display) -> JobError {
    JobError::Retry(error.to_string())
}

/// Runs `google.watch.renew`.
#[derive(Clone, Debug)]
pub struct WatchRenewJob {
    pub deps: SyncDeps,
}

#[async_trait]
impl JobHandler for WatchRenewJob {
    async fn run(&self, job: &Job, _ctx: JobContext) -> Result<(), JobError> {
        let payload = WatchRenewPayload::from_job(job).map_err(JobError::Permanent)?;
        let deps = &self.deps;
        let Some(push) = deps.settings.google_push.clone() else { return Ok(()) };
        let old = match deps.store.find_watch_channel(&payload.channel_id).await {
            Ok(old) if old.stopped_at.is_none() => old,
            Ok(_) | Err(StoreError::NotFound) => return Ok(()), // stopped or swept meanwhile
            Err(e) => return Err(retry(e)),
        };
        let scope = TenantScope::new(payload.tenant_id);
        let connection = match deps.store.connection_for_job(scope, payload.connection_id).await {
            Ok(c) if c.status == ConnectionStatus::Active => c,
            Ok(_) | Err(StoreError::NotFound) => return Ok(()), // the disconnect job stops it
            Err(e) => return Err(retry(e)),
        };
        let session = Session::open(deps, connection).await.map_err(|e| retry(e.code()))?;
        // New channel first: from here both deliver, and either marks the calendar dirty.
        match watch_calendar(&session, &push, &old.calendar_id).await {
            Ok(_) => {}
            Err(error) if super::client::is_not_found(&error) => {
                tracing::info!(channel = %old.id, "calendar gone; its channel is not renewed");
            }
            Err(error) => return Err(wait_or_retry(error)),
        }
        stop_channel(&session, &old).await.map_err(wait_or_retry)?;
        tracing::info!(channel = %old.id, "push channel renewed");
        Ok(())
    }
}

fn wait_or_retry(error: SyncError) -> JobError {
    match error.wait_until() {
        Some(at) => JobError::Yield(at),
        None => JobError::Retry(error.code().into()),
    }
}

/// Runs `google.watch.stop`: every open channel of the connection is stopped locally at once
/// (so later messages are answered 200 and ignored) and at Google when a session can still be
/// opened; Google keeps a channel it was not told about alive until it expires.
#[derive(Clone, Debug)]
pub struct WatchStopJob {
    pub deps: SyncDeps,
}

#[async_trait]
impl JobHandler for WatchStopJob {
    async fn run(&self, job: &Job, _ctx: JobContext) -> Result<(), JobError> {
        let payload = WatchStopPayload::from_job(job).map_err(JobError::Permanent)?;
        let deps = &self.deps;
        let open = deps.store.open_watch_channels(payload.connection_id).await.map_err(retry)?;
        if open.is_empty() {
            return Ok(());
        }
        let scope = TenantScope::new(payload.tenant_id);
        let session = match deps.store.connection_for_job(scope, payload.connection_id).await {
            Ok(connection) => Session::open(deps, connection).await.ok(),
            Err(_) => None,
        };
        for channel in &open {
            let stopped = match &session {
                Some(session) => stop_channel(session, channel).await.is_ok(),
                None => self.stop_with_stored_token(scope, channel).await,
            };
            if !stopped {
                deps.store.stop_watch_channel(&channel.id, deps.clock.now()).await.map_err(retry)?;
                tracing::info!(channel = %channel.id, "push channel stopped locally only (no session)");
            }
        }
        Ok(())
    }
}

impl WatchStopJob {
    /// A disconnecting connection gets no session (no token is served for it), but its sealed
    /// credential is still there until the disconnect job destroys it: its access token, if not
    /// expired, can still stop the channel. One call per channel, after the session path.
    async fn stop_with_stored_token(&self, scope: TenantScope, channel: &WatchChannel) -> bool {
        use secrecy::ExposeSecret;
        let deps = &self.deps;
        let Some(resource_id) = &channel.resource_id else { return false };
        let Ok(credential) = deps.store.credential_for_disconnect(scope, channel.connection_id).await else {
            return false;
        };
        let Ok(set) = deps.tokens.open(&credential) else { return false };
        if set.expires_at.is_some_and(|at| at <= deps.clock.now()) {
            return false;
        }
        let Ok(url) = calendar_url(deps, &["channels", "stop"]) else { return false };
        let answer = deps
            .http
            .post(url)
            .bearer_auth(set.access_token.expose_secret())
            .json(&json!({ "id": channel.id, "resourceId": resource_id }))
            .send()
            .await;
        let done = answer.is_ok_and(|r| r.status().is_success() || r.status().as_u16() == 404);
        if done {
            let _ = deps.store.stop_watch_channel(&channel.id, deps.clock.now()).await;
        }
        done
    }
}

/// The push handlers with their job kinds, for the worker.
pub fn handlers(deps: &SyncDeps) -> Vec<(JobKind, Arc<dyn JobHandler>)> {
    vec![
        (JobKind::GoogleWatchRenew, Arc::new(WatchRenewJob { deps: deps.clone() }) as Arc<dyn JobHandler>),
        (JobKind::GoogleWatchStop, Arc::new(WatchStopJob { deps: deps.clone() })),
    ]
}
