//! Sync runs and sync state on Postgres. Queueing a run writes its job in the same transaction
//! (through the queue's own enqueue), finishing one writes its outbox event; run and state
//! writes made by a job are fenced by its lease.

use crate::jobs::{hold_lease, insert_job};
use crate::outbox::insert_event;
use crate::{db_err, now, rows, us, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::PgConnection;

/// How many times a request retries after a concurrent request queued the connection's run
/// between our check and our insert (the second then merges into it).
const MAX_REQUEST_RACES: usize = 3;

/// Writes a part's state over the version the writer read, in the caller's transaction. A
/// missing row is version 0 (a row made by a change signal is version 0 too); `Conflict` when the
/// version moved on.
pub(crate) async fn write_state(
    conn: &mut PgConnection,
    connection: ConnectionId,
    write: &StateWrite,
    now: DateTime<Utc>,
) -> StoreResult<SyncState> {
    // Version 0 may have no row yet (or one a change signal made): upsert. Any other version
    // must be the stored one: a plain update, which matches nothing when it moved on.
    const SET: &str = "checkpoint = $3, version = s.version + 1, generation = $4,
        last_success_at = COALESCE($5, s.last_success_at),
        dirty = CASE WHEN $5 IS NOT NULL AND (s.dirty_at IS NULL OR s.dirty_at <= $5) THEN false ELSE s.dirty END,
        last_full_at = COALESCE($6, s.last_full_at), updated_at = $7";
    let sql = if write.expected_version == 0 {
        format!(
            "INSERT INTO sync_state AS s (connection_id, part, checkpoint, version, generation, dirty,
                 last_success_at, last_full_at, updated_at)
             VALUES ($1, $2, $3, 1, $4, false, $5, $6, $7)
             ON CONFLICT (connection_id, part) DO UPDATE SET {SET} WHERE s.version = $8 RETURNING *"
        )
    } else {
        format!("UPDATE sync_state AS s SET {SET} WHERE connection_id = $1 AND part = $2 AND version = $8 RETURNING *")
    };
    let row = sqlx::query(&sql)
        .bind(connection.0)
        .bind(&write.part)
        .bind(&write.checkpoint)
        .bind(write.generation)
        .bind(write.success_at.map(us))
        .bind(write.full_at.map(us))
        .bind(us(now))
        .bind(write.expected_version)
        .fetch_optional(conn)
        .await
        .map_err(db_err)?;
    rows::sync_state(&row.ok_or_else(|| StoreError::Conflict("sync state version".into()))?)
}

/// `NotFound` unless `connection` is the tenant's (any state: history stays readable).
pub(crate) async fn owned(pool: &sqlx::PgPool, scope: TenantScope, connection: ConnectionId) -> StoreResult<()> {
    sqlx::query("SELECT 1 AS owned FROM connection WHERE id = $1 AND tenant_id = $2")
        .bind(connection.0)
        .bind(scope.tenant_id().0)
        .fetch_one(pool)
        .await
        .map_err(db_err)
        .map(drop)
}

