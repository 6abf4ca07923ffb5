//! The storage conformance suite: scenarios any `Arc<dyn Store>` must pass. The integration
//! tests run every scenario against SQLite and Postgres; a new backend gets the same list.
//!
//! Scenarios pass times explicitly (`now`), so nothing sleeps waiting for the clock.

mod budgets;
mod change_feed;
mod connect;
mod credentials;
mod event_out;
mod identity;
mod lifecycle;
mod load;
mod monday_webhooks;
mod queue;
mod records;
mod retention;
mod sync;
mod watch_channels;
mod webhook_processing;
mod webhooks;
mod worker;

pub use budgets::*;
pub use change_feed::*;
pub use connect::*;
pub use credentials::*;
pub use event_out::*;
pub use identity::*;
pub use lifecycle::*;
pub use load::*;
pub use monday_webhooks::*;
pub use queue::*;
pub use records::*;
pub use retention::*;
pub use sync::*;
pub use watch_channels::*;
pub use webhook_processing::*;
pub use webhooks::*;
pub use worker::*;

use chrono::{DateTime, SubsecRound, Utc};
use patchbay_store::*;

/// A fixed starting time at stored precision, so values read back compare equal.
pub fn t0() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Seconds after `t`.
pub fn secs(t: DateTime<Utc>, n: i64) -> DateTime<Utc> {
    t + chrono::Duration::seconds(n)
}

/// A tenant with one user, for scenarios that need an owner.
pub async fn tenant_with_user(store: &dyn Store, key: &str) -> (TenantScope, AppUser) {
    let tenant = store.upsert_tenant(key).await.expect("upsert tenant");
    let scope = TenantScope::new(tenant.id);
    let user = store.upsert_user(scope, "https://issuer.test", &format!("{key}-subject")).await.expect("upsert user");
    (scope, user)
}

/// A Monday connection of `user`.
pub fn new_connection(user: &AppUser, account: &str) -> NewConnection {
    NewConnection {
        tenant_id: user.tenant_id,
        user_id: user.id,
        provider: ProviderId::Monday,
        provider_account_id: account.into(),
        provider_user_id: Some("u-1".into()),
        account_name: Some("Acme".into()),
        account_email: Some("owner@acme.test".into()),
        scopes: vec!["me:read".into(), "boards:read".into()],
        status: ConnectionStatus::Active,
        status_reason: None,
    }
}

/// An API key of `tenant` whose hash is derived from `seed`.
pub fn new_api_key(tenant: TenantId, seed: u8) -> NewApiKey {
    NewApiKey {
        tenant_id: tenant,
        name: format!("key {seed}"),
        prefix: format!("pb_{seed:02x}"),
        sha256: [seed; 32],
        scopes: vec![ApiKeyScope::Read, ApiKeyScope::Write],
        expires_at: None,
    }
}

/// A job of `kind` due at `run_at`.
pub fn job(kind: &str, run_at: DateTime<Utc>) -> NewJob {
    NewJob::new(kind, serde_json::json!({ "kind": kind }), run_at)
}

/// A claim by `owner` of any kind with a 30 s lease.
pub fn claim_any(owner: &str, now: DateTime<Utc>) -> Claim<'_> {
    Claim { owner, kinds: &[], lease: chrono::Duration::seconds(30), now }
}

/// An audit record of `tenant` for `action`, by a user.
pub fn audit(tenant: TenantId, action: &str) -> NewAuditEvent {
    NewAuditEvent {
        tenant_id: Some(tenant),
        actor: "user:test".into(),
        action: action.into(),
        target: None,
        request_id: Some("req-1".into()),
        ip: None,
    }
}

/// A redirect-mode connect session of `user` for Monday, its token hash `[seed; 32]`.
pub fn new_session(user: &AppUser, seed: u8, expires_at: DateTime<Utc>) -> NewConnectSession {
    NewConnectSession {
        token_sha256: [seed; 32],
        tenant_id: user.tenant_id,
        user_id: user.id,
        provider: ProviderId::Monday,
        mode: ConnectMode::Redirect,
        return_to: Some("https://app.test/done".into()),
        opener_origin: None,
        reconnect_connection_id: None,
        end_user: EndUser { display_name: Some("Ada".into()), email: None },
        expires_at,
    }
}

/// A credential under `key_id` whose ciphertext is every byte value, then `seed`.
pub fn new_credential(key_id: u32, seed: u8, access_expires_at: Option<DateTime<Utc>>) -> NewCredential {
    let mut ciphertext: Vec<u8> = (0..=255).collect();
    ciphertext.push(seed);
    NewCredential { flow: TokenFlow::MondayV2, key_id, ciphertext, access_expires_at }
}

/// A successful Monday grant of `account` for `user`: a new connection, or an update of
/// `existing`, with an initial sync job deduplicated per connection.
pub fn grant(user: &AppUser, account: &str, existing: Option<ConnectionId>, now: DateTime<Utc>) -> SaveGrant {
    let connection_id = existing.unwrap_or_default();
    SaveGrant {
        connection_id,
        is_new: existing.is_none(),
        tenant_id: user.tenant_id,
        user_id: user.id,
        provider: ProviderId::Monday,
        provider_account_id: account.into(),
        provider_user_id: Some("u-1".into()),
        account_name: Some("Acme".into()),
        account_email: Some("owner@acme.test".into()),
        scopes: vec!["me:read".into(), "boards:read".into()],
        status: ConnectionStatus::Active,
        status_reason: None,
        credential: new_credential(1, 1, Some(secs(now, 3600))),
        initial_job: Some(NewJob {
            dedup_key: Some(format!("sync.initial:{connection_id}")),
            ..job("sync.initial", now)
        }),
        audit: audit(user.tenant_id, "connection.connected"),
        now,
    }
}

/// A status change by the system.
pub fn status_change(status: ConnectionStatus, reason: Option<&str>, now: DateTime<Utc>) -> StatusChange {
    StatusChange { status, reason: reason.map(str::to_owned), actor: "system".into(), now }
}

/// The event types of a tenant's outbox, in order.
pub async fn event_types(store: &dyn Store, scope: TenantScope) -> Vec<String> {
    store.list_events(scope, 0, 500).await.unwrap().into_iter().map(|e| e.event_type.as_str().to_string()).collect()
}
