//! Instances of the fleet (and the vault key ids each loaded), and health probes.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A running Patchbay process, as the fleet sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Instance {
    pub id: InstanceId,
    /// Vault key ids this instance can decrypt with.
    pub key_ids: Vec<u32>,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

/// Instances of the fleet and the key ids each has loaded.
#[async_trait]
pub trait InstanceStore: Send + Sync {
    async fn register_instance(&self, instance: &Instance) -> StoreResult<()>;
    async fn heartbeat_instance(&self, id: InstanceId, at: DateTime<Utc>) -> StoreResult<()>;
    async fn deregister_instance(&self, id: InstanceId) -> StoreResult<()>;
    async fn list_instances(&self) -> StoreResult<Vec<Instance>>;
}

/// Health probes.
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// A round trip to the database; returns the server's version string.
    async fn ping(&self) -> StoreResult<String>;
    /// Which backend this is (`postgres` or `sqlite`).
    fn backend(&self) -> &'static str;
    /// Closes pools and releases locks (the SQLite lock file).
    async fn close(&self);
}
