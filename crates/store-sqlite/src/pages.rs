//! The record write path shared by `apply_page` (a sync page) and `upsert_records`
//! (write-back): inside the caller's transaction, a page costs a handful of statements per kind
//! — one read of the existing hashes, multi-row upserts of the changes, one update of the
//! records only seen, one tombstoning of the deletes — not a round trip per record.

use crate::codec::id_text;
use crate::db_err;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::{Row, SqliteConnection};
use std::collections::{HashMap, HashSet};

/// Rows per multi-row upsert (17 parameters a row stays far below SQLite's 32766). A page's
/// remainder goes through the single-row statement, so each kind uses two cached statements.
const CHUNK: usize = 64;

/// What a row held before this write: its hash, whether it is tombstoned, its generation.
struct Existing {
    hash: Vec<u8>,
    gone: bool,
    generation: i64,
}

/// Writes records and sweeps on `conn` (inside the caller's transaction), taking the
/// connection's change seqs. `generation`: the page's (written into every upserted or seen
/// record), or `None` for write-back (rows keep theirs; new rows start at 0).
pub(crate) async fn write_records(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    connection: ConnectionId,
    records: &[RecordWrite],
    sweeps: &[Sweep],
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> StoreResult<PageOutcome> {
    let connection_text = id_text(connection.0);
    let base: i64 = sqlx::query_scalar("SELECT last_seq FROM sync_sequence WHERE connection_id = ?")
        .bind(&connection_text)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?
        .unwrap_or(0);
    let mut batch = Batch {
        tenant: id_text(tenant.0),
        connection: connection_text,
        now: now.timestamp_micros(),
        seq: base,
        outcome: PageOutcome::default(),
    };
    // A kind keyed by parent (events) is written per parent: its rows are found by (parent,
    // provider id), so every statement of a group names the parent.
    let mut groups: Vec<(RecordKind, Option<RecordId>)> = Vec::new();
    for record in records {
        let key = (record.kind, key_parent(record)?);
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    groups.sort();
    for (kind, parent) in groups {
        let writes: Vec<&RecordWrite> =
            records.iter().filter(|r| r.kind == kind && (!kind.keyed_by_parent() || r.parent_id == parent)).collect();
        batch.write_kind(conn, kind, parent.map(|p| id_text(p.0)), &writes, generation).await?;
    }
    for sweep in sweeps {
        batch.sweep(conn, sweep).await?;
    }
    if batch.seq > base {
        sqlx::query(
            "INSERT INTO sync_sequence (connection_id, last_seq) VALUES (?, ?)
             ON CONFLICT (connection_id) DO UPDATE SET last_seq = excluded.last_seq",
        )
        .bind(&batch.connection)
        .bind(batch.seq)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(batch.outcome)
}

/// The parent a write's row is found under: `None` for kinds keyed by provider id alone; a
/// write of a kind keyed by parent without one is refused.
fn key_parent(record: &RecordWrite) -> StoreResult<Option<RecordId>> {
    if !record.kind.keyed_by_parent() {
        return Ok(None);
    }
    match record.parent_id {
        Some(parent) => Ok(Some(parent)),
        None => Err(StoreError::Other(format!("a {} write must name its parent", record.kind))),
    }
}

/// The extra condition of a statement that finds rows of a kind keyed by parent: the parent
/// (bound last, as `placeholder`: `?` in a statement of anonymous parameters, `?N` among
/// numbered ones, since sqlx counts anonymous ones apart) and not a legacy row (generation -1,
/// written before events were keyed by calendar: only the sweep of a full listing touches those).
fn parent_clause(table: RecordKind, parent: &Option<String>, placeholder: &str) -> String {
    match parent {
        Some(_) => format!(" AND {table}.parent_id = {placeholder} AND {table}.generation >= 0"),
        None => String::new(),
    }
}

/// Binds the parent of a [`parent_clause`] (nothing when there is none).
fn bind_parent<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    parent: &'q Option<String>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    match parent {
        Some(parent) => query.bind(parent),
        None => query,
    }
}

/// One page's write in progress: the last seq taken and what has been counted.
struct Batch {
    tenant: String,
    connection: String,
    now: i64,
    seq: i64,
    outcome: PageOutcome,
}

/// The statements of one kind not yet executed.
#[derive(Default)]
struct Pending<'a> {
    upserts: Vec<(&'a RecordWrite, &'a RecordFields, i64, i64)>,
    deletes: Vec<(&'a str, i64)>,
    seen: Vec<&'a str>,
    /// Provider ids in the pending statements: a repeat flushes first, so order is kept.
    ids: HashSet<&'a str>,
}

impl Batch {
    async fn write_kind(
        &mut self,
        conn: &mut SqliteConnection,
        kind: RecordKind,
        parent: Option<String>,
        writes: &[&RecordWrite],
        generation: Option<i64>,
    ) -> StoreResult<()> {
        let parent = &parent;
        let mut existing = self.existing(conn, kind, parent, writes).await?;
        let mut pending = Pending::default();
        for write in writes {
            let pid = write.provider_id.as_str();
            if pending.ids.contains(pid) {
                self.flush(conn, kind, parent, std::mem::take(&mut pending), generation).await?;
            }
            let before = existing.get(pid);
            match &write.change {
                RecordChange::Upsert(fields) => {
                    if let Some(old) = before.filter(|old| !old.gone && old.hash == fields.hash) {
                        self.outcome.unchanged += 1;
                        if generation.is_some_and(|g| g != old.generation) {
                            pending.seen.push(pid);
                            pending.ids.insert(pid);
                        }
                        continue;
                    }
                    self.seq += 1;
                    self.outcome.upserted += 1;
                    let row_generation = generation.or(before.map(|old| old.generation)).unwrap_or(0);
                    pending.upserts.push((write, fields, row_generation, self.seq));
                    pending.ids.insert(pid);
                    existing.insert(
                        pid.to_owned(),
                        Existing { hash: fields.hash.clone(), gone: false, generation: row_generation },
                    );
                }
                RecordChange::Delete => {
                    let Some(old) = existing.get_mut(pid).filter(|old| !old.gone) else { continue };
                    old.gone = true;
                    self.seq += 1;
                    self.outcome.deleted += 1;
                    pending.deletes.push((pid, self.seq));
                    pending.ids.insert(pid);
                }
            }
        }
        self.flush(conn, kind, parent, pending, generation).await
    }

    /// The rows the page names that exist, by provider id (under `parent` for a kind keyed by
    /// parent): one query.
    async fn existing(
        &self,
        conn: &mut SqliteConnection,
        kind: RecordKind,
        parent: &Option<String>,
        writes: &[&RecordWrite],
    ) -> StoreResult<HashMap<String, Existing>> {
        let ids = serde_json::to_string(&writes.iter().map(|w| w.provider_id.as_str()).collect::<Vec<_>>())
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let found = bind_parent(
            sqlx::query(&format!(
                "SELECT provider_id, hash, deleted_at IS NOT NULL AS gone, generation FROM {kind}
             WHERE connection_id = ? AND provider_id IN (SELECT value FROM json_each(?)){}",
                parent_clause(kind, parent, "?")
            ))
            .bind(&self.connection)
            .bind(ids),
            parent,
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
        found
            .iter()
            .map(|row| {
                let existing = Existing {
                    hash: row.try_get("hash").map_err(db_err)?,
                    gone: row.try_get("gone").map_err(db_err)?,
                    generation: row.try_get("generation").map_err(db_err)?,
                };
                Ok((row.try_get("provider_id").map_err(db_err)?, existing))
            })
            .collect()
    }

    async fn flush(
        &self,
        conn: &mut SqliteConnection,
        kind: RecordKind,
        parent: &Option<String>,
        pending: Pending<'_>,
        generation: Option<i64>,
    ) -> StoreResult<()> {
        let mut chunks = pending.upserts.chunks_exact(CHUNK);
        for chunk in chunks.by_ref() {
            self.upsert(conn, kind, chunk).await?;
        }
        for row in chunks.remainder() {
            self.upsert(conn, kind, std::slice::from_ref(row)).await?;
        }
        let scoped = parent_clause(kind, parent, "?");
        if !pending.deletes.is_empty() {
            let pairs = serde_json::to_string(&pending.deletes).map_err(|e| StoreError::Other(e.to_string()))?;
            bind_parent(
                sqlx::query(&delete_sql(kind, parent)).bind(self.now).bind(&self.connection).bind(pairs),
                parent,
            )
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        }
        if let (Some(generation), false) = (generation, pending.seen.is_empty()) {
            // Seen, unchanged: only the generation moves (no seq, no updated_at).
            let ids = serde_json::to_string(&pending.seen).map_err(|e| StoreError::Other(e.to_string()))?;
            bind_parent(
                sqlx::query(&format!(
                    "UPDATE {kind} SET generation = ?
                 WHERE connection_id = ? AND provider_id IN (SELECT value FROM json_each(?)){scoped}"
                ))
                .bind(generation)
                .bind(&self.connection)
                .bind(ids),
                parent,
            )
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        }
        Ok(())
    }

    /// Inserts or rewrites `rows` in one statement (a change: new seq, live, new fields).
    async fn upsert(
        &self,
        conn: &mut SqliteConnection,
        kind: RecordKind,
        rows: &[(&RecordWrite, &RecordFields, i64, i64)],
    ) -> StoreResult<()> {
        let sql = upsert_sql(kind, rows.len());
        let mut query = sqlx::query(&sql);
        for (write, fields, generation, seq) in rows {
            query = query
                .bind(&self.tenant)
                .bind(&self.connection)
                .bind(self.now)
                .bind(self.now)
                .bind(id_text(write.id.0))
                .bind(&write.provider_id)
                .bind(write.parent_id.map(|p| id_text(p.0)))
                .bind(&fields.hash)
                .bind(&fields.sealed)
                .bind(i64::from(fields.key_id))
                .bind(fields.starts_at.map(|t| t.timestamp_micros()))
                .bind(fields.ends_at.map(|t| t.timestamp_micros()))
                .bind(&fields.series_id)
                .bind(&fields.status)
                .bind(fields.provider_updated_at.map(|t| t.timestamp_micros()))
                .bind(*generation)
                .bind(*seq);
        }
        query.execute(&mut *conn).await.map_err(db_err)?;
        Ok(())
    }

    /// Tombstones the live rows a sweep names, each with its own new seq, in one statement.
    async fn sweep(&mut self, conn: &mut SqliteConnection, sweep: &Sweep) -> StoreResult<()> {
        let kind = sweep.kind;
        let done = sqlx::query(&format!(
            "UPDATE {kind} SET deleted_at = ?1, updated_at = ?1, change_seq = ?2 + r.rn
             FROM (SELECT id AS rid, row_number() OVER (ORDER BY id) AS rn FROM {kind}
                   WHERE connection_id = ?3 AND (?4 IS NULL OR parent_id = ?4)
                     AND deleted_at IS NULL AND generation < ?5) AS r
             WHERE {kind}.id = r.rid"
        ))
        .bind(self.now)
        .bind(self.seq)
        .bind(&self.connection)
        .bind(sweep.parent_id.map(|p| id_text(p.0)))
        .bind(sweep.generation)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
        let swept = done.rows_affected();
        self.seq += i64::try_from(swept).map_err(|_| StoreError::Other("sweep count out of range".into()))?;
        self.outcome.deleted += swept;
        Ok(())
    }
}

/// The tombstoning of a page's deletes: `?3` is a JSON array of `[provider id, seq]` pairs.
/// The pairs are materialised (`LIMIT -1` keeps the subquery from being flattened) so they drive
/// the join and each finds its row through the provider key; flattened, SQLite chose to walk
/// every event of the calendar and scan the pairs for each (EXPLAIN QUERY PLAN), quadratic in a
/// page of cancellations.
fn delete_sql(kind: RecordKind, parent: &Option<String>) -> String {
    format!(
        "UPDATE {kind} SET deleted_at = ?1, updated_at = ?1, change_seq = d.seq
         FROM (SELECT value ->> 0 AS pid, value ->> 1 AS seq FROM json_each(?3) LIMIT -1) AS d
         WHERE {kind}.connection_id = ?2 AND {kind}.provider_id = d.pid{}",
        parent_clause(kind, parent, "?4")
    )
}

/// `INSERT … VALUES (…), … ON CONFLICT DO UPDATE` for `rows` rows of 17 anonymous (`?`)
/// parameters each, in column order. Anonymous, not numbered: binding looks each parameter's
/// name up, and SQLite finds a numbered (`?NNN`) parameter's name by walking the statement's
/// list of them, so a thousand numbered parameters cost about half a million steps per statement
/// (measured: the largest single cost of a SQLite page write before).
fn upsert_sql(kind: RecordKind, rows: usize) -> String {
    const ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let mut sql = format!(
        "INSERT INTO {kind} (tenant_id, connection_id, created_at, updated_at, id, provider_id, parent_id, hash,
             sealed, key_id, starts_at, ends_at, series_id, status, provider_updated_at, generation, change_seq)
         VALUES "
    );
    sql.reserve(rows * (ROW.len() + 1) + 600);
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push_str(ROW);
    }
    sql.push_str(if kind.keyed_by_parent() {
        // The partial key: legacy rows (generation -1) are left for the sweep.
        " ON CONFLICT (connection_id, parent_id, provider_id) WHERE generation >= 0"
    } else {
        " ON CONFLICT (connection_id, provider_id)"
    });
    sql.push_str(
        " DO UPDATE SET parent_id = excluded.parent_id,
             hash = excluded.hash, sealed = excluded.sealed, key_id = excluded.key_id,
             starts_at = excluded.starts_at, ends_at = excluded.ends_at, series_id = excluded.series_id,
             status = excluded.status, provider_updated_at = excluded.provider_updated_at,
             generation = excluded.generation, change_seq = excluded.change_seq, deleted_at = NULL,
             updated_at = excluded.updated_at",
    );
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteOptions, SqliteStore};

    /// A page's deletes find their rows through the key, one lookup each, whatever the size of
    /// the calendar (a scan of the calendar per page of deletes was the plan before).
    #[tokio::test]
    async fn deletes_find_their_rows_through_the_provider_key() {
        let dir = std::env::temp_dir().join(format!("patchbay-plan-{}", uuid::Uuid::now_v7()));
        let url = format!("sqlite://{}", dir.join("plan.db").display());
        let store = SqliteStore::open(&url, SqliteOptions::default()).await.unwrap();
        store.migrate().await.unwrap();
        for (kind, parent, index) in [
            (
                RecordKind::GoogleEvent,
                Some("p".to_owned()),
                "google_event_provider_key (connection_id=? AND parent_id=? AND provider_id=?)",
            ),
            (RecordKind::MondayItem, None, "(connection_id=? AND provider_id=?)"),
        ] {
            let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {}", delete_sql(kind, &parent)))
                .fetch_all(&store.writer)
                .await
                .unwrap();
            let plan = rows.iter().map(|row| row.get::<String, _>("detail")).collect::<Vec<_>>().join("; ");
            assert!(plan.contains(&format!("SEARCH {kind} USING")) && plan.contains(index), "{kind}: {plan}");
            assert!(plan.contains("SCAN d"), "{kind}: the pairs drive the join: {plan}");
        }
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
