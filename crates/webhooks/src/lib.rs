#![forbid(unsafe_code)]
//! Patchbay's webhooks in: the signature schemes of third-party sources (Standard Webhooks,
//! GitHub, generic HMAC-SHA256) as pure functions, sources with sealed rotating secrets, and
//! the inbox every verified delivery is committed to (group commit) before its 2xx.
//!
//! Not built yet: the processor job, Monday board webhooks, Google push channels, events out
//! and reprocessing (see `docs/webhooks.md`). No axum here: `patchbay-api` owns the routes.

pub mod apply;
pub mod batcher;
pub mod inbox;
pub mod scheme;
pub mod secret;
pub mod sources;

pub use apply::{Applier, ApplyError};
pub use batcher::{BatchSettings, Batcher, CommitFailed};
pub use inbox::{body_aad, Inbox, IngestError, Ingested};
pub use scheme::{verify, GenericSettings, Rejection, Scheme, SignatureEncoding, Verified};
pub use secret::{SecretError, SigningKey};
pub use sources::{scheme_of, OpenedSource, SourceError, Sources, WithSecret};
