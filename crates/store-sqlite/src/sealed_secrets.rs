//! Tables of sealed signing secrets that rotate with an overlap, each secret owned by one row of
//! another table: webhook sources (`webhook_source_secret`) and event endpoints
//! (`event_endpoint_secret`) keep theirs the same way, so both use this one implementation.

use crate::codec::*;
use crate::db_err;
use chrono::{DateTime, Utc};
use patchbay_store::{SealedWebhookSecret, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{SqliteConnection, SqlitePool};

/// One secrets table and the column naming its owner row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SecretTable {
    table: &'static str,
    owner: &'static str,
}

/// Secrets of third-party webhook sources.
pub(crate) const SOURCE_SECRETS: SecretTable = SecretTable { table: "webhook_source_secret", owner: "source_id" };
/// Secrets of event endpoints.
pub(crate) const ENDPOINT_SECRETS: SecretTable = SecretTable { table: "event_endpoint_secret", owner: "endpoint_id" };

fn secret_row(row: &SqliteRow) -> StoreResult<SealedWebhookSecret> {
    Ok(SealedWebhookSecret {
        id: uuid(row, "id")?,
        key_id: key_id(row, "key_id")?,
        ciphertext: blob(row, "ciphertext")?,
        created_at: time(row, "created_at")?,
        valid_until: opt_time(row, "valid_until")?,
    })
}

impl SecretTable {
    /// Adds `secret` to `owner`.
    pub(crate) async fn insert(
        self,
        conn: &mut SqliteConnection,
        owner: uuid::Uuid,
        secret: &SealedWebhookSecret,
    ) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO {} (id, {}, key_id, ciphertext, created_at, valid_until) VALUES (?, ?, ?, ?, ?, ?)",
            self.table, self.owner
        );
        sqlx::query(&sql)
            .bind(id_text(secret.id))
            .bind(id_text(owner))
            .bind(i64::from(secret.key_id))
            .bind(&secret.ciphertext)
            .bind(micros(secret.created_at))
            .bind(opt_micros(secret.valid_until))
            .execute(conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// The owner's secrets, newest first.
    pub(crate) async fn load(self, pool: &SqlitePool, owner: uuid::Uuid) -> StoreResult<Vec<SealedWebhookSecret>> {
        let sql = format!("SELECT * FROM {} WHERE {} = ? ORDER BY id DESC", self.table, self.owner);
        let rows = sqlx::query(&sql).bind(id_text(owner)).fetch_all(pool).await.map_err(db_err)?;
        rows.iter().map(secret_row).collect()
    }

    /// A rotation inside the caller's transaction on the writer: secrets already expired at
    /// `now` are deleted, every other one ends at `old_valid_until` at the latest, and `secret`
    /// is added.
    pub(crate) async fn rotate(
        self,
        conn: &mut SqliteConnection,
        owner: uuid::Uuid,
        secret: &SealedWebhookSecret,
        old_valid_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let delete = format!("DELETE FROM {} WHERE {} = ? AND valid_until <= ?", self.table, self.owner);
        sqlx::query(&delete).bind(id_text(owner)).bind(micros(now)).execute(&mut *conn).await.map_err(db_err)?;
        let cap = format!(
            "UPDATE {} SET valid_until = ?2 WHERE {} = ?1 AND (valid_until IS NULL OR valid_until > ?2)",
            self.table, self.owner
        );
        sqlx::query(&cap)
            .bind(id_text(owner))
            .bind(micros(old_valid_until))
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        self.insert(conn, owner, secret).await
    }
}
