//! Synced records on SQLite: page writes (fenced, version-checked, one transaction; the write
//! path itself is in `pages`), tenant-scoped reads, the change feed, purge and key rotation.

use crate::codec::{id_text, int, key_id, micros};
use crate::connections::VISIBLE;
use crate::jobs::check_lease;
use crate::pages::write_records;
use crate::sync::write_state;
use crate::{db_err, rows, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::SqliteConnection;

/// Every record table, for the queries that span kinds.
const KINDS: [RecordKind; 6] = [
    RecordKind::MondayBoard,
    RecordKind::MondayColumn,
    RecordKind::MondayGroup,
    RecordKind::MondayItem,
    RecordKind::GoogleCalendar,
    RecordKind::GoogleEvent,
];

#[async_trait]
impl RecordStore for SqliteStore {
    async fn apply_page(&self, page: PageWrite) -> StoreResult<PageOutcome> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        check_lease(&mut tx, &page.lease).await?;
        owned_connection(&mut tx, TenantScope::new(page.tenant_id), page.connection_id).await?;
        // The version check comes before any record is written; a refusal rolls back nothing
        // but keeps the rule obvious.
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM sync_state WHERE connection_id = ? AND part = ?")
                .bind(id_text(page.connection_id.0))
                .bind(&page.state.part)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        if version.unwrap_or(0) != page.state.expected_version {
            return Err(StoreError::Conflict("sync state version".into()));
        }
        let mut outcome = write_records(
            &mut tx,
            page.tenant_id,
            page.connection_id,
            &page.records,
            &page.sweeps,
            Some(page.generation),
            page.now,
        )
        .await?;
        let state = write_state(&mut tx, page.connection_id, &page.state, page.now).await?;
        tx.commit().await.map_err(db_err)?;
        outcome.state_version = state.version;
        Ok(outcome)
    }

    async fn upsert_records(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        records: Vec<RecordWrite>,
        now: DateTime<Utc>,
    ) -> StoreResult<PageOutcome> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        owned_connection(&mut tx, scope, connection).await?;
        let outcome = write_records(&mut tx, scope.tenant_id(), connection, &records, &[], None, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(outcome)
    }

    async fn readable_connection(&self, scope: TenantScope, id: ConnectionId) -> StoreResult<ReadableConnection> {
        let row = sqlx::query(&format!(
            "SELECT c.*, COALESCE((SELECT last_seq FROM sync_sequence WHERE connection_id = c.id), 0) AS record_seq
             FROM connection c WHERE c.id = ? AND c.tenant_id = ? AND {VISIBLE}"
        ))
        .bind(id_text(id.0))
        .bind(id_text(scope.tenant_id().0))
        .fetch_one(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(ReadableConnection { connection: rows::connection(&row)?, record_seq: int(&row, "record_seq")? })
    }

    async fn get_record(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        kind: RecordKind,
        id: RecordId,
    ) -> StoreResult<Record> {
        let row = sqlx::query(&format!("SELECT * FROM {kind} WHERE id = ? AND connection_id = ? AND tenant_id = ?"))
            .bind(id_text(id.0))
            .bind(id_text(connection.0))
            .bind(id_text(scope.tenant_id().0))
            .fetch_one(&self.reader)
            .await
            .map_err(db_err)?;
        rows::record(&row, kind)
    }

    async fn list_records(
        &self,
        scope: TenantScope,
        connection: ConnectionId,
        kind: RecordKind,
        filter: &RecordFilter,
        page: Page,
    ) -> StoreResult<Paged<Record>> {
        let found = list_query("SELECT *", scope, connection, kind, filter, page)
            .build()
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        let items = found.iter().map(|row| rows::record(row, kind)).collect::<StoreResult<Vec<_>>>()?;
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
        let mut conn = self.reader.acquire().await.map_err(db_err)?;
        owned_connection(&mut conn, scope, connection).await?;
        // The high-water mark first: a page commits its records and its `last_seq` together, so
        // every change at or below it is visible to the reads that follow.
        let high_water: i64 = sqlx::query_scalar("SELECT last_seq FROM sync_sequence WHERE connection_id = ?")
            .bind(id_text(connection.0))
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?
            .unwrap_or(0);
        if kinds.is_empty() {
            return Ok(ChangePage { records: Vec::new(), high_water });
        }
        let union = kinds
            .iter()
            .map(|kind| {
                format!(
                    "SELECT '{kind}' AS kind, * FROM {kind} WHERE connection_id = ?1 AND change_seq > ?2 AND change_seq <= ?3"
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let found = sqlx::query(&format!("{union} ORDER BY change_seq LIMIT ?4"))
            .bind(id_text(connection.0))
            .bind(after)
            .bind(high_water)
            .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        let records = found.iter().map(rows::any_record).collect::<StoreResult<Vec<_>>>()?;
        Ok(ChangePage { records, high_water })
    }

    async fn purge_connection_records(&self, connection: ConnectionId, batch: u32) -> StoreResult<u64> {
        let batch = u64::from(batch.max(1));
        let connection = id_text(connection.0);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let mut deleted = 0;
        for kind in KINDS {
            let left = i64::try_from(batch - deleted).unwrap_or(i64::MAX);
            let done = sqlx::query(&format!(
                "DELETE FROM {kind} WHERE id IN (SELECT id FROM {kind} WHERE connection_id = ? LIMIT ?)"
            ))
            .bind(&connection)
            .bind(left)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            deleted += done.rows_affected();
            if deleted >= batch {
                break;
            }
        }
        if deleted < batch {
            // Every table came up short: no record is left, so the bookkeeping goes too.
            for table in ["sync_state", "sync_sequence"] {
                let done = sqlx::query(&format!("DELETE FROM {table} WHERE connection_id = ?"))
                    .bind(&connection)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                deleted += done.rows_affected();
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(deleted)
    }

    async fn record_key_usage(&self) -> StoreResult<Vec<RecordKeyUsage>> {
        let union = KINDS.map(|kind| format!("SELECT key_id FROM {kind}")).join(" UNION ALL ");
        let found =
            sqlx::query(&format!("SELECT key_id, COUNT(*) AS n FROM ({union}) GROUP BY key_id ORDER BY key_id"))
                .fetch_all(&self.reader)
                .await
                .map_err(db_err)?;
        found.iter().map(|row| Ok(RecordKeyUsage { key_id: key_id(row, "key_id")?, records: int(row, "n")? })).collect()
    }

    async fn records_to_rewrap(&self, primary_key_id: u32, limit: u32) -> StoreResult<Vec<Record>> {
        let union =
            KINDS.map(|kind| format!("SELECT '{kind}' AS kind, * FROM {kind} WHERE key_id <> ?1")).join(" UNION ALL ");
        let found = sqlx::query(&format!("{union} ORDER BY id LIMIT ?2"))
            .bind(i64::from(primary_key_id))
            .bind(i64::from(limit.clamp(1, Page::MAX_LIMIT)))
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        found.iter().map(rows::any_record).collect()
    }

    async fn rewrap_record(&self, kind: RecordKind, id: RecordId, old: &[u8], rewrapped: Rewrap) -> StoreResult<bool> {
        // Guarded by the old ciphertext: a sync that rewrote the record meanwhile wins.
        let done =
            sqlx::query(&format!("UPDATE {kind} SET sealed = ?, key_id = ?, hash = ? WHERE id = ? AND sealed = ?"))
                .bind(&rewrapped.sealed)
                .bind(i64::from(rewrapped.key_id))
                .bind(&rewrapped.hash)
                .bind(id_text(id.0))
                .bind(old)
                .execute(&self.writer)
                .await
                .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }
}

/// The statement of [`RecordStore::list_records`], `head` being its `SELECT` list.
fn list_query(
    head: &str,
    scope: TenantScope,
    connection: ConnectionId,
    kind: RecordKind,
    filter: &RecordFilter,
    page: Page,
) -> sqlx::QueryBuilder<'static, sqlx::Sqlite> {
    // Only the conditions a filter sets are in the SQL (not `?n IS NULL OR …`): SQLite plans
    // a statement once, without the values, and an `OR` on a parameter hides every index
    // behind it, so a page read every row of the connection and sorted them by id. With
    // `parent_id = ?` and `id > ?` spelled out, a page of a calendar's events is a range
    // scan of `(connection_id, parent_id, id)` that stops after `limit + 1` rows.
    // A time filter keeps records whose [starts_at, ends_at) overlaps [min, max): a missing
    // ends_at is unbounded, a missing starts_at never matches.
    let mut query = sqlx::QueryBuilder::new(format!("{head} FROM {kind} WHERE connection_id = "));
    query.push_bind(id_text(connection.0)).push(" AND tenant_id = ").push_bind(id_text(scope.tenant_id().0));
    if let Some(parent) = filter.parent_id {
        query.push(" AND parent_id = ").push_bind(id_text(parent.0));
        if let Some(parent_kind) = filter.parent_must_exist {
            // Uncorrelated: SQLite evaluates it once per statement, not per row.
            query.push(format!(" AND EXISTS (SELECT 1 FROM {parent_kind} WHERE id = "));
            query.push_bind(id_text(parent.0)).push(" AND connection_id = ").push_bind(id_text(connection.0));
            query.push(" AND tenant_id = ").push_bind(id_text(scope.tenant_id().0)).push(")");
        }
    }
    if let Some(provider_id) = &filter.provider_id {
        query.push(" AND provider_id = ").push_bind(provider_id.clone());
    }
    if let Some(series_id) = &filter.series_id {
        query.push(" AND series_id = ").push_bind(series_id.clone());
    }
    if filter.time_min.is_some() || filter.time_max.is_some() {
        query.push(" AND starts_at IS NOT NULL");
    }
    if let Some(min) = filter.time_min {
        query.push(" AND (ends_at IS NULL OR ends_at > ").push_bind(micros(min)).push(")");
    }
    if let Some(max) = filter.time_max {
        query.push(" AND starts_at < ").push_bind(micros(max));
    }
    if !filter.include_deleted {
        query.push(" AND deleted_at IS NULL");
    }
    if let Some(after) = page.after {
        query.push(" AND id > ").push_bind(id_text(after));
    }
    query.push(" ORDER BY id LIMIT ").push_bind(i64::from(page.limit) + 1);
    query
}

/// `NotFound` unless `connection` is the scope's tenant's (tombstoned ones included: their
/// records stay readable until purged).
async fn owned_connection(
    conn: &mut SqliteConnection,
    scope: TenantScope,
    connection: ConnectionId,
) -> StoreResult<()> {
    let found = sqlx::query("SELECT 1 FROM connection WHERE id = ? AND tenant_id = ?")
        .bind(id_text(connection.0))
        .bind(id_text(scope.tenant_id().0))
        .fetch_optional(conn)
        .await
        .map_err(db_err)?;
    found.map(drop).ok_or(StoreError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteOptions;
    use sqlx::Row;

    /// SQLite's plan for a page of `kind` with `filter` (the statement `list_records` runs).
    async fn plan(store: &SqliteStore, kind: RecordKind, filter: &RecordFilter, after: Option<uuid::Uuid>) -> String {
        let scope = TenantScope::new(TenantId(uuid::Uuid::now_v7()));
        let page = Page::new(Some(100), after);
        let rows =
            list_query("EXPLAIN QUERY PLAN SELECT *", scope, ConnectionId(uuid::Uuid::now_v7()), kind, filter, page)
                .build()
                .fetch_all(&store.reader)
                .await
                .unwrap();
        rows.iter().map(|row| row.get::<String, _>("detail")).collect::<Vec<_>>().join("; ")
    }

    /// A page of a calendar's events (or a board's items) is an index range scan in id order
    /// that stops after the page, never a read of the whole connection sorted by id: the
    /// read API's events page depends on it (docs/benchmarks.md, Sync).
    #[tokio::test]
    async fn a_page_under_a_parent_walks_the_parent_index_in_id_order() {
        let dir = std::env::temp_dir().join(format!("patchbay-plan-{}", uuid::Uuid::now_v7()));
        let url = format!("sqlite://{}", dir.join("plan.db").display());
        let store = SqliteStore::open(&url, SqliteOptions::default()).await.unwrap();
        store.migrate().await.unwrap();
        let parent = Some(RecordId(uuid::Uuid::now_v7()));
        let under = RecordFilter { parent_id: parent, ..RecordFilter::default() };
        let from = RecordFilter { time_min: Some(Utc::now()), ..under.clone() };
        let checked = RecordFilter { parent_must_exist: Some(RecordKind::GoogleCalendar), ..under.clone() };
        let cases = [
            (RecordKind::GoogleEvent, &under, None, "google_event_parent_idx (connection_id=? AND parent_id=?)"),
            (
                RecordKind::GoogleEvent,
                &under,
                Some(uuid::Uuid::now_v7()),
                "google_event_parent_idx (connection_id=? AND parent_id=? AND id>?)",
            ),
            (RecordKind::GoogleEvent, &from, None, "google_event_parent_idx (connection_id=? AND parent_id=?)"),
            (RecordKind::GoogleEvent, &checked, None, "google_event_parent_idx (connection_id=? AND parent_id=?)"),
            (RecordKind::MondayItem, &under, None, "monday_item_parent_idx (connection_id=? AND parent_id=?)"),
        ];
        for (kind, filter, after, index) in cases {
            let plan = plan(&store, kind, filter, after).await;
            assert!(plan.contains(index), "{kind} {filter:?}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{kind} {filter:?} sorts: {plan}");
        }
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
