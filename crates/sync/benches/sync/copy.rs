//! Postgres's floor for the same work: the benchmark's fresh database, and a `COPY ... FROM STDIN`
//! of the synced rows into a fresh table shaped like `google_event` (its indexes included), which
//! is as fast as Postgres takes rows in.

use crate::report::CopyMeasured;
use anyhow::{ensure, Context};
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::postgres::PgPoolCopyExt as _;
use sqlx::{Connection as _, PgConnection};
use std::time::Instant;
use uuid::Uuid;

/// One `google_event` row.
pub struct CopyRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    pub provider_id: String,
    pub parent_id: Uuid,
    pub hash: Vec<u8>,
    pub sealed: Vec<u8>,
    pub key_id: u32,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub status: Option<String>,
    pub provider_updated_at: Option<DateTime<Utc>>,
    pub change_seq: i64,
}

/// The database the benchmark creates and drops on the configured server.
pub const DATABASE: &str = "patchbay_bench_sync";
const TABLE: &str = "bench_copy_google_event";
const COLUMNS: &str = "id, tenant_id, connection_id, provider_id, parent_id, hash, sealed, key_id, starts_at, ends_at, \
                       series_id, status, provider_updated_at, generation, change_seq, deleted_at, created_at, updated_at";

/// The record table's shape from the sync schema (migration 5), for a database whose migrations
/// do not have it yet.
const FALLBACK_DDL: &str = "CREATE TABLE bench_copy_google_event (
    id uuid PRIMARY KEY, tenant_id uuid NOT NULL, connection_id uuid NOT NULL, provider_id text NOT NULL,
    parent_id uuid, hash bytea NOT NULL, sealed bytea NOT NULL, key_id bigint NOT NULL,
    starts_at timestamptz, ends_at timestamptz, series_id text, status text, provider_updated_at timestamptz,
    generation bigint NOT NULL, change_seq bigint NOT NULL, deleted_at timestamptz,
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    UNIQUE (connection_id, provider_id));
CREATE INDEX ON bench_copy_google_event (connection_id, change_seq);
CREATE INDEX ON bench_copy_google_event (connection_id, parent_id, id);
CREATE INDEX ON bench_copy_google_event (connection_id, parent_id, starts_at);
CREATE INDEX ON bench_copy_google_event (connection_id, series_id);
CREATE INDEX ON bench_copy_google_event (key_id)";

/// A database created for this run (dropped first if an earlier run left it) and dropped after.
pub struct FreshDatabase {
    admin_url: String,
    name: String,
    /// The new database's URL.
    pub url: String,
}

impl FreshDatabase {
    /// Creates the database [`DATABASE`] on the server `url` names (never the database in `url`,
    /// which may hold someone's data), through the server's `postgres` database.
    pub async fn create(url: &str) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(url).context("PATCHBAY_BENCH_DATABASE_URL is not a URL")?;
        let name = DATABASE.to_owned();
        let mut admin = parsed.clone();
        admin.set_path("/postgres");
        let mut own = parsed.clone();
        own.set_path(&format!("/{name}"));
        let database = FreshDatabase { admin_url: admin.to_string(), name, url: own.to_string() };
        let mut conn = database.admin().await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", database.name)).execute(&mut conn).await?;
        sqlx::query(&format!("CREATE DATABASE {}", database.name)).execute(&mut conn).await?;
        conn.close().await.ok();
        Ok(database)
    }

    async fn admin(&self) -> anyhow::Result<PgConnection> {
        let redacted = self.admin_url.split('@').next_back().unwrap_or_default();
        PgConnection::connect(&self.admin_url)
            .await
            .with_context(|| format!("cannot reach Postgres at {redacted} (set PATCHBAY_BENCH_DATABASE_URL)"))
    }

    /// Drops the database (closing anything still connected to it).
    pub async fn drop_database(self) -> anyhow::Result<()> {
        let mut conn = self.admin().await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut conn).await?;
        Ok(())
    }
}

/// Loads `rows` with one `COPY` into a fresh table shaped like `google_event` (`LIKE ...
/// INCLUDING ALL` when the migrations have it); only the `COPY` itself is timed.
pub async fn measure(url: &str, rows: &[CopyRow]) -> anyhow::Result<CopyMeasured> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('google_event') IS NOT NULL").fetch_one(&pool).await?;
    let shape = if exists {
        sqlx::query(&format!("CREATE TABLE {TABLE} (LIKE google_event INCLUDING ALL)")).execute(&pool).await?;
        "`LIKE google_event INCLUDING ALL`"
    } else {
        sqlx::raw_sql(FALLBACK_DDL).execute(&pool).await?;
        "the sync schema's google_event (migration 5 is not in this build)"
    };
    let text = copy_text(rows);
    let started = Instant::now();
    let mut copy = pool.copy_in_raw(&format!("COPY {TABLE} ({COLUMNS}) FROM STDIN")).await?;
    for chunk in text.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    let copied = copy.finish().await.context("COPY")?;
    let wall = started.elapsed();
    ensure!(copied == rows.len() as u64, "COPY loaded {copied} rows, not {}", rows.len());
    sqlx::query(&format!("DROP TABLE {TABLE}")).execute(&pool).await?;
    pool.close().await;
    Ok(CopyMeasured { wall, rows: rows.len(), bytes: text.len(), shape })
}

/// The rows in `COPY`'s text format: tab-separated, `\N` for NULL, `\\x…` for bytea.
fn copy_text(rows: &[CopyRow]) -> Vec<u8> {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    let mut out = String::with_capacity(rows.len() * (rows.first().map_or(0, |r| r.sealed.len()) * 2 + 400));
    let time =
        |t: &Option<DateTime<Utc>>| t.map_or("\\N".to_owned(), |t| t.to_rfc3339_opts(SecondsFormat::Micros, true));
    for r in rows {
        let status = r.status.as_deref().map_or("\\N".to_owned(), escape);
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\t\\\\x{}\t\\\\x{}\t{}\t{}\t{}\t\\N\t{status}\t{}\t1\t{}\t\\N\t{now}\t{now}\n",
            r.id,
            r.tenant_id,
            r.connection_id,
            escape(&r.provider_id),
            r.parent_id,
            hex::encode(&r.hash),
            hex::encode(&r.sealed),
            r.key_id,
            time(&r.starts_at),
            time(&r.ends_at),
            time(&r.provider_updated_at),
            r.change_seq,
        );
        out.push_str(&line);
    }
    out.into_bytes()
}

/// Escapes a text value for `COPY`'s text format.
fn escape(value: &str) -> String {
    if !value.contains(['\\', '\t', '\n', '\r']) {
        return value.to_owned();
    }
    value.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n").replace('\r', "\\r")
}
