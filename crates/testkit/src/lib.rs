#![forbid(unsafe_code)]
//! Test helpers for Patchbay: throwaway databases and the storage conformance suite that every
//! store backend must pass.

pub mod conformance;
pub mod db;
