#![forbid(unsafe_code)]
//! Patchbay's webhooks in: the signature schemes of third-party sources (Standard Webhooks,
//! GitHub, generic HMAC-SHA256) as pure functions, sources with sealed rotating secrets, and
//! the inbox every verified delivery is committed to (group commit) before its 2xx.
//!
//! The processor applies stored events through one [`Applier`] per source kind; third-party
//! sources become `webhook.received` outbox events ([`ReceivedApplier`]).
//!
//! Not built yet: Monday board webhooks, Google push channels and events out (see
//! `docs/webhooks.md`). No axum here: `patchbay-api` owns the routes.

pub mod apply;
pub mod batcher;
pub mod inbox;
pub mod processor;
pub mod received;
pub mod rewrap;
pub mod scheme;
pub mod secret;
pub mod sources;

pub use apply::{Applier, ApplyError};
pub use batcher::{BatchSettings, Batcher, CommitFailed};
pub use inbox::{body_aad, Inbox, IngestError, Ingested};
pub use processor::{Processed, Processor, DEFAULT_MAX_ATTEMPTS};
pub use received::{ReceivedApplier, DEFAULT_MAX_INLINE_BODY};
pub use rewrap::{rewrap_webhooks, RewrapFailure, Rewrapped};
pub use scheme::{verify, GenericSettings, Rejection, Scheme, SignatureEncoding, Verified};
pub use secret::{SecretError, SigningKey};
pub use sources::{scheme_of, SourceError, Sources, WithSecret};
