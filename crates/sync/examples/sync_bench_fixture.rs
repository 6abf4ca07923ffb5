//! The fixture behind the server-side Sync benchmarks (bench/measure_sync.py): it runs the fake
//! Google with one calendar of N events for a real `patchbay serve` to sync from, and seeds that
//! server's database with a Google connection, because the connect flow needs a browser.
//!
//! ```text
//! cargo run --release -p patchbay-sync --example sync_bench_fixture -- --events 100000
//! ```
//!
//! It prints one JSON line with the fake's URLs and the OAuth client (for the server's
//! `PATCHBAY_GOOGLE_*`), then reads commands from stdin, one per line, answering each with one
//! JSON line:
//!
//! - `seed {"database_url": "...", "tenant_id": "...", "user_id": "..."}`: a consent at the fake
//!   and a real code exchange for that user (the ids `GET /v1/me` answers), the token set sealed
//!   with `PATCHBAY_VAULT_KEYS` (the server's) and saved as an active Google connection without
//!   an initial job; answers `{"connection_id", "calendar_id"}` (the calendar's Patchbay id).
//! - `stats`: `{"api_calls": n}`, the Calendar requests the fake has answered.
//!
//! Errors answer `{"error": "..."}`. It exits when stdin closes. All traffic stays on 127.0.0.1.

#[allow(dead_code)]
#[path = "../benches/common/mod.rs"]
mod common;

use anyhow::{anyhow, Context};
use patchbay_store::{ConnectionId, RecordId, RecordKind, Store, TenantId, TenantScope, UserId};
use patchbay_store_postgres::{PgOptions, PgStore};
use patchbay_store_sqlite::{SqliteOptions, SqliteStore};
use patchbay_testkit::fakes::FakeGoogle;
use patchbay_token_vault::{KeyRing, Vault};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut events = 100_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => events = args.next().and_then(|n| n.parse().ok()).context("--events needs a number")?,
            "-h" | "--help" => {
                println!("usage: sync_bench_fixture [--events N]   (see the source's header for the protocol)");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let google = common::start_google(events).await;
    let hello = json!({
        "events": events,
        "api_url": google.base_url().as_str(),
        "auth_url": google.auth_url().as_str(),
        "token_url": google.token_url().as_str(),
        "revoke_url": google.revoke_url().as_str(),
        "userinfo_url": google.userinfo_url().as_str(),
        "client_id": common::CLIENT_ID,
        "client_secret": common::CLIENT_SECRET,
        "calendar_provider_id": common::EMAIL,
    });
    println!("{hello}");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let (command, rest) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        let answer = match command {
            "" => continue,
            "seed" => seed(&google, rest).await.unwrap_or_else(|e| json!({ "error": format!("{e:#}") })),
            "stats" => json!({ "api_calls": google.api_calls() }),
            other => json!({ "error": format!("unknown command {other:?}") }),
        };
        println!("{answer}");
    }
    Ok(())
}

async fn seed(google: &FakeGoogle, request: &str) -> anyhow::Result<Value> {
    let request: Value = serde_json::from_str(request).context("seed takes a JSON object")?;
    let text = |name: &str| request[name].as_str().map(str::to_owned).ok_or_else(|| anyhow!("seed needs {name}"));
    let url = text("database_url")?;
    let tenant = TenantId(text("tenant_id")?.parse()?);
    let user_id = UserId(text("user_id")?.parse()?);
    let keys = std::env::var("PATCHBAY_VAULT_KEYS").context("PATCHBAY_VAULT_KEYS (the server's) is not set")?;
    let vault = Vault::new(KeyRing::parse(&SecretString::from(keys)).map_err(|e| anyhow!("PATCHBAY_VAULT_KEYS: {e}"))?);

    // Beside a running server: no exclusive lock on SQLite (as `patchbay api-keys` does).
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        let options = SqliteOptions { exclusive: false, ..SqliteOptions::default() };
        Arc::new(SqliteStore::open(&url, options).await.context("opening the server's SQLite")?)
    } else {
        Arc::new(PgStore::connect(&url, PgOptions::default()).await.context("connecting to Postgres")?)
    };
    let user = store.get_user(TenantScope::new(tenant), user_id).await.context("the user GET /v1/me named")?;
    let registry = common::registry(google);
    let (oauth, tokens) = common::tokens(store.clone(), vault, &registry);
    let connection = common::connect(&*store, &oauth, &tokens, &registry, google, &user).await;
    store.close().await;
    let connection = connection?;
    let calendar = calendar_id(connection.id);
    Ok(json!({ "connection_id": connection.id.to_string(), "calendar_id": calendar.to_string() }))
}

/// The Patchbay id of the user's primary calendar, as the read API names it in paths.
fn calendar_id(connection: ConnectionId) -> RecordId {
    RecordId::derive(connection, RecordKind::GoogleCalendar, common::EMAIL)
}
