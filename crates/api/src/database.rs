//! Opening the store: the one place where the database URL's scheme picks a backend.

use crate::config::{Backend, DatabaseSettings};
use patchbay_store::{Store, StoreError};
use patchbay_store_postgres::{PgOptions, PgStore};
use patchbay_store_sqlite::{SqliteOptions, SqliteStore};
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;

/// Whether this process owns the store (the server) or borrows it briefly (a CLI command).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The server, `migrate`: on SQLite, takes the exclusive lock file.
    Exclusive,
    /// Short commands that may run beside a server (`api-keys`).
    Shared,
}

/// Opens (and, when asked, migrates) the configured store.
pub async fn open(database: &DatabaseSettings, migrate: bool, access: Access) -> Result<Arc<dyn Store>, StoreError> {
    let url = database.url.expose_secret();
    let store: Arc<dyn Store> = match database.backend {
        Backend::Postgres => {
            let options =
                PgOptions { max_connections: database.max_connections, acquire_timeout: Duration::from_secs(5) };
            let store = PgStore::connect(url, options).await?;
            if migrate {
                store.migrate().await?;
            }
            Arc::new(store)
        }
        Backend::Sqlite => {
            let options = SqliteOptions {
                read_connections: database.max_connections,
                exclusive: access == Access::Exclusive,
                ..SqliteOptions::default()
            };
            let store = SqliteStore::open(url, options).await?;
            if migrate {
                store.migrate().await?;
            }
            Arc::new(store)
        }
    };
    Ok(store)
}
