//! Tables of sealed signing secrets that rotate with an overlap, each secret owned by one row of
//! another table: webhook sources (`webhook_source_secret`) and event endpoints
//! (`event_endpoint_secret`) keep theirs the same way, so both use this one implementation.

use crate::rows::{self, col};
use crate::{db_err, us};
use chrono::{DateTime, Utc};
use patchbay_store::{SealedWebhookSecret, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool};

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

fn secret_row(row: &PgRow) -> StoreResult<SealedWebhookSecret> {
    Ok(SealedWebhookSecret {
        id: col(row, "id")?,
        key_id: rows::key_id(row, "key_id")?,
        ciphertext: col(row, "ciphertext")?,
        created_at: col(row, "created_at")?,
        valid_until: col(row, "valid_until")?,
    })
}

impl SecretTable {
    /// Adds `secret` to `owner`.
    pub(crate) async fn insert(
        self,
        conn: &mut PgConnection,
        owner: uuid::Uuid,
        secret: &SealedWebhookSecret,
    ) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO {} (id, {}, key_id, ciphertext, created_at, valid_until) VALUES ($1, $2, $3, $4, $5, $6)",
            self.table, self.owner
        );
        sqlx::query(&sql)
            .bind(secret.id)
            .bind(owner)
            .bind(i64::from(secret.key_id))
            .bind(&secret.ciphertext)
            .bind(us(secret.created_at))
            .bind(secret.valid_until.map(us))
            .execute(conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// The owner's secrets, newest first.
    pub(crate) async fn load(self, pool: &PgPool, owner: uuid::Uuid) -> StoreResult<Vec<SealedWebhookSecret>> {
        let sql = format!("SELECT * FROM {} WHERE {} = $1 ORDER BY id DESC", self.table, self.owner);
        let rows = sqlx::query(&sql).bind(owner).fetch_all(pool).await.map_err(db_err)?;
        rows.iter().map(secret_row).collect()
    }

    /// A rotation inside the caller's transaction (which holds the owner row locked): secrets
    /// already expired at `now` are deleted, every other one ends at `old_valid_until` at the
    /// latest, and `secret` is added.
    pub(crate) async fn rotate(
        self,
        conn: &mut PgConnection,
        owner: uuid::Uuid,
        secret: &SealedWebhookSecret,
        old_valid_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let delete = format!("DELETE FROM {} WHERE {} = $1 AND valid_until <= $2", self.table, self.owner);
        sqlx::query(&delete).bind(owner).bind(us(now)).execute(&mut *conn).await.map_err(db_err)?;
        let cap = format!(
            "UPDATE {} SET valid_until = $2 WHERE {} = $1 AND (valid_until IS NULL OR valid_until > $2)",
            self.table, self.owner
        );
        sqlx::query(&cap).bind(owner).bind(us(old_valid_until)).execute(&mut *conn).await.map_err(db_err)?;
        self.insert(conn, owner, secret).await
    }
}
