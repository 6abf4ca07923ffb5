//! Fleet instances and health probes.

use crate::codec::{id_text, micros};
use crate::{db_err, rows, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

#[async_trait]
impl InstanceStore for SqliteStore {
    async fn register_instance(&self, instance: &Instance) -> StoreResult<()> {
        let key_ids = instance.key_ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        // Re-registering the same id (a restart that kept its id) refreshes the row.
        sqlx::query(
            "INSERT INTO instance (id, key_ids, version, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET key_ids = excluded.key_ids, version = excluded.version,
                 started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
        )
        .bind(id_text(instance.id.0))
        .bind(key_ids)
        .bind(&instance.version)
        .bind(micros(instance.started_at))
        .bind(micros(instance.heartbeat_at))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn heartbeat_instance(&self, id: InstanceId, at: DateTime<Utc>) -> StoreResult<()> {
        let done = sqlx::query("UPDATE instance SET heartbeat_at = ? WHERE id = ?")
            .bind(micros(at))
            .bind(id_text(id.0))
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn deregister_instance(&self, id: InstanceId) -> StoreResult<()> {
        // Idempotent: deregistering twice (or after a sweep removed the row) is fine.
        sqlx::query("DELETE FROM instance WHERE id = ?")
            .bind(id_text(id.0))
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_instances(&self) -> StoreResult<Vec<Instance>> {
        let found = sqlx::query("SELECT * FROM instance ORDER BY started_at, id")
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        found.iter().map(rows::instance).collect()
    }
}

#[async_trait]
impl HealthStore for SqliteStore {
    async fn ping(&self) -> StoreResult<String> {
        let version: String =
            sqlx::query_scalar("SELECT sqlite_version()").fetch_one(&self.reader).await.map_err(db_err)?;
        Ok(format!("SQLite {version}"))
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
        // Only once both pools are closed may another process open the file.
        if let Some(lock) = &self.lock {
            lock.release();
        }
    }
}
