//! Patchbay API tests: the real server on loopback, real SQLite and real Postgres.

mod auth;
mod browser;
mod canary;
mod cli;
mod config;
mod connect;
mod health;
mod helpers;
mod migrate;
mod openapi;
mod rotation;
mod routes;
mod tenancy;
