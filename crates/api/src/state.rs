//! What every handler can reach.

use crate::auth::Auth;
use crate::config::Settings;
use crate::health::Readiness;
use patchbay_connect::Connect;
use patchbay_oauth::OAuthClient;
use patchbay_store::Store;
use patchbay_sync::SyncDeps;
use patchbay_token_vault::Tokens;
use std::sync::Arc;

/// Shared application state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub auth: Arc<Auth>,
    pub settings: Arc<Settings>,
    pub readiness: Arc<Readiness>,
    pub tokens: Arc<Tokens>,
    pub oauth: Arc<OAuthClient>,
    pub connect: Arc<Connect>,
    /// What the sync handlers and routes are built from.
    pub sync: SyncDeps,
    /// Encoded record pages for repeated reads (validated on every request).
    pub read_cache: Arc<crate::http::records::cache::ReadCache>,
    /// Third-party webhook sources and the inbox (with its group-commit batcher).
    pub inbox: patchbay_webhooks::Inbox,
    /// Event endpoints and their signed deliveries.
    pub events_out: patchbay_webhooks::EventsOut,
    /// Monday board and lifecycle webhooks (sharing the inbox's batcher).
    pub monday_hooks: patchbay_webhooks::MondayHooks,
    /// The clock the schedulers read (the system clock outside tests).
    pub clock: Arc<dyn patchbay_store::Clock>,
}
