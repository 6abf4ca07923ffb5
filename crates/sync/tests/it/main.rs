//! Sync against real stores and the provider fakes, with no Patchbay HTTP server.

// Each scenario module uses part of the shared world.
#[allow(dead_code)]
#[macro_use]
mod support;

mod call;
mod google;
mod monday;
mod proxy;
<<<<<<< HEAD
mod rekey;
=======
mod ratelimit;
>>>>>>> ratelimit
mod runner;
mod writeback;
