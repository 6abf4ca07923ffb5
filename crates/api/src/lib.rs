#![forbid(unsafe_code)]
//! Patchbay's HTTP API, configuration, command line and server. The only crate that speaks
//! HTTP to clients and the only place an error becomes a status code.

pub mod auth;
pub mod cli;
pub mod clients;
pub mod config;
pub mod database;
pub mod health;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use startup::Application;
