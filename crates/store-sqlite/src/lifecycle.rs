//! The connection lifecycle writes: each one transaction on the single writer connection,
//! carrying its outbox event, audit record and job, so none is ever half done.

use crate::audit::insert_audit;
use crate::codec::{id_text, micros, now, opt_time};
use crate::connections::{event_for, VISIBLE};
use crate::jobs::insert_job;
use crate::outbox::insert_event;
use crate::rows::CREDENTIAL;
use crate::{db_err, rows};
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::{SqliteConnection, SqlitePool};

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

pub(crate) async fn save_grant(writer: &SqlitePool, g: SaveGrant) -> StoreResult<Connection> {
    let at = g.now;
    let mut tx = writer.begin().await.map_err(db_err)?;
    let (connection, event_type) = if g.is_new {
        let row = sqlx::query(
            "INSERT INTO connection (id, tenant_id, user_id, provider, provider_account_id, provider_user_id,
                 account_name, account_email, scopes, status, status_reason, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12) RETURNING *",
        )
        .bind(id_text(g.connection_id.0))
        .bind(id_text(g.tenant_id.0))
        .bind(id_text(g.user_id.0))
        .bind(g.provider.as_str())
        .bind(&g.provider_account_id)
        .bind(&g.provider_user_id)
        .bind(&g.account_name)
        .bind(&g.account_email)
        .bind(g.scopes.join(" "))
        .bind(g.status.as_str())
        .bind(&g.status_reason)
        .bind(micros(at))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        (rows::connection(&row)?, transition_event(None, g.status))
    } else {
        let previous = visible(&mut tx, TenantScope::new(g.tenant_id), g.connection_id).await?.status;
        let row = sqlx::query(
            "UPDATE connection SET provider_account_id = ?, provider_user_id = ?, account_name = ?,
                 account_email = ?, scopes = ?, status = ?, status_reason = ?, updated_at = ?
             WHERE id = ? RETURNING *",
        )
        .bind(&g.provider_account_id)
        .bind(&g.provider_user_id)
        .bind(&g.account_name)
        .bind(&g.account_email)
        .bind(g.scopes.join(" "))
        .bind(g.status.as_str())
        .bind(&g.status_reason)
        .bind(micros(at))
        .bind(id_text(g.connection_id.0))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        (rows::connection(&row)?, transition_event(Some(previous), g.status))
    };
    sqlx::query(
        "INSERT INTO credential (connection_id, flow, key_id, ciphertext, version, access_expires_at, updated_at)
         VALUES (?, ?, ?, ?, 1, ?, ?)
         ON CONFLICT (connection_id) DO UPDATE SET flow = excluded.flow, key_id = excluded.key_id,
             ciphertext = excluded.ciphertext, access_expires_at = excluded.access_expires_at,
             version = credential.version + 1, refresh_lease_owner = NULL, refresh_lease_until = NULL,
             updated_at = excluded.updated_at",
    )
    .bind(id_text(connection.id.0))
    .bind(g.credential.flow.as_str())
    .bind(i64::from(g.credential.key_id))
    .bind(&g.credential.ciphertext)
    .bind(g.credential.access_expires_at.map(micros))
    .bind(micros(at))
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
    writer: &SqlitePool,
    connection_id: ConnectionId,
    expected_version: i64,
    credential: NewCredential,
    at: DateTime<Utc>,
) -> StoreResult<Credential> {
    let mut tx = writer.begin().await.map_err(db_err)?;
    let done = sqlx::query(
        "UPDATE credential SET flow = ?, key_id = ?, ciphertext = ?, access_expires_at = ?, version = version + 1,
             refresh_lease_owner = NULL, refresh_lease_until = NULL, updated_at = ?
         WHERE connection_id = ? AND version = ?",
    )
    .bind(credential.flow.as_str())
    .bind(i64::from(credential.key_id))
    .bind(&credential.ciphertext)
    .bind(credential.access_expires_at.map(micros))
    .bind(micros(at))
    .bind(id_text(connection_id.0))
    .bind(expected_version)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict("credential version changed".into()));
    }
    sqlx::query("UPDATE connection SET last_refresh_at = ?1 WHERE id = ?2")
        .bind(micros(at))
        .bind(id_text(connection_id.0))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let row = sqlx::query(&format!("{CREDENTIAL} WHERE cr.connection_id = ?"))
        .bind(id_text(connection_id.0))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
    let stored = rows::credential(&row)?;
    tx.commit().await.map_err(db_err)?;
    Ok(stored)
}

