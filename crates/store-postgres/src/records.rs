//! Synced records on Postgres: the fenced page write (records, sweeps and checkpoint in one
//! transaction), write-back upserts, tenant-scoped reads, the change feed, purge and rewrap.

use crate::connections::VISIBLE;
use crate::jobs::hold_lease;
use crate::record_writes::write_records;
use crate::sync::{owned, write_state};
use crate::{db_err, rows, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::Row;

#[async_trait]
impl RecordStore for PgStore {
    async fn apply_page(&self, page: PageWrite) -> StoreResult<PageOutcome> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        hold_lease(&mut tx, &page.lease).await?;
        // A page holds one kind of record, bar a board's columns and groups beside it.
        let kind = page.records.first().map(|r| r.kind);
        let written = write_records(
            &mut tx,
            page.tenant_id,
            page.connection_id,
            Some(page.generation),
            page.records,
            &page.sweeps,
            page.now,
        )
        .await?;
        // The version check is the state write's own condition: a stale writer is refused
        // here and its records roll back with it.
        let state = write_state(&mut tx, page.connection_id, &page.state, page.now).await?;
        tx.commit().await.map_err(db_err)?;
        if let Some(kind) = kind {
            self.analyzer.written(&self.pool, kind, written.upserted);
        }
        Ok(PageOutcome {
            upserted: written.upserted,
            unchanged: written.unchanged,
            deleted: written.deleted,
            state_version: state.version,
        })
    }

    async fn upsert_records(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        records: Vec<RecordWrite>,
        now: DateTime<Utc>,
    ) -> StoreResult<PageOutcome> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("SELECT 1 AS owned FROM connection WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL")
            .bind(connection.0)
            .bind(scope.tenant_id().0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let written = write_records(&mut tx, scope.tenant_id(), connection, None, records, &[], now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(PageOutcome {
            upserted: written.upserted,
            unchanged: written.unchanged,
            deleted: written.deleted,
            state_version: 0,
        })
    }

    async fn readable_connection(&self, scope: TenantScope, id: ConnectionId) -> StoreResult<ReadableConnection> {
        let row = sqlx::query(&format!(
            "SELECT c.*, COALESCE((SELECT last_seq FROM sync_sequence WHERE connection_id = c.id), 0) AS record_seq
             FROM connection c WHERE c.id = $1 AND c.tenant_id = $2 AND {VISIBLE}"
        ))
        .bind(id.0)
        .bind(scope.tenant_id().0)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(ReadableConnection {
            connection: rows::connection(&row)?,
            record_seq: row.try_get("record_seq").map_err(db_err)?,
        })
    }

    async fn get_record(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        kind: RecordKind,
        id: RecordId,
    ) -> StoreResult<Record> {
        let row = sqlx::query(&format!(
            "SELECT * FROM {} WHERE id = $1 AND connection_id = $2 AND tenant_id = $3",
            kind.as_str()
        ))
        .bind(id.0)
        .bind(connection.0)
        .bind(scope.tenant_id().0)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        rows::record(&row, Some(kind))
    }

    async fn list_records(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        kind: RecordKind,
        filter: &RecordFilter,
        page: Page,
    ) -> StoreResult<Paged<Record>> {
        // No separate ownership query: the statement itself is scoped by tenant (another tenant's
        // connection answers an empty page, as on SQLite; the API checks the connection first).
        // Only the conditions a filter sets are in the SQL (not `$n IS NULL OR …`): once Postgres
        // switches a prepared statement to its generic plan, an `OR` on a parameter hides the
        // `(connection_id, parent_id, id)` index, and a page would read and sort the whole
        // connection. Each combination of filters is its own (cached) statement.
        // `[starts_at, ends_at)` overlaps `[time_min, time_max)`; no end is unbounded, no start
        // never matches a time filter.
        let mut query = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
            "SELECT * FROM {} WHERE connection_id = ",
            kind.as_str()
        ));
        query.push_bind(connection.0).push(" AND tenant_id = ").push_bind(scope.tenant_id().0);
        if let Some(after) = page.after {
            query.push(" AND id > ").push_bind(after);
        }
        if let Some(parent) = filter.parent_id {
            query.push(" AND parent_id = ").push_bind(parent.0);
            if let Some(parent_kind) = filter.parent_must_exist {
                // Uncorrelated: planned as an InitPlan, run once per statement.
                query.push(format!(" AND EXISTS (SELECT 1 FROM {} WHERE id = ", parent_kind.as_str()));
                query.push_bind(parent.0).push(" AND connection_id = ").push_bind(connection.0);
                query.push(" AND tenant_id = ").push_bind(scope.tenant_id().0).push(")");
            }
        }
        if let Some(provider_id) = &filter.provider_id {
            query.push(" AND provider_id = ").push_bind(provider_id.clone());
        }
        if let Some(series_id) = &filter.series_id {
            query.push(" AND series_id = ").push_bind(series_id.clone());
        }
        if let Some(min) = filter.time_min {
            query
                .push(" AND starts_at IS NOT NULL AND (ends_at IS NULL OR ends_at > ")
                .push_bind(crate::us(min))
                .push(")");
        }
        if let Some(max) = filter.time_max {
            query.push(" AND starts_at < ").push_bind(crate::us(max));
        }
        if !filter.include_deleted {
            query.push(" AND deleted_at IS NULL");
        }
        query.push(" ORDER BY id LIMIT ").push_bind(i64::from(page.limit) + 1);
        let found = query.build().fetch_all(&self.pool).await.map_err(db_err)?;
        let items = found.iter().map(|r| rows::record(r, Some(kind))).collect::<StoreResult<Vec<_>>>()?;
        Ok(Paged::from_overfetch(items, page.limit, |r| r.id.0))
    }

    async fn change_feed(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        kinds: &[RecordKind],
        after: i64,
        limit: u32,
    ) -> StoreResult<ChangePage> {
        owned(&self.pool, scope, connection).await?;
        // The high-water mark first: writers bump it under a row lock held to commit, so every
        // change at or below it is committed by the time the rows are read (next statement).
        let high_water: i64 = sqlx::query_scalar("SELECT last_seq FROM sync_sequence WHERE connection_id = $1")
            .bind(connection.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .unwrap_or(0);
        if kinds.is_empty() || after >= high_water {
            return Ok(ChangePage { records: Vec::new(), high_water });
        }
        let union = kinds
            .iter()
            .map(|kind| {
                format!(
                    "(SELECT *, '{kind}' AS kind FROM {kind} WHERE connection_id = $1 AND tenant_id = $2
                       AND change_seq > $3 AND change_seq <= $4 ORDER BY change_seq LIMIT $5)"
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let found = sqlx::query(&format!("SELECT * FROM ({union}) AS changes ORDER BY change_seq LIMIT $5"))
            .bind(connection.0)
            .bind(scope.tenant_id().0)
            .bind(after)
            .bind(high_water)
            .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let records = found.iter().map(|r| rows::record(r, None)).collect::<StoreResult<Vec<_>>>()?;
        Ok(ChangePage { records, high_water })
    }

    async fn purge_connection_records(&self, connection: ConnectionId, batch: u32) -> StoreResult<u64> {
        let mut left = i64::from(batch.max(1));
        let mut deleted = 0;
        for kind in RecordKind::ALL {
            let done = sqlx::query(&format!(
                "DELETE FROM {kind} WHERE id IN (SELECT id FROM {kind} WHERE connection_id = $1 LIMIT $2)"
            ))
            .bind(connection.0)
            .bind(left)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
            deleted += done.rows_affected();
            left -= done.rows_affected() as i64;
            if left <= 0 {
                return Ok(deleted);
            }
        }
        // No records left: the bookkeeping goes last, so a purge cut short resumes cleanly.
        for table in ["sync_state", "sync_sequence"] {
            let done = sqlx::query(&format!("DELETE FROM {table} WHERE connection_id = $1"))
                .bind(connection.0)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
            deleted += done.rows_affected();
        }
        Ok(deleted)
    }

    async fn record_key_usage(&self) -> StoreResult<Vec<RecordKeyUsage>> {
        let union = RecordKind::ALL
            .iter()
            .map(|kind| format!("SELECT key_id, COUNT(*) AS n FROM {kind} GROUP BY key_id"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let found = sqlx::query(&format!(
            "SELECT key_id, SUM(n)::bigint AS n FROM ({union}) AS per_kind GROUP BY key_id ORDER BY key_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        found
            .iter()
            .map(|row| {
                Ok(RecordKeyUsage { key_id: rows::key_id(row, "key_id")?, records: row.try_get("n").map_err(db_err)? })
            })
            .collect()
    }

    async fn records_to_rewrap(&self, primary_key_id: u32, limit: u32) -> StoreResult<Vec<Record>> {
        let union = RecordKind::ALL
            .iter()
            .map(|kind| format!("(SELECT *, '{kind}' AS kind FROM {kind} WHERE key_id <> $1 ORDER BY id LIMIT $2)"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let found = sqlx::query(&format!("SELECT * FROM ({union}) AS stale LIMIT $2"))
            .bind(i64::from(primary_key_id))
            .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        found.iter().map(|r| rows::record(r, None)).collect()
    }

    async fn rewrap_record(&self, kind: RecordKind, id: RecordId, old: &[u8], rewrapped: Rewrap) -> StoreResult<bool> {
        // Not a change of the record: no new seq, no updated_at.
        let done = sqlx::query(&format!(
            "UPDATE {} SET sealed = $1, key_id = $2, hash = $3 WHERE id = $4 AND sealed = $5",
            kind.as_str()
        ))
        .bind(&rewrapped.sealed)
        .bind(i64::from(rewrapped.key_id))
        .bind(&rewrapped.hash)
        .bind(id.0)
        .bind(old)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }
}
