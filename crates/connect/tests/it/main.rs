//! Domain tests of the connect flow (no HTTP server of Patchbay's own).

mod connect_flow;
mod disconnect;
mod support;
