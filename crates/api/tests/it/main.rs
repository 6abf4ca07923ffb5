//! Patchbay API tests: the real server on loopback, real SQLite and real Postgres. The suites
//! that run the `patchbay` binary or a real browser live in the top-level `tests/` package.

mod auth;
mod canary;
mod config;
mod connect;
mod connection_view;
mod event_endpoints;
mod google_push;
mod health;
mod helpers;
mod ingest_durability;
mod ingest_during_sync;
mod migrate;
mod monday_apply;
mod monday_webhooks;
mod openapi;
mod proxy;
mod read_cache;
mod records;
mod rotation;
mod routes;
mod simulated_day;
mod sync;
mod tenancy;
mod webhooks;
mod writeback;
