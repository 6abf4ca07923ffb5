//! Google push channels on SQLite.

use crate::codec::*;
use crate::{db_err, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::sqlite::SqliteRow;

const COLUMNS: &str = "id, tenant_id, connection_id, calendar_id, resource_id, token_sha256, expires_at, \
     last_message_number, last_notification_at, created_at, stopped_at";

fn channel_row(row: &SqliteRow) -> StoreResult<WatchChannel> {
    Ok(WatchChannel {
        id: text(row, "id")?,
        tenant_id: uuid(row, "tenant_id")?.into(),
        connection_id: uuid(row, "connection_id")?.into(),
        calendar_id: text(row, "calendar_id")?,
        resource_id: opt_text(row, "resource_id")?,
        token_sha256: hash32(row, "token_sha256")?,
        expires_at: time(row, "expires_at")?,
        last_message_number: opt_int(row, "last_message_number")?,
        last_notification_at: opt_time(row, "last_notification_at")?,
        created_at: time(row, "created_at")?,
        stopped_at: opt_time(row, "stopped_at")?,
    })
}

impl SqliteStore {
    async fn channel_on<'e, E>(executor: E, id: &str) -> StoreResult<WatchChannel>
    where
        E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
    {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM watch_channel WHERE id = ?"))
            .bind(id)
            .fetch_optional(executor)
            .await
            .map_err(db_err)?;
        row.as_ref().map(channel_row).transpose()?.ok_or(StoreError::NotFound)
    }
}

#[async_trait]
impl WatchChannelStore for SqliteStore {
    async fn insert_watch_channel(&self, channel: NewWatchChannel) -> StoreResult<WatchChannel> {
        sqlx::query(
            "INSERT INTO watch_channel (id, tenant_id, connection_id, calendar_id, token_sha256, expires_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&channel.id)
        .bind(id_text(channel.tenant_id.0))
        .bind(id_text(channel.connection_id.0))
        .bind(&channel.calendar_id)
        .bind(&channel.token_sha256[..])
        .bind(micros(channel.expires_at))
        .bind(micros(channel.created_at))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Self::channel_on(&self.writer, &channel.id).await
    }

    async fn find_watch_channel(&self, id: &str) -> StoreResult<WatchChannel> {
        Self::channel_on(&self.reader, id).await
    }

    async fn confirm_watch_channel(
        &self,
        id: &str,
        resource_id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> StoreResult<WatchChannel> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let channel = Self::channel_on(&mut *tx, id).await?;
        if channel.resource_id.as_deref().is_some_and(|known| known != resource_id) {
            return Err(StoreError::Conflict("the channel has another resource id".into()));
        }
        sqlx::query("UPDATE watch_channel SET resource_id = ?, expires_at = COALESCE(?, expires_at) WHERE id = ?")
            .bind(resource_id)
            .bind(expires_at.map(micros))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let channel = Self::channel_on(&mut *tx, id).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(channel)
    }

    async fn note_watch_message(&self, id: &str, number: i64, at: DateTime<Utc>) -> StoreResult<WatchMessage> {
        let done = sqlx::query(
            "UPDATE watch_channel SET last_message_number = ?, last_notification_at = ?
             WHERE id = ? AND (last_message_number IS NULL OR last_message_number < ?)",
        )
        .bind(number)
        .bind(micros(at))
        .bind(id)
        .bind(number)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 1 {
            return Ok(WatchMessage::Advanced);
        }
        Self::channel_on(&self.writer, id).await.map(|_| WatchMessage::Stale)
    }

    async fn stop_watch_channel(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let done = sqlx::query("UPDATE watch_channel SET stopped_at = COALESCE(stopped_at, ?) WHERE id = ?")
            .bind(micros(at))
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn open_watch_channels(&self, connection: ConnectionId) -> StoreResult<Vec<WatchChannel>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM watch_channel WHERE connection_id = ? AND stopped_at IS NULL
             ORDER BY created_at, id"
        ))
        .bind(id_text(connection.0))
        .fetch_all(&self.writer)
        .await
        .map_err(db_err)?;
        rows.iter().map(channel_row).collect()
    }

    async fn delete_expired_watch_channels(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM watch_channel WHERE expires_at <= ?")
            .bind(micros(now))
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected())
    }
}
