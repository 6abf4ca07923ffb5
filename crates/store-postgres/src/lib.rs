#![forbid(unsafe_code)]
//! Patchbay's Postgres store: the production backend and the coordination point of a fleet.
//!
//! Every queue rule is a statement (row locks, `SKIP LOCKED`, partial unique indexes), so it
//! holds across any number of instances sharing the database (architecture §6).

mod analyze;
mod audit;
mod budgets;
mod connect;
mod connections;
mod credentials;
mod error;
mod event_out;
mod idempotency;
mod identity;
mod instances;
mod jobs;
mod lifecycle;
mod monday_webhooks;
mod outbox;
mod record_writes;
mod records;
mod retention;
mod rows;
mod sealed_secrets;
mod sync;
mod watch_channels;
mod webhook_processing;
mod webhooks;

use chrono::{DateTime, SubsecRound, Utc};
use patchbay_store::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Connection as _;
use std::str::FromStr;
use std::time::Duration;

pub(crate) use error::db_err;

/// Tunables of the Postgres store.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long an operation waits for a free connection before failing `Unavailable`.
    pub acquire_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self { max_connections: 10, acquire_timeout: Duration::from_secs(5) }
    }
}

/// The Postgres implementation of every Patchbay store trait.
pub struct PgStore {
    pub(crate) pool: PgPool,
    /// Analyses record tables that a sync has just filled (analyze.rs).
    pub(crate) analyzer: analyze::Analyzer,
    /// `host:port/database`, for messages (never the password).
    target: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("target", &self.target).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Parses `url`, proves the server answers with one connection, and builds the pool.
    /// Errors name the host, port and database, never the password.
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Other("a Postgres URL starts with `postgres://` or `postgresql://`".into()));
        }
        // sqlx's parse errors describe the bad part ("invalid port number"), not the URL itself.
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid Postgres URL: {}", config_reason(&e))))?;
        let target = format!(
            "{}:{}/{}",
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or("(default database)")
        );
        // One direct connection first: the pool would retry until its timeout and then report
        // only "timed out", while this reports why (refused, auth failed, no such database).
        let probe = sqlx::PgConnection::connect_with(&connect)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to Postgres at {target}: {}", db_err(e))))?;
        probe.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        Ok(Self { pool, target, analyzer: analyze::Analyzer::default() })
    }

    /// Applies the embedded migrations (serialized across instances by sqlx's advisory lock).
    /// Migrations unknown to this binary, applied by a newer one mid-rollout, are ignored.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut migrator = sqlx::migrate!("../../migrations/postgres");
        migrator.set_ignore_missing(true);
        migrator.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => db_err(e),
            other => StoreError::Other(format!("Postgres migration failed: {other}")),
        })
    }
}

/// The reason inside a sqlx configuration error, without sqlx's generic preamble.
fn config_reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(source) => source.to_string(),
        other => other.to_string(),
    }
}

/// A time at the precision Postgres keeps (microseconds), truncated the way the SQLite store
/// truncates, so both backends hand back identical values.
pub(crate) fn us(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// Now, at stored precision.
pub(crate) fn now() -> DateTime<Utc> {
    us(Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_malformed_url_is_refused_without_echoing_the_password() {
        let cases = [
            ("postgres://user:s3cret@localhost:notaport/db", "port"),
            ("mysql://user:s3cret@localhost/db", "postgres://"),
        ];
        for (url, mentions) in cases {
            let err = PgStore::connect(url, PgOptions::default()).await.expect_err(url).to_string();
            assert!(!err.contains("s3cret"), "{url}: message leaks the password: {err}");
            assert!(err.contains(mentions), "{url}: message should mention {mentions}: {err}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_naming_host_and_port() {
        let err =
            PgStore::connect("postgres://u:s3cret@127.0.0.1:1/db", PgOptions::default()).await.expect_err("port 1");
        let message = err.to_string();
        assert!(matches!(err, StoreError::Unavailable(_)), "{message}");
        assert!(message.contains("127.0.0.1:1/db") && !message.contains("s3cret"), "{message}");
    }
}
