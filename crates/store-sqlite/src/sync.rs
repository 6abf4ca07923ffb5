//! Sync runs and sync state on SQLite. Run transitions and state writes are fenced by the job
//! lease inside their transaction; the run's job and outbox event go through the same helpers
//! every other write uses (`jobs::insert_job`, `outbox::insert_event`).

use crate::codec::{id_text, micros, now as wall_now, opt_micros};
use crate::jobs::{check_lease, insert_job};
use crate::outbox::insert_event;
use crate::{db_err, rows, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::SqliteConnection;

#[async_trait]
impl SyncStore for SqliteStore {
    async fn request_sync(&self, request: SyncRequest, now: DateTime<Utc>) -> StoreResult<SyncRequested> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let connection = id_text(request.connection_id.0);
        let usable = sqlx::query(
            "SELECT 1 FROM connection WHERE id = ? AND tenant_id = ? AND status = 'active' AND deleted_at IS NULL",
        )
        .bind(&connection)
        .bind(id_text(request.tenant_id.0))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        if usable.is_none() {
            return Err(StoreError::NotFound);
        }
        let queued = sqlx::query("SELECT * FROM sync_run WHERE connection_id = ? AND status = 'queued'")
            .bind(&connection)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(row) = queued {
            let run = rows::sync_run(&row)?;
            // Enqueueing the same job again merges it by its dedup key: earlier, higher, never
            // later or lower.
            let payload = SyncRunPayload { tenant_id: run.tenant_id, connection_id: run.connection_id, run_id: run.id };
            let job = insert_job(&mut tx, &payload.job_for(request.run_at, request.priority), now).await?.job_id();
            // A lost job was recreated: the run names its new job (as on Postgres), so the repair
            // sweep does not take the run for abandoned.
            let run = if run.job_id == Some(job) {
                run
            } else {
                let row = sqlx::query("UPDATE sync_run SET job_id = ? WHERE id = ? RETURNING *")
                    .bind(id_text(job.0))
                    .bind(id_text(run.id.0))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                rows::sync_run(&row)?
            };
            let run = raise_trigger(&mut tx, run, request.trigger).await?;
            tx.commit().await.map_err(db_err)?;
            return Ok(SyncRequested::AlreadyQueued(run));
        }
        let run_id = SyncRunId::new();
        let payload = SyncRunPayload { tenant_id: request.tenant_id, connection_id: request.connection_id, run_id };
        let job = insert_job(&mut tx, &payload.job_for(request.run_at, request.priority), now).await?;
        if let EnqueueOutcome::Merged(job_id) = job {
            // A run's job went back to the queue (a yield or a retry) while its run stays
            // `running`: that job will run the run again, so the request joins it.
            let requeued = sqlx::query(
                "UPDATE sync_run SET status = 'queued'
                 WHERE id = (SELECT json_extract(payload, '$.run_id') FROM job WHERE id = ?) AND status = 'running'
                 RETURNING *",
            )
            .bind(id_text(job_id.0))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            if let Some(row) = requeued {
                let run = raise_trigger(&mut tx, rows::sync_run(&row)?, request.trigger).await?;
                tx.commit().await.map_err(db_err)?;
                return Ok(SyncRequested::AlreadyQueued(run));
            }
            // The queued job names a finished run: point it at the new one.
            sqlx::query("UPDATE job SET payload = ? WHERE id = ?")
                .bind(serde_json::json!(payload).to_string())
                .bind(id_text(job_id.0))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let row = sqlx::query(
            r#"INSERT INTO sync_run (id, tenant_id, connection_id, resource, "trigger", status, job_id, queued_at)
               VALUES (?, ?, ?, ?, ?, 'queued', ?, ?) RETURNING *"#,
        )
        .bind(id_text(run_id.0))
        .bind(id_text(request.tenant_id.0))
        .bind(&connection)
        .bind(request.resource.as_str())
        .bind(request.trigger.as_str())
        .bind(id_text(job.job_id().0))
        .bind(micros(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let run = rows::sync_run(&row)?;
        tx.commit().await.map_err(db_err)?;
        Ok(SyncRequested::Created(run))
    }

    async fn start_sync_run(&self, lease: &LeaseRef, run: SyncRunId, now: DateTime<Utc>) -> StoreResult<SyncRun> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        check_lease(&mut tx, lease).await?;
        // A run left `running` by a crashed attempt is started again by the job's next attempt.
        let row = sqlx::query(
            "UPDATE sync_run SET status = 'running', started_at = ?
             WHERE id = ? AND status IN ('queued', 'running') RETURNING *",
        )
        .bind(micros(now))
        .bind(id_text(run.0))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Err(match run_exists(&mut tx, run).await? {
                true => StoreError::Conflict("the sync run has already finished".into()),
                false => StoreError::NotFound,
            });
        };
        tx.commit().await.map_err(db_err)?;
        rows::sync_run(&row)
    }

    async fn finish_sync_run(
        &self,
        lease: &LeaseRef,
        run: SyncRunId,
        finish: RunFinish,
        now: DateTime<Utc>,
    ) -> StoreResult<SyncRun> {
        if !finish.status.is_final() {
            return Err(StoreError::Other(format!("a sync run cannot finish as `{}`", finish.status)));
        }
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        check_lease(&mut tx, lease).await?;
        let row = sqlx::query(
            "UPDATE sync_run SET status = ?, api_calls = ?, upserted = ?, deleted = ?, error_code = ?,
                 error_message = ?, finished_at = ?
             WHERE id = ? AND status IN ('queued', 'running') RETURNING *",
        )
        .bind(finish.status.as_str())
        .bind(finish.api_calls)
        .bind(finish.upserted)
        .bind(finish.deleted)
        .bind(&finish.error_code)
        .bind(&finish.error_message)
        .bind(micros(now))
        .bind(id_text(run.0))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            // Finished already (a retried attempt): answer the stored run, announce nothing twice.
            let row = sqlx::query("SELECT * FROM sync_run WHERE id = ?")
                .bind(id_text(run.0))
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            return rows::sync_run(&row);
        };
        let finished = rows::sync_run(&row)?;
        let event_type = match finished.status {
            SyncRunStatus::Succeeded => Some(EventType::SyncCompleted),
            SyncRunStatus::Failed => Some(EventType::SyncFailed),
            _ => None,
        };
        if finished.status == SyncRunStatus::Succeeded {
            sqlx::query("UPDATE connection SET last_sync_at = ? WHERE id = ?")
                .bind(micros(now))
                .bind(id_text(finished.connection_id.0))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        if let Some(event_type) = event_type {
            let event = NewEvent {
                tenant_id: finished.tenant_id,
                connection_id: Some(finished.connection_id),
                event_type,
                payload: run_event_payload(&finished),
            };
            insert_event(&mut tx, &event, now).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(finished)
    }

    async fn get_sync_run(&self, scope: TenantScope, id: SyncRunId) -> StoreResult<SyncRun> {
        let row = sqlx::query("SELECT * FROM sync_run WHERE id = ? AND tenant_id = ?")
            .bind(id_text(id.0))
            .bind(id_text(scope.tenant_id().0))
            .fetch_one(&self.reader)
            .await
            .map_err(db_err)?;
        rows::sync_run(&row)
    }

    async fn list_sync_runs(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        page: Page,
    ) -> StoreResult<Paged<SyncRun>> {
        // Newest first: the cursor is the last run's id, the keyset its (queued_at, id).
        let found = sqlx::query(
            "SELECT * FROM sync_run WHERE connection_id = ?1 AND tenant_id = ?2
               AND (?3 IS NULL OR (queued_at, id) < (SELECT queued_at, id FROM sync_run WHERE id = ?3))
             ORDER BY queued_at DESC, id DESC LIMIT ?4",
        )
        .bind(id_text(connection.0))
        .bind(id_text(scope.tenant_id().0))
        .bind(page.after.map(id_text))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        let items = found.iter().map(rows::sync_run).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(items, page.limit, |r| r.id.0))
    }

    async fn sync_state(&self, connection: ConnectionId, part: &str) -> StoreResult<Option<SyncState>> {
        let row = sqlx::query("SELECT * FROM sync_state WHERE connection_id = ? AND part = ?")
            .bind(id_text(connection.0))
            .bind(part)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::sync_state).transpose()
    }

    async fn sync_states(&self, connection: ConnectionId) -> StoreResult<Vec<SyncState>> {
        let found = sqlx::query("SELECT * FROM sync_state WHERE connection_id = ? ORDER BY part")
            .bind(id_text(connection.0))
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        found.iter().map(rows::sync_state).collect()
    }

    async fn save_sync_state(
        &self,
        lease: &LeaseRef,
        connection: ConnectionId,
        write: StateWrite,
        now: DateTime<Utc>,
    ) -> StoreResult<SyncState> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        check_lease(&mut tx, lease).await?;
        let state = write_state(&mut tx, connection, &write, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(state)
    }

    async fn mark_dirty(&self, connection: ConnectionId, part: &str, at: DateTime<Utc>) -> StoreResult<()> {
        // Not a checkpoint write: the version stays. `dirty_at` is the latest signal while dirty,
        // so a success can only clear what it covers.
        sqlx::query(
            "INSERT INTO sync_state (connection_id, part, checkpoint, version, generation, dirty, dirty_at, updated_at)
             VALUES (?1, ?2, 'null', 0, 0, 1, ?3, ?4)
             ON CONFLICT (connection_id, part) DO UPDATE SET
                 dirty_at = CASE WHEN sync_state.dirty = 1 THEN MAX(COALESCE(sync_state.dirty_at, ?3), ?3) ELSE ?3 END,
                 dirty = 1, updated_at = ?4",
        )
        .bind(id_text(connection.0))
        .bind(part)
        .bind(micros(at))
        .bind(micros(wall_now()))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn set_change_signal(
        &self,
        connection: ConnectionId,
        part: &str,
        healthy_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sync_state (connection_id, part, checkpoint, version, generation, signal_healthy_until, updated_at)
             VALUES (?1, ?2, 'null', 0, 0, ?3, ?4)
             ON CONFLICT (connection_id, part) DO UPDATE SET signal_healthy_until = ?3, updated_at = ?4",
        )
        .bind(id_text(connection.0))
        .bind(part)
        .bind(opt_micros(healthy_until))
        .bind(micros(wall_now()))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn sync_repair_candidates(&self, limit: u32) -> StoreResult<Vec<RepairCandidate>> {
        self.abandon_orphaned_runs().await?;
        let found = sqlx::query(
            "SELECT c.tenant_id, c.id, c.provider FROM connection c
             WHERE c.status = 'active' AND c.deleted_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM sync_run r
                               WHERE r.connection_id = c.id AND r.status IN ('queued', 'running'))
             ORDER BY c.id LIMIT ?",
        )
        .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        found
            .iter()
            .map(|row| {
                Ok(RepairCandidate {
                    tenant_id: crate::codec::uuid(row, "tenant_id")?.into(),
                    connection_id: crate::codec::uuid(row, "id")?.into(),
                    provider: crate::codec::parsed(row, "provider")?,
                })
            })
            .collect()
    }
}

