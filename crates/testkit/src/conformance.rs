//! The storage conformance suite: scenarios any `Arc<dyn Store>` must pass. The integration
//! tests run every scenario against SQLite and Postgres; a new backend gets the same list.
//!
//! Scenarios pass times explicitly (`now`), so nothing sleeps waiting for the clock.

mod identity;
mod load;
mod queue;
mod worker;

pub use identity::*;
pub use load::*;
pub use queue::*;
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
        provider: "monday".into(),
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
