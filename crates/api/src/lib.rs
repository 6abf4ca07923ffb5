#![forbid(unsafe_code)]
//! Patchbay's HTTP API, configuration, command line and server. The only crate that speaks
//! HTTP to clients and the only place an error becomes a status code.

pub mod auth;
pub mod cli;
pub mod config;
pub mod connect;
pub mod disconnect;
pub mod health;
pub mod http;
pub mod metrics;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tokens;

pub use startup::Application;