impl SqliteStore {
    /// Finishes `failed` (`abandoned`) every open run whose job can no longer finish it: the
    /// job is gone, or ended (`dead` after a lease lapsed on its final attempt — a worker killed
    /// once too often —, or `failed` when superseded by a newer queued run). Each such run
    /// announces `sync.failed` like any finished run, and its connection becomes a repair
    /// candidate again instead of looking busy forever. A job only leaves `queued`/`running` for
    /// good, so a run seen here can never be picked up again.
    async fn abandon_orphaned_runs(&self) -> StoreResult<()> {
        let now = wall_now();
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let found = sqlx::query(
            "UPDATE sync_run SET status = 'failed', error_code = 'abandoned', error_message = ?, finished_at = ?
             WHERE status IN ('queued', 'running')
               AND NOT EXISTS (SELECT 1 FROM job j WHERE j.id = sync_run.job_id AND j.status IN ('queued', 'running'))
             RETURNING *",
        )
        .bind("the run's job ended without finishing it")
        .bind(micros(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        for row in &found {
            let run = rows::sync_run(row)?;
            tracing::warn!(connection = %run.connection_id, run = %run.id, "sync run abandoned: its job ended without finishing it");
            let event = NewEvent {
                tenant_id: run.tenant_id,
                connection_id: Some(run.connection_id),
                event_type: EventType::SyncFailed,
                payload: run_event_payload(&run),
            };
            insert_event(&mut tx, &event, now).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }
}

async fn run_exists(conn: &mut SqliteConnection, run: SyncRunId) -> StoreResult<bool> {
    let found = sqlx::query("SELECT 1 FROM sync_run WHERE id = ?")
        .bind(id_text(run.0))
        .fetch_optional(conn)
        .await
        .map_err(db_err)?;
    Ok(found.is_some())
}

/// The outbox payload of a finished run: counts and the error class, never the error message
/// (it may quote a provider) or record data.
fn run_event_payload(run: &SyncRun) -> serde_json::Value {
    serde_json::json!({
        "run_id": run.id,
        "connection_id": run.connection_id,
        "resource": run.resource.as_str(),
        "trigger": run.trigger.as_str(),
        "status": run.status.as_str(),
        "api_calls": run.api_calls,
        "upserted": run.upserted,
        "deleted": run.deleted,
        "error_code": run.error_code,
    })
}

/// Writes a part's state on `conn` (inside the caller's transaction) if its version still is
/// `write.expected_version` (a missing row is version 0); `Conflict` otherwise.
pub(crate) async fn write_state(
    conn: &mut SqliteConnection,
    connection: ConnectionId,
    write: &StateWrite,
    now: DateTime<Utc>,
) -> StoreResult<SyncState> {
    let connection = id_text(connection.0);
    let version: Option<i64> =
        sqlx::query_scalar("SELECT version FROM sync_state WHERE connection_id = ? AND part = ?")
            .bind(&connection)
            .bind(&write.part)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    if version.unwrap_or(0) != write.expected_version {
        return Err(StoreError::Conflict("sync state version".into()));
    }
    let row = sqlx::query(
        "INSERT INTO sync_state (connection_id, part, checkpoint, version, generation, dirty, last_success_at,
             last_full_at, updated_at)
         VALUES (?1, ?2, ?3, ?4 + 1, ?5, 0, ?6, ?7, ?8)
         ON CONFLICT (connection_id, part) DO UPDATE SET
             checkpoint = excluded.checkpoint, version = sync_state.version + 1,
             generation = excluded.generation,
             dirty = CASE WHEN ?6 IS NOT NULL AND COALESCE(sync_state.dirty_at, ?6) <= ?6 THEN 0
                          ELSE sync_state.dirty END,
             last_success_at = COALESCE(?6, sync_state.last_success_at),
             last_full_at = COALESCE(?7, sync_state.last_full_at),
             updated_at = excluded.updated_at
         RETURNING *",
    )
    .bind(&connection)
    .bind(&write.part)
    .bind(write.checkpoint.to_string())
    .bind(write.expected_version)
    .bind(write.generation)
    .bind(opt_micros(write.success_at))
    .bind(opt_micros(write.full_at))
    .bind(micros(now))
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    rows::sync_state(&row)
}

/// Raises a pending run's trigger to `trigger` when it ranks higher ([`SyncTrigger::rank`]).
async fn raise_trigger(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    run: SyncRun,
    trigger: SyncTrigger,
) -> StoreResult<SyncRun> {
    if trigger.rank() <= run.trigger.rank() {
        return Ok(run);
    }
    let row = sqlx::query(r#"UPDATE sync_run SET "trigger" = ? WHERE id = ? RETURNING *"#)
        .bind(trigger.as_str())
        .bind(id_text(run.id.0))
        .fetch_one(&mut **tx)
        .await
        .map_err(db_err)?;
    rows::sync_run(&row)
}
