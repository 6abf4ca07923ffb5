#![forbid(unsafe_code)]
//! Patchbay's storage contract: the traits every backend implements, the models they return,
//! one small error type, and the job-queue runner that sits on top of [`JobStore`].
//!
//! Backends (`patchbay-store-postgres`, `patchbay-store-sqlite`) implement these traits and own
//! their migrations; the API crate picks one from the database URL scheme in exactly one place.
//! Every read of tenant data takes a [`TenantScope`]: an id that belongs to another tenant
//! answers [`StoreError::NotFound`], never a different error, so ids leak nothing.

mod audit;
mod budgets;
mod connect;
mod connections;
mod credentials;
mod error;
mod event_out;
mod identity;
mod ids;
mod instances;
pub mod jobs;
mod monday_webhooks;
mod outbox;
mod page;
mod provider;
mod records;
mod retention;
mod sync;
mod text_enum;
mod watch_channels;
mod webhook_processing;
mod webhooks;

pub use audit::*;
pub use budgets::*;
pub use connect::*;
pub use connections::*;
pub use credentials::*;
pub use error::{StoreError, StoreResult};
pub use event_out::*;
pub use identity::*;
pub use ids::*;
pub use instances::*;
pub use jobs::*;
pub use monday_webhooks::*;
pub use outbox::*;
pub use page::*;
pub use provider::*;
pub use records::*;
pub use retention::*;
pub use sync::*;
pub use watch_channels::*;
pub use webhook_processing::*;
pub use webhooks::*;

/// Everything a Patchbay store offers. Domain crates hold `Arc<dyn Store>` (or one of the
/// narrower traits it upcasts to).
pub trait Store:
    IdentityStore
    + ConnectionStore
    + ConnectStore
    + CredentialStore
    + OutboxStore
    + AuditStore
    + JobStore
    + InstanceStore
    + HealthStore
    + SyncStore
    + RecordStore
    + BudgetStore
    + IdempotencyStore
    + WebhookStore
    + WatchChannelStore
    + EventOutStore
    + WebhookProcessingStore
    + MondayWebhookStore
    + RetentionStore
{
}

impl<T> Store for T where
    T: IdentityStore
        + ConnectionStore
        + ConnectStore
        + CredentialStore
        + OutboxStore
        + AuditStore
        + JobStore
        + InstanceStore
        + HealthStore
        + SyncStore
        + RecordStore
        + BudgetStore
        + IdempotencyStore
        + WebhookStore
        + WatchChannelStore
        + EventOutStore
        + WebhookProcessingStore
        + MondayWebhookStore
        + RetentionStore
{
}