pub(crate) async fn set_status(
    writer: &SqlitePool,
    scope: TenantScope,
    id: ConnectionId,
    change: StatusChange,
) -> StoreResult<Connection> {
    let mut tx = writer.begin().await.map_err(db_err)?;
    let current = visible(&mut tx, scope, id).await?;
    if current.status == change.status && current.status_reason == change.reason {
        return Ok(current);
    }
    let row =
        sqlx::query("UPDATE connection SET status = ?, status_reason = ?, updated_at = ? WHERE id = ? RETURNING *")
            .bind(change.status.as_str())
            .bind(&change.reason)
            .bind(micros(change.now))
            .bind(id_text(id.0))
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
    let connection = rows::connection(&row)?;
    if matches!(change.status, ConnectionStatus::NeedsReauth | ConnectionStatus::Revoked) {
        // A dead grant's ciphertext is destroyed, not kept (security.md D3).
        sqlx::query("DELETE FROM credential WHERE connection_id = ?")
            .bind(id_text(id.0))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    if let Some(event_type) = transition_event(Some(current.status), connection.status) {
        insert_event(&mut tx, &event_for(&connection, event_type), change.now).await?;
    }
    let audit = NewAuditEvent { actor: change.actor.clone(), ..system_audit(&connection, "connection.status_changed") };
    insert_audit(&mut tx, &audit, change.now).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(connection)
}

pub(crate) async fn begin_disconnect(
    writer: &SqlitePool,
    scope: TenantScope,
    id: ConnectionId,
    job: NewJob,
    audit: NewAuditEvent,
) -> StoreResult<()> {
    let at = now();
    let mut tx = writer.begin().await.map_err(db_err)?;
    // A connection already being disconnected is accepted again: its job is enqueued again
    // (merging with a queued one), so a repeated DELETE is answered the same way.
    sqlx::query(
        "UPDATE connection SET status = 'disconnecting', updated_at = ? WHERE id = ? AND tenant_id = ?
         AND deleted_at IS NULL RETURNING id",
    )
    .bind(micros(at))
    .bind(id_text(id.0))
    .bind(id_text(scope.tenant_id().0))
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    insert_job(&mut tx, &job, at).await?;
    insert_audit(&mut tx, &audit, at).await?;
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn finish_disconnect(
    writer: &SqlitePool,
    scope: TenantScope,
    id: ConnectionId,
    audit: NewAuditEvent,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let mut tx = writer.begin().await.map_err(db_err)?;
    let row = sqlx::query("SELECT deleted_at FROM connection WHERE id = ? AND tenant_id = ?")
        .bind(id_text(id.0))
        .bind(id_text(scope.tenant_id().0))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
    if opt_time(&row, "deleted_at")?.is_some() {
        return Ok(()); // Already tombstoned: done once, event written once.
    }
    sqlx::query("DELETE FROM credential WHERE connection_id = ?")
        .bind(id_text(id.0))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let row = sqlx::query(
        "UPDATE connection SET status = 'disconnecting', deleted_at = ?1, updated_at = ?1 WHERE id = ?2 RETURNING *",
    )
    .bind(micros(at))
    .bind(id_text(id.0))
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    insert_event(&mut tx, &event_for(&rows::connection(&row)?, EventType::ConnectionDeleted), at).await?;
    insert_audit(&mut tx, &audit, at).await?;
    tx.commit().await.map_err(db_err)
}

/// The tenant's visible connection, read inside the transaction (`NotFound` otherwise).
async fn visible(conn: &mut SqliteConnection, scope: TenantScope, id: ConnectionId) -> StoreResult<Connection> {
    let row = sqlx::query(&format!("SELECT * FROM connection WHERE id = ? AND tenant_id = ? AND {VISIBLE}"))
        .bind(id_text(id.0))
        .bind(id_text(scope.tenant_id().0))
        .fetch_one(conn)
        .await
        .map_err(db_err)?;
    rows::connection(&row)
}
