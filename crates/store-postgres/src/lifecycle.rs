//! The connection lifecycle writes: each one transaction carrying its outbox event, audit
//! record and job, so none is ever half done.
//!
//! Lock order: every transaction here that touches both rows locks the connection before its
//! credential (`FOR UPDATE` first), so two of them can never deadlock on one connection.

use crate::audit::insert_audit;
use crate::connections::{event_for, VISIBLE};
use crate::jobs::insert_job;
use crate::outbox::insert_event;
use crate::{db_err, now, rows, us};
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::{PgConnection, PgPool};

fn system_audit(c: &Connection, action: &str) -> NewAuditEvent {
    NewAuditEvent {
        tenant_id: Some(c.tenant_id),
        actor: "system".into(),
        action: action.into(),
        target: Some(format!("connection:{}", c.id)),
        request_id: None,
        ip: None,
    }
}

pub(crate) async fn save_grant(pool: &PgPool, g: SaveGrant) -> StoreResult<Connection> {
    let at = us(g.now);
    let mut tx = pool.begin().await.map_err(db_err)?;
    let (connection, event_type) = if g.is_new {
        // A concurrent insert of the same account by the same user waits on the unique index,
        // then fails with a unique violation: `Conflict`, which the caller retries as an update.
        let row = sqlx::query(
            "INSERT INTO connection (id, tenant_id, user_id, provider, provider_account_id, provider_user_id,
                 account_name, account_email, scopes, status, status_reason, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING *",
        )
        .bind(g.connection_id.0)
        .bind(g.tenant_id.0)
        .bind(g.user_id.0)
        .bind(g.provider.as_str())
        .bind(&g.provider_account_id)
        .bind(&g.provider_user_id)
        .bind(&g.account_name)
        .bind(&g.account_email)
        .bind(g.scopes.join(" "))
        .bind(g.status.as_str())
        .bind(&g.status_reason)
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        (rows::connection(&row)?, transition_event(None, g.status))
    } else {
        let previous = locked_visible(&mut tx, TenantScope::new(g.tenant_id), g.connection_id).await?.status;
        let row = sqlx::query(
            "UPDATE connection SET provider_account_id = $1, provider_user_id = $2, account_name = $3,
                 account_email = $4, scopes = $5, status = $6, status_reason = $7, updated_at = $8
             WHERE id = $9 RETURNING *",
        )
        .bind(&g.provider_account_id)
        .bind(&g.provider_user_id)
        .bind(&g.account_name)
        .bind(&g.account_email)
        .bind(g.scopes.join(" "))
        .bind(g.status.as_str())
        .bind(&g.status_reason)
        .bind(at)
        .bind(g.connection_id.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        (rows::connection(&row)?, transition_event(Some(previous), g.status))
    };
    sqlx::query(
        "INSERT INTO credential (connection_id, flow, key_id, ciphertext, version, access_expires_at, updated_at)
         VALUES ($1, $2, $3, $4, 1, $5, $6)
         ON CONFLICT (connection_id) DO UPDATE SET flow = excluded.flow, key_id = excluded.key_id,
             ciphertext = excluded.ciphertext, access_expires_at = excluded.access_expires_at,
             version = credential.version + 1, refresh_lease_owner = NULL, refresh_lease_until = NULL,
             updated_at = excluded.updated_at",
    )
    .bind(connection.id.0)
    .bind(g.credential.flow.as_str())
    .bind(i64::from(g.credential.key_id))
    .bind(&g.credential.ciphertext)
    .bind(g.credential.access_expires_at.map(us))
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if let Some(event_type) = event_type {
        insert_event(&mut tx, &event_for(&connection, event_type), at).await?;
    }
    insert_audit(&mut tx, &g.audit, at).await?;
    if let Some(job) = &g.initial_job {
        insert_job(&mut tx, job, at).await?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(connection)
}

pub(crate) async fn store_refreshed(
    pool: &PgPool,
    connection_id: ConnectionId,
    expected_version: i64,
    credential: NewCredential,
    at: DateTime<Utc>,
) -> StoreResult<Credential> {
    let at = us(at);
    let mut tx = pool.begin().await.map_err(db_err)?;
    let row = sqlx::query("SELECT * FROM connection WHERE id = $1 FOR UPDATE")
        .bind(connection_id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    // The connection is locked first (the lock order of every lifecycle write), then the
    // credential is written only over the version the refresh read.
    let stale = || StoreError::Conflict("credential version changed".into());
    row.ok_or_else(stale)?;
    let updated = sqlx::query(
        "UPDATE credential cr SET flow = $1, key_id = $2, ciphertext = $3, access_expires_at = $4,
             version = cr.version + 1, refresh_lease_owner = NULL, refresh_lease_until = NULL, updated_at = $5
         FROM connection c
         WHERE c.id = cr.connection_id AND cr.connection_id = $6 AND cr.version = $7
         RETURNING cr.*, c.tenant_id",
    )
    .bind(credential.flow.as_str())
    .bind(i64::from(credential.key_id))
    .bind(&credential.ciphertext)
    .bind(credential.access_expires_at.map(us))
    .bind(at)
    .bind(connection_id.0)
    .bind(expected_version)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    let stored = rows::credential(&updated.ok_or_else(stale)?)?;
    sqlx::query("UPDATE connection SET last_refresh_at = $1 WHERE id = $2")
        .bind(at)
        .bind(connection_id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(stored)
}

pub(crate) async fn set_status(
    pool: &PgPool,
    scope: TenantScope,
    id: ConnectionId,
    change: StatusChange,
) -> StoreResult<Connection> {
    let at = us(change.now);
    let mut tx = pool.begin().await.map_err(db_err)?;
    let current = locked_visible(&mut tx, scope, id).await?;
    if current.status == change.status && current.status_reason == change.reason {
        return Ok(current);
    }
    let row =
        sqlx::query("UPDATE connection SET status = $1, status_reason = $2, updated_at = $3 WHERE id = $4 RETURNING *")
            .bind(change.status.as_str())
            .bind(&change.reason)
            .bind(at)
            .bind(id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
    let connection = rows::connection(&row)?;
    if matches!(change.status, ConnectionStatus::NeedsReauth | ConnectionStatus::Revoked) {
        // A dead grant's ciphertext is destroyed, not kept (security.md D3).
        sqlx::query("DELETE FROM credential WHERE connection_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    if let Some(event_type) = transition_event(Some(current.status), connection.status) {
        insert_event(&mut tx, &event_for(&connection, event_type), at).await?;
    }
    let audit = NewAuditEvent { actor: change.actor.clone(), ..system_audit(&connection, "connection.status_changed") };
    insert_audit(&mut tx, &audit, at).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(connection)
}

pub(crate) async fn begin_disconnect(
    pool: &PgPool,
    scope: TenantScope,
    id: ConnectionId,
    job: NewJob,
    audit: NewAuditEvent,
) -> StoreResult<()> {
    let at = now();
    let mut tx = pool.begin().await.map_err(db_err)?;
    // A connection already being disconnected is accepted again: its job is enqueued again
    // (merging with a queued one), so a repeated DELETE is answered the same way.
    sqlx::query(
        "UPDATE connection SET status = 'disconnecting', updated_at = $1
         WHERE id = $2 AND tenant_id = $3 AND deleted_at IS NULL RETURNING id",
    )
    .bind(at)
    .bind(id.0)
    .bind(scope.tenant_id().0)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    insert_job(&mut tx, &job, at).await?;
    insert_audit(&mut tx, &audit, at).await?;
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn finish_disconnect(
    pool: &PgPool,
    scope: TenantScope,
    id: ConnectionId,
    audit: NewAuditEvent,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let at = us(at);
    let mut tx = pool.begin().await.map_err(db_err)?;
    // The row lock makes a concurrent second call wait, then see the tombstone.
    let row = sqlx::query("SELECT deleted_at FROM connection WHERE id = $1 AND tenant_id = $2 FOR UPDATE")
        .bind(id.0)
        .bind(scope.tenant_id().0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
    if rows::deleted_at(&row)?.is_some() {
        return Ok(()); // Already tombstoned: done once, event written once.
    }
    sqlx::query("DELETE FROM credential WHERE connection_id = $1")
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let row = sqlx::query(
        "UPDATE connection SET status = 'disconnecting', deleted_at = $1, updated_at = $1 WHERE id = $2 RETURNING *",
    )
    .bind(at)
    .bind(id.0)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    insert_event(&mut tx, &event_for(&rows::connection(&row)?, EventType::ConnectionDeleted), at).await?;
    insert_audit(&mut tx, &audit, at).await?;
    tx.commit().await.map_err(db_err)
}

/// The tenant's visible connection, locked for the rest of the transaction (`NotFound` otherwise).
async fn locked_visible(conn: &mut PgConnection, scope: TenantScope, id: ConnectionId) -> StoreResult<Connection> {
    let row =
        sqlx::query(&format!("SELECT * FROM connection WHERE id = $1 AND tenant_id = $2 AND {VISIBLE} FOR UPDATE"))
            .bind(id.0)
            .bind(scope.tenant_id().0)
            .fetch_one(conn)
            .await
            .map_err(db_err)?;
    rows::connection(&row)
}
