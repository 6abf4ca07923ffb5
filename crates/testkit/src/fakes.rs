//! Local fakes of Google's and monday.com's OAuth servers (providers.md C1/C2, OAuth parts), and
//! of Google's Calendar API v3 ([`google::calendar`]).
//!
//! Each fake is an axum server on `127.0.0.1:0` with an in-process control handle: register a
//! client and users, flip switches (denial, dropped scopes, wrong `iss`, failing token endpoint,
//! killed grants, a misbehaving revocation endpoint…), hold refresh calls at a [`RefreshGate`],
//! and read counters (token calls, refreshes, every revocation call, whether a token still works,
//! every requested path+query). State lives in the handle, so tests run in parallel. The server stops when the
//! last clone of the handle is dropped.

mod common;
pub mod google;
mod html;
pub mod monday;
mod providers;

pub use common::{
    IssMode, RefreshGate, Revocation, RevokeBehaviour, TokenKind, OVERSIZED_REVOKE_BYTES, REVOKE_REDIRECT_PATH,
};
pub use google::FakeGoogle;
pub use monday::FakeMonday;
pub use providers::{Providers, GOOGLE_SUB, MONDAY_USER};
