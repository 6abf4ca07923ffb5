#![forbid(unsafe_code)]
//! Patchbay's webhooks in: the signature schemes of third-party sources (Standard Webhooks,
//! GitHub, generic HMAC-SHA256) as pure functions, sources with sealed rotating secrets, and
//! the inbox every verified delivery is committed to (group commit) before its 2xx.
//!
//! The processor applies stored events through one [`Applier`] per source kind; third-party
//! sources become `webhook.received` outbox events ([`ReceivedApplier`]). Google Calendar push
//! notifications: [`google`]. Events out ([`out`]): tenant endpoints, the outbox dispatcher and
//! the signed, retried sender. No axum here: `patchbay-api` owns the routes; `docs/webhooks.md`
//! says what is built and what is not.

pub mod apply;
pub mod batcher;
pub mod google;
pub mod inbox;
pub mod monday;
pub mod monday_apply;
pub mod monday_jwt;
pub mod monday_register;
pub mod monday_release;
pub mod out;
pub mod processor;
pub mod received;
pub mod retention;
pub mod rewrap;
pub mod scheme;
pub mod secret;
pub mod sources;

pub use apply::{Applier, ApplyError};
pub use batcher::{BatchSettings, Batcher, CommitFailed};
pub use google::{GoogleApplier, GoogleError, GoogleNotice, GoogleOutcome, GooglePushIn, GoogleRejection};
pub use inbox::{body_aad, Inbox, IngestError, Ingested};
pub use monday::{
    board_url, lifecycle_url, MondayHooks, MondayIngestError, MondayIngested, MondayLifecycle, MondaySecrets,
};
pub use out::{EndpointError, EndpointWithSecret, EventsOut, OutSettings, RoundReport};
pub use processor::{Processed, Processor, DEFAULT_MAX_ATTEMPTS};
pub use received::{ReceivedApplier, DEFAULT_MAX_INLINE_BODY};
pub use retention::{Pruned, RetentionJob, RetentionSettings};
pub use rewrap::{rewrap_webhooks, RewrapFailure, Rewrapped};
pub use scheme::{verify, GenericSettings, Rejection, Scheme, SignatureEncoding, Verified};
pub use secret::{SecretError, SigningKey};
pub use sources::{scheme_of, OpenedSource, SourceError, Sources, WithSecret};
