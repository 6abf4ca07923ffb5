//! Fleet instances and health probes.

use crate::{db_err, rows, us, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;

#[async_trait]
impl InstanceStore for PgStore {
    async fn register_instance(&self, instance: &Instance) -> StoreResult<()> {
        let key_ids = instance.key_ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        // Re-registering the same id (a restart that kept its id) refreshes the row.
        sqlx::query(
            "INSERT INTO instance (id, key_ids, version, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET key_ids = excluded.key_ids, version = excluded.version,
                 started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
        )
        .bind(instance.id.0)
        .bind(key_ids)
        .bind(&instance.version)
        .bind(us(instance.started_at))
        .bind(us(instance.heartbeat_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn heartbeat_instance(&self, id: InstanceId, at: DateTime<Utc>) -> StoreResult<()> {
        let done = sqlx::query("UPDATE instance SET heartbeat_at = $1 WHERE id = $2")
            .bind(us(at))
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn deregister_instance(&self, id: InstanceId) -> StoreResult<()> {
        // Idempotent: deregistering twice (or after a sweep removed the row) is fine.
        sqlx::query("DELETE FROM instance WHERE id = $1").bind(id.0).execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn list_instances(&self) -> StoreResult<Vec<Instance>> {
        let found = sqlx::query("SELECT * FROM instance ORDER BY started_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        found.iter().map(rows::instance).collect()
    }
}

#[async_trait]
impl HealthStore for PgStore {
    async fn ping(&self) -> StoreResult<String> {
        sqlx::query_scalar("SELECT version()").fetch_one(&self.pool).await.map_err(db_err)
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