impl PgStore {
    /// One transaction of [`SyncStore::request_sync`].
    async fn try_request_sync(&self, r: &SyncRequest, at: DateTime<Utc>) -> StoreResult<SyncRequested> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Shared lock: a disconnect (which updates the row) waits until the run is queued.
        sqlx::query(
            "SELECT 1 AS active FROM connection
             WHERE id = $1 AND tenant_id = $2 AND status = 'active' AND deleted_at IS NULL FOR SHARE",
        )
        .bind(r.connection_id.0)
        .bind(r.tenant_id.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let queued = sqlx::query("SELECT * FROM sync_run WHERE connection_id = $1 AND status = 'queued' FOR UPDATE")
            .bind(r.connection_id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(row) = queued {
            let run = rows::sync_run(&row)?;
            let payload = SyncRunPayload { tenant_id: r.tenant_id, connection_id: r.connection_id, run_id: run.id };
            // Merges into the run's queued job (earlier, higher); recreates it if it was lost.
            let job = insert_job(&mut tx, &payload.job_for(r.run_at, r.priority), at).await?.job_id();
            let run = if run.job_id == Some(job) {
                run
            } else {
                let row = sqlx::query("UPDATE sync_run SET job_id = $1 WHERE id = $2 RETURNING *")
                    .bind(job.0)
                    .bind(run.id.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                rows::sync_run(&row)?
            };
            let run = raise_trigger(&mut tx, run, r.trigger).await?;
            tx.commit().await.map_err(db_err)?;
            return Ok(SyncRequested::AlreadyQueued(run));
        }
        let run_id = SyncRunId::new();
        let payload = SyncRunPayload { tenant_id: r.tenant_id, connection_id: r.connection_id, run_id };
        let outcome = insert_job(&mut tx, &payload.job_for(r.run_at, r.priority), at).await?;
        if let EnqueueOutcome::Merged(job) = outcome {
            // A run's job went back to the queue (a retry) while its run stays `running`: the
            // queued job will run that run again, so the request joins it, queued once more.
            let requeued = sqlx::query(
                "UPDATE sync_run SET status = 'queued', started_at = NULL
                 WHERE id = (SELECT (payload->>'run_id')::uuid FROM job WHERE id = $1) AND status = 'running'
                 RETURNING *",
            )
            .bind(job.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            if let Some(row) = requeued {
                let run = raise_trigger(&mut tx, rows::sync_run(&row)?, r.trigger).await?;
                tx.commit().await.map_err(db_err)?;
                return Ok(SyncRequested::AlreadyQueued(run));
            }
            // The queued job names a finished run: point it at the new one.
            sqlx::query("UPDATE job SET payload = $1 WHERE id = $2")
                .bind(serde_json::json!(payload))
                .bind(job.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let row = sqlx::query(
            "INSERT INTO sync_run (id, tenant_id, connection_id, resource, trigger, status, job_id, queued_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7) RETURNING *",
        )
        .bind(run_id.0)
        .bind(r.tenant_id.0)
        .bind(r.connection_id.0)
        .bind(r.resource.as_str())
        .bind(r.trigger.as_str())
        .bind(outcome.job_id().0)
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let run = rows::sync_run(&row)?;
        tx.commit().await.map_err(db_err)?;
        Ok(SyncRequested::Created(run))
    }

    /// Why an update of a run by id matched nothing: missing, or already finished.
    async fn run_missing_or_final(conn: &mut PgConnection, run: SyncRunId) -> StoreError {
        match sqlx::query("SELECT 1 AS found FROM sync_run WHERE id = $1").bind(run.0).fetch_optional(conn).await {
            Ok(Some(_)) => StoreError::Conflict("sync run is finished".into()),
            Ok(None) => StoreError::NotFound,
            Err(e) => db_err(e),
        }
    }
}

#[async_trait]
impl SyncStore for PgStore {
    async fn request_sync(&self, request: SyncRequest, now: DateTime<Utc>) -> StoreResult<SyncRequested> {
        let at = us(now);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_request_sync(&request, at).await {
                // A concurrent request queued the run first; the next attempt merges into it.
                Err(StoreError::Conflict(c)) if c == "sync_run_queued_key" && attempt < MAX_REQUEST_RACES => continue,
                other => return other,
            }
        }
    }

    async fn start_sync_run(&self, lease: &LeaseRef, run: SyncRunId, now: DateTime<Utc>) -> StoreResult<SyncRun> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        hold_lease(&mut tx, lease).await?;
        // `running` too: a retried job starts its run again.
        let row = sqlx::query(
            "UPDATE sync_run SET status = 'running', started_at = $1
             WHERE id = $2 AND status IN ('queued', 'running') RETURNING *",
        )
        .bind(us(now))
        .bind(run.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Err(Self::run_missing_or_final(&mut tx, run).await) };
        let run = rows::sync_run(&row)?;
        tx.commit().await.map_err(db_err)?;
        Ok(run)
    }

    async fn finish_sync_run(
        &self,
        lease: &LeaseRef,
        run: SyncRunId,
        finish: RunFinish,
        now: DateTime<Utc>,
    ) -> StoreResult<SyncRun> {
        if !finish.status.is_final() {
            return Err(StoreError::Conflict("a run finishes succeeded, failed or skipped".into()));
        }
        let at = us(now);
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        hold_lease(&mut tx, lease).await?;
        let row = sqlx::query(
            "UPDATE sync_run SET status = $1, api_calls = $2, upserted = $3, deleted = $4, error_code = $5,
                 error_message = $6, finished_at = $7
             WHERE id = $8 AND status IN ('queued', 'running') RETURNING *",
        )
        .bind(finish.status.as_str())
        .bind(finish.api_calls)
        .bind(finish.upserted)
        .bind(finish.deleted)
        .bind(&finish.error_code)
        .bind(&finish.error_message)
        .bind(at)
        .bind(run.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            // Already finished (a retried finish): answer the run as it ended, announce nothing.
            let row = sqlx::query("SELECT * FROM sync_run WHERE id = $1")
                .bind(run.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            return rows::sync_run(&row);
        };
        let run = rows::sync_run(&row)?;
        let event_type = match run.status {
            SyncRunStatus::Succeeded => Some(EventType::SyncCompleted),
            SyncRunStatus::Failed => Some(EventType::SyncFailed),
            _ => None,
        };
        if run.status == SyncRunStatus::Succeeded {
            sqlx::query("UPDATE connection SET last_sync_at = $1 WHERE id = $2")
                .bind(at)
                .bind(run.connection_id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        if let Some(event_type) = event_type {
            insert_event(&mut tx, &run_event(&run, event_type), at).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(run)
    }

    async fn get_sync_run(&self, scope: TenantScope, id: SyncRunId) -> StoreResult<SyncRun> {
        let row = sqlx::query("SELECT * FROM sync_run WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(scope.tenant_id().0)
            .fetch_one(&self.pool)
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
        // Newest first; the cursor (a run id) stands for its (queued_at, id) position.
        let found = sqlx::query(
            "SELECT * FROM sync_run WHERE connection_id = $1 AND tenant_id = $2
               AND ($3::uuid IS NULL OR (queued_at, id) < (SELECT queued_at, id FROM sync_run WHERE id = $3))
             ORDER BY queued_at DESC, id DESC LIMIT $4",
        )
        .bind(connection.0)
        .bind(scope.tenant_id().0)
        .bind(page.after)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let items = found.iter().map(rows::sync_run).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(items, page.limit, |r| r.id.0))
    }

    async fn sync_state(&self, connection: ConnectionId, part: &str) -> StoreResult<Option<SyncState>> {
        let row = sqlx::query("SELECT * FROM sync_state WHERE connection_id = $1 AND part = $2")
            .bind(connection.0)
            .bind(part)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::sync_state).transpose()
    }

    async fn sync_states(&self, connection: ConnectionId) -> StoreResult<Vec<SyncState>> {
        let found = sqlx::query("SELECT * FROM sync_state WHERE connection_id = $1 ORDER BY part")
            .bind(connection.0)
            .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        hold_lease(&mut tx, lease).await?;
        let state = write_state(&mut tx, connection, &write, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(state)
    }

    async fn mark_dirty(&self, connection: ConnectionId, part: &str, at: DateTime<Utc>) -> StoreResult<()> {
        // Not a checkpoint write: the version stays. dirty_at only moves forward, so a late
        // signal delivered out of order cannot make a newer one look covered by a sync.
        sqlx::query(
            "INSERT INTO sync_state AS s (connection_id, part, checkpoint, version, generation, dirty, dirty_at,
                 updated_at)
             VALUES ($1, $2, 'null', 0, 0, true, $3, $3)
             ON CONFLICT (connection_id, part) DO UPDATE SET
                 dirty = true, dirty_at = GREATEST(s.dirty_at, $3), updated_at = $3",
        )
        .bind(connection.0)
        .bind(part)
        .bind(us(at))
        .execute(&self.pool)
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
            "INSERT INTO sync_state AS s (connection_id, part, checkpoint, version, generation, dirty,
                 signal_healthy_until, updated_at)
             VALUES ($1, $2, 'null', 0, 0, false, $3, $4)
             ON CONFLICT (connection_id, part) DO UPDATE SET
                 signal_healthy_until = excluded.signal_healthy_until, updated_at = excluded.updated_at",
        )
        .bind(connection.0)
        .bind(part)
        .bind(healthy_until.map(us))
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn sync_repair_candidates(&self, limit: u32) -> StoreResult<Vec<RepairCandidate>> {
        abandon_orphaned_runs(&self.pool).await?;
        let found = sqlx::query(
            "SELECT c.tenant_id, c.id, c.provider FROM connection c
             WHERE c.status = 'active' AND c.deleted_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM sync_run r
                               WHERE r.connection_id = c.id AND r.status IN ('queued', 'running'))
             ORDER BY c.id LIMIT $1",
        )
        .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        found
            .iter()
            .map(|row| {
                let (scope, connection_id) = rows::scoped_connection(row)?;
                Ok(RepairCandidate {
                    tenant_id: scope.tenant_id(),
                    connection_id,
                    provider: rows::parsed(row, "provider")?,
                })
            })
            .collect()
    }
}

/// Finishes `failed` (`abandoned`) every open run whose job can no longer finish it: the job is
/// gone, or ended (`dead` after a lease lapsed on its final attempt — a worker killed once too
/// often —, or `failed` when superseded by a newer queued run). Each such run announces
/// `sync.failed` like any finished run, and its connection becomes a repair candidate again
/// instead of looking busy forever. A job only leaves `queued`/`running` for good, so a run seen
/// here can never be picked up again.
async fn abandon_orphaned_runs(pool: &sqlx::PgPool) -> StoreResult<()> {
    let at = now();
    let mut tx = pool.begin().await.map_err(db_err)?;
    let found = sqlx::query(
        "UPDATE sync_run AS r SET status = 'failed', error_code = 'abandoned', error_message = $1, finished_at = $2
         WHERE r.status IN ('queued', 'running')
           AND NOT EXISTS (SELECT 1 FROM job j WHERE j.id = r.job_id AND j.status IN ('queued', 'running'))
         RETURNING *",
    )
    .bind(ABANDONED_MESSAGE)
    .bind(at)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    for row in &found {
        let run = rows::sync_run(row)?;
        tracing::warn!(connection = %run.connection_id, run = %run.id, "sync run abandoned: its job ended without finishing it");
        insert_event(&mut tx, &run_event(&run, EventType::SyncFailed), at).await?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(())
}

/// The message of a run finished by [`abandon_orphaned_runs`].
const ABANDONED_MESSAGE: &str = "the run's job ended without finishing it";

/// A finished run's outbox event: counts and the error class only, never the message, never
/// record data.
fn run_event(run: &SyncRun, event_type: EventType) -> NewEvent {
    let payload = serde_json::json!({
        "run_id": run.id, "connection_id": run.connection_id, "resource": run.resource.as_str(),
        "trigger": run.trigger.as_str(), "status": run.status.as_str(), "api_calls": run.api_calls,
        "upserted": run.upserted, "deleted": run.deleted, "error_code": run.error_code,
    });
    NewEvent { tenant_id: run.tenant_id, connection_id: Some(run.connection_id), event_type, payload }
}

/// Raises a pending run's trigger to `trigger` when it ranks higher ([`SyncTrigger::rank`]).
async fn raise_trigger(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    run: SyncRun,
    trigger: SyncTrigger,
) -> StoreResult<SyncRun> {
    if trigger.rank() <= run.trigger.rank() {
        return Ok(run);
    }
    let row = sqlx::query("UPDATE sync_run SET trigger = $1 WHERE id = $2 RETURNING *")
        .bind(trigger.as_str())
        .bind(run.id.0)
        .fetch_one(&mut **tx)
        .await
        .map_err(db_err)?;
    rows::sync_run(&row)
}
