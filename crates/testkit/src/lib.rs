#![forbid(unsafe_code)]
//! Test helpers for Patchbay: throwaway databases, the storage conformance suite that every
//! store backend must pass, local fakes of the providers' OAuth servers, and what a test app is
//! configured with (secrets, signed user tokens, free ports).

pub mod app;
pub mod conformance;
pub mod db;
pub mod fakes;
