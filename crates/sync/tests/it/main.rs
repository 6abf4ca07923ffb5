//! Sync against real stores and the provider fakes, with no Patchbay HTTP server.

// Each scenario module uses part of the shared world.
#[allow(dead_code)]
#[macro_use]
mod support;

mod call;
mod google;
mod monday;
mod proxy;
mod ratelimit;
mod rekey;
mod runner;
mod writeback;
