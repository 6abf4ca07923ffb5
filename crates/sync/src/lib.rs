#![forbid(unsafe_code)]
//! Patchbay's sync (architecture §4.3): the job handlers that keep a connection's Google
//! calendars and monday.com boards copied into the store, and everything they call through.
//!
//! - [`seal`]: records are sealed with the vault (purpose `record`) and hashed with a keyed hash.
//! - [`budget`]: provider rate budgets (GCRA buckets in the store, shared by every instance).
//! - [`breaker`]: circuit breakers per connection and per provider.
//! - [`call`]: one provider request with a fresh token, budget, breaker and one refresh on 401.
//! - [`google`], [`monday`]: the provider clients and sync engines.
//! - [`runner`]: the job handlers (`sync.initial`, `sync.run`, `sync.repair`, `sync.purge`).
//! - [`rekey`]: `vault rotate` for synced records (re-sealed, hash recomputed).
//! - [`status`]: a connection's breakers, last run and per-part last success (connection API).
//! - [`writeback`], [`proxy`]: monday.com column writes and the authenticated provider proxy.

pub mod breaker;
pub mod budget;
pub mod call;
pub mod engine;
mod error;
pub mod google;
pub mod monday;
pub mod proxy;
pub mod recurrence;
pub mod rekey;
pub mod runner;
pub mod seal;
mod settings;
pub mod status;
pub mod writeback;

pub use error::SyncError;
pub use settings::{GooglePush, MondayPlan, SyncSettings};

use patchbay_store::{jobs::Clock, Store};
use patchbay_token_vault::Tokens;
use std::sync::Arc;

/// What every sync component is built from; cheap to clone.
#[derive(Clone)]
pub struct SyncDeps {
    pub store: Arc<dyn Store>,
    pub tokens: Arc<Tokens>,
    pub settings: Arc<SyncSettings>,
    /// Outbound client for provider APIs: redirects off, timeouts set.
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SyncDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncDeps").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl SyncDeps {
    /// The sealer for records, over the token vault's key ring.
    pub fn sealer(&self) -> seal::Sealer {
        seal::Sealer::new(self.tokens.vault().clone())
    }
}
