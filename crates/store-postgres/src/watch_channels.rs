//! Google push channels on Postgres.

use crate::rows::col;
use crate::{db_err, us, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::postgres::PgRow;

const COLUMNS: &str = "id, tenant_id, connection_id, calendar_id, resource_id, token_sha256, expires_at, \
     last_message_number, last_notification_at, created_at, stopped_at";

fn channel_row(row: &PgRow) -> StoreResult<WatchChannel> {
    let hash: Vec<u8> = col(row, "token_sha256")?;
    Ok(WatchChannel {
        id: col(row, "id")?,
        tenant_id: TenantId(col(row, "tenant_id")?),
        connection_id: ConnectionId(col(row, "connection_id")?),
        calendar_id: col(row, "calendar_id")?,
        resource_id: col(row, "resource_id")?,
        token_sha256: hash.try_into().map_err(|_| StoreError::Corrupt("token_sha256 is not 32 bytes".into()))?,
        expires_at: col(row, "expires_at")?,
        last_message_number: col(row, "last_message_number")?,
        last_notification_at: col(row, "last_notification_at")?,
        created_at: col(row, "created_at")?,
        stopped_at: col(row, "stopped_at")?,
    })
}

#[async_trait]
impl WatchChannelStore for PgStore {
    async fn insert_watch_channel(&self, channel: NewWatchChannel) -> StoreResult<WatchChannel> {
        let row = sqlx::query(&format!(
            "INSERT INTO watch_channel (id, tenant_id, connection_id, calendar_id, token_sha256, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        ))
        .bind(&channel.id)
        .bind(channel.tenant_id.0)
        .bind(channel.connection_id.0)
        .bind(&channel.calendar_id)
        .bind(&channel.token_sha256[..])
        .bind(us(channel.expires_at))
        .bind(us(channel.created_at))
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        channel_row(&row)
    }

    async fn find_watch_channel(&self, id: &str) -> StoreResult<WatchChannel> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM watch_channel WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(channel_row).transpose()?.ok_or(StoreError::NotFound)
    }

    async fn confirm_watch_channel(
        &self,
        id: &str,
        resource_id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> StoreResult<WatchChannel> {
        // One statement: set the resource id only when unknown or equal, so two racing
        // confirmations (the `sync` message and the watch response) agree or one is refused.
        let row = sqlx::query(&format!(
            "UPDATE watch_channel SET resource_id = $2, expires_at = COALESCE($3, expires_at)
             WHERE id = $1 AND (resource_id IS NULL OR resource_id = $2) RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(resource_id)
        .bind(expires_at.map(us))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        match row {
            Some(row) => channel_row(&row),
            None => {
                self.find_watch_channel(id).await?;
                Err(StoreError::Conflict("the channel has another resource id".into()))
            }
        }
    }

    async fn note_watch_message(&self, id: &str, number: i64, at: DateTime<Utc>) -> StoreResult<WatchMessage> {
        let done = sqlx::query(
            "UPDATE watch_channel SET last_message_number = $2, last_notification_at = $3
             WHERE id = $1 AND (last_message_number IS NULL OR last_message_number < $2)",
        )
        .bind(id)
        .bind(number)
        .bind(us(at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 1 {
            return Ok(WatchMessage::Advanced);
        }
        self.find_watch_channel(id).await.map(|_| WatchMessage::Stale)
    }

    async fn stop_watch_channel(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let done = sqlx::query("UPDATE watch_channel SET stopped_at = COALESCE(stopped_at, $2) WHERE id = $1")
            .bind(id)
            .bind(us(at))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn open_watch_channels(&self, connection: ConnectionId) -> StoreResult<Vec<WatchChannel>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM watch_channel WHERE connection_id = $1 AND stopped_at IS NULL
             ORDER BY created_at, id"
        ))
        .bind(connection.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(channel_row).collect()
    }

    async fn delete_expired_watch_channels(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM watch_channel WHERE expires_at <= $1")
            .bind(us(now))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected())
    }
}
