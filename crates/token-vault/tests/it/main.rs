//! Integration tests of the token vault through its public API only.

mod binding;
mod lifecycle;
mod redaction;
mod robustness;
mod rotation;
mod round_trip;
mod support;
