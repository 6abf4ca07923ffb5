//! Monday board webhooks on Postgres: claims race on the (account, board, event) key with
//! `ON CONFLICT DO NOTHING`; leaving locks the webhook row so a handover picks one successor.

use crate::rows::col;
use crate::{db_err, us, PgStore};
use async_trait::async_trait;
use patchbay_store::*;
use sqlx::postgres::PgRow;

fn webhook_row(row: &PgRow) -> StoreResult<MondayWebhook> {
    Ok(MondayWebhook {
        id: col(row, "id")?,
        monday_webhook_id: col(row, "monday_webhook_id")?,
        account_id: col(row, "account_id")?,
        board_id: col(row, "board_id")?,
        event: col(row, "event")?,
        owner_tenant_id: TenantId(col(row, "owner_tenant_id")?),
        owner_connection_id: ConnectionId(col(row, "owner_connection_id")?),
        created_at: col(row, "created_at")?,
    })
}

#[async_trait]
impl MondayWebhookStore for PgStore {
    async fn claim_monday_webhook(&self, new: NewMondayWebhook) -> StoreResult<MondayWebhookClaim> {
        let now = us(new.now);
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let created = sqlx::query(
            "INSERT INTO monday_webhook (id, monday_webhook_id, account_id, board_id, event, owner_tenant_id,
                                         owner_connection_id, created_at)
             VALUES ($1, NULL, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (account_id, board_id, event) DO NOTHING
             RETURNING *",
        )
        .bind(new.id)
        .bind(&new.account_id)
        .bind(&new.board_id)
        .bind(&new.event)
        .bind(new.tenant_id.0)
        .bind(new.connection_id.0)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let claim = match created {
            Some(row) => MondayWebhookClaim::Created(webhook_row(&row)?),
            None => {
                let row = sqlx::query(
                    "SELECT * FROM monday_webhook WHERE account_id = $1 AND board_id = $2 AND event = $3 FOR SHARE",
                )
                .bind(&new.account_id)
                .bind(&new.board_id)
                .bind(&new.event)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
                MondayWebhookClaim::Existing(webhook_row(&row)?)
            }
        };
        let webhook_id = match &claim {
            MondayWebhookClaim::Created(w) | MondayWebhookClaim::Existing(w) => w.id,
        };
        sqlx::query(
            "INSERT INTO monday_webhook_user (webhook_id, connection_id, tenant_id, joined_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(webhook_id)
        .bind(new.connection_id.0)
        .bind(new.tenant_id.0)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(claim)
    }

    async fn set_monday_webhook_remote_id(&self, id: uuid::Uuid, monday_webhook_id: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE monday_webhook SET monday_webhook_id = $2 WHERE id = $1")
            .bind(id)
            .bind(monday_webhook_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn find_monday_webhook(&self, id: uuid::Uuid) -> StoreResult<MondayWebhook> {
        let row = sqlx::query("SELECT * FROM monday_webhook WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        webhook_row(&row)
    }

    async fn monday_webhooks_of_connection(&self, connection: ConnectionId) -> StoreResult<Vec<MondayWebhook>> {
        let rows = sqlx::query(
            "SELECT w.* FROM monday_webhook w JOIN monday_webhook_user u ON u.webhook_id = w.id
             WHERE u.connection_id = $1 ORDER BY w.id",
        )
        .bind(connection.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(webhook_row).collect()
    }

    async fn monday_webhook_users(&self, id: uuid::Uuid) -> StoreResult<Vec<(TenantId, ConnectionId)>> {
        let rows = sqlx::query(
            "SELECT tenant_id, connection_id FROM monday_webhook_user WHERE webhook_id = $1
             ORDER BY joined_at, connection_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| Ok((TenantId(col(r, "tenant_id")?), ConnectionId(col(r, "connection_id")?)))).collect()
    }

    async fn leave_monday_webhook(&self, id: uuid::Uuid, connection: ConnectionId) -> StoreResult<MondayWebhookLeave> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let Some(row) = sqlx::query("SELECT * FROM monday_webhook WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
        else {
            return Ok(MondayWebhookLeave::NotAUser);
        };
        let webhook = webhook_row(&row)?;
        let left = sqlx::query("DELETE FROM monday_webhook_user WHERE webhook_id = $1 AND connection_id = $2")
            .bind(id)
            .bind(connection.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if webhook.owner_connection_id != connection {
            tx.commit().await.map_err(db_err)?;
            return Ok(if left == 0 { MondayWebhookLeave::NotAUser } else { MondayWebhookLeave::Left });
        }
        let next = sqlx::query(
            "SELECT tenant_id, connection_id FROM monday_webhook_user WHERE webhook_id = $1
             ORDER BY joined_at, connection_id LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let outcome = match next {
            Some(next) => {
                let (tenant_id, connection_id) =
                    (TenantId(col(&next, "tenant_id")?), ConnectionId(col(&next, "connection_id")?));
                sqlx::query("UPDATE monday_webhook SET owner_tenant_id = $2, owner_connection_id = $3 WHERE id = $1")
                    .bind(id)
                    .bind(tenant_id.0)
                    .bind(connection_id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                MondayWebhookLeave::HandedOver { tenant_id, connection_id }
            }
            None => MondayWebhookLeave::Last(webhook),
        };
        tx.commit().await.map_err(db_err)?;
        Ok(outcome)
    }

    async fn monday_account_connections(&self, account_id: &str) -> StoreResult<Vec<(TenantId, ConnectionId)>> {
        let rows = sqlx::query(
            "SELECT tenant_id, id FROM connection
             WHERE provider = 'monday' AND provider_account_id = $1
               AND deleted_at IS NULL AND status <> 'disconnecting'
             ORDER BY id",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| Ok((TenantId(col(r, "tenant_id")?), ConnectionId(col(r, "id")?)))).collect()
    }

    async fn delete_unused_monday_webhook(&self, id: uuid::Uuid) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM monday_webhook w WHERE w.id = $1
             AND NOT EXISTS (SELECT 1 FROM monday_webhook_user u WHERE u.webhook_id = w.id)",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }
}
