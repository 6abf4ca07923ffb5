#![forbid(unsafe_code)]
//! Test helpers for Patchbay: throwaway databases, the storage conformance suite that every
//! store backend must pass, and local fakes of the providers' OAuth servers.

pub mod conformance;
pub mod db;
pub mod fakes;
