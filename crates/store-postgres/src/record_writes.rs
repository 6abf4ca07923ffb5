//! The batched record write behind a sync page and a write-back, in the caller's transaction.
//!
//! A page costs a fixed handful of statements whatever its size: lock the connection's sequence
//! row, read the page's stored hashes (`= ANY`), then per kind one `INSERT … SELECT FROM UNNEST …
//! ON CONFLICT DO UPDATE` for the changed rows, one `UPDATE … FROM UNNEST` for tombstones, one
//! `UPDATE` for the rows only seen again, one `UPDATE` per sweep, and the new sequence value.

use crate::{db_err, us};
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::{PgConnection, Row};
use std::collections::HashMap;

/// What a record write did.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub upserted: u64,
    pub unchanged: u64,
    pub deleted: u64,
}

/// What a page does to one provider id, its writes taken in order: the last upsert (if any),
/// and whether a delete came after it (an upsert then a delete in one page leaves a tombstone).
struct Net {
    write: RecordWrite,
    upsert: Option<RecordFields>,
    delete_after: bool,
}

/// What a row is found by: its provider id, and its parent for a kind keyed by parent (events).
type Key = (Option<uuid::Uuid>, String);

/// The key of a write; a write of a kind keyed by parent without one is refused.
fn key_of(write: &RecordWrite) -> StoreResult<Key> {
    if !write.kind.keyed_by_parent() {
        return Ok((None, write.provider_id.clone()));
    }
    match write.parent_id {
        Some(parent) => Ok((Some(parent.0), write.provider_id.clone())),
        None => Err(StoreError::Other(format!("a {} write must name its parent", write.kind))),
    }
}

/// One kind's share of a write, one [`Net`] per key in first-seen order.
#[derive(Default)]
struct KindWrites {
    order: Vec<Net>,
    index: HashMap<Key, usize>,
}

impl KindWrites {
    fn push(&mut self, mut write: RecordWrite) -> StoreResult<()> {
        let key = key_of(&write)?;
        // Moved out, not cloned: the ciphertext is the bulk of a page.
        let upsert = match std::mem::replace(&mut write.change, RecordChange::Delete) {
            RecordChange::Upsert(fields) => Some(fields),
            RecordChange::Delete => None,
        };
        match (self.index.get(&key), upsert) {
            (Some(&i), Some(fields)) => self.order[i] = Net { write, upsert: Some(fields), delete_after: false },
            (Some(&i), None) => self.order[i].delete_after = true,
            (None, upsert) => {
                self.index.insert(key, self.order.len());
                let delete_after = upsert.is_none();
                self.order.push(Net { write, upsert, delete_after });
            }
        }
        Ok(())
    }
}

/// Column arrays of the rows one kind inserts or rewrites.
#[derive(Default)]
struct Upserts {
    id: Vec<uuid::Uuid>,
    provider_id: Vec<String>,
    parent_id: Vec<Option<uuid::Uuid>>,
    hash: Vec<Vec<u8>>,
    sealed: Vec<Vec<u8>>,
    key_id: Vec<i64>,
    starts_at: Vec<Option<DateTime<Utc>>>,
    ends_at: Vec<Option<DateTime<Utc>>>,
    series_id: Vec<Option<String>>,
    status: Vec<Option<String>>,
    provider_updated_at: Vec<Option<DateTime<Utc>>>,
    seq: Vec<i64>,
}

impl Upserts {
    fn push(&mut self, w: RecordWrite, f: RecordFields, seq: i64) {
        self.id.push(w.id.0);
        self.provider_id.push(w.provider_id);
        self.parent_id.push(w.parent_id.map(|p| p.0));
        self.hash.push(f.hash);
        self.sealed.push(f.sealed);
        self.key_id.push(i64::from(f.key_id));
        self.starts_at.push(f.starts_at.map(us));
        self.ends_at.push(f.ends_at.map(us));
        self.series_id.push(f.series_id);
        self.status.push(f.status);
        self.provider_updated_at.push(f.provider_updated_at.map(us));
        self.seq.push(seq);
    }
}

/// Writes `records` and then `sweeps` for `connection`, each change under the next
/// `change_seq`. `generation` marks every upserted or seen row; `None` (a write-back) keeps a
/// stored row's generation and gives new rows 0.
pub(crate) async fn write_records(
    conn: &mut PgConnection,
    tenant: TenantId,
    connection: ConnectionId,
    generation: Option<i64>,
    records: Vec<RecordWrite>,
    sweeps: &[Sweep],
    now: DateTime<Utc>,
) -> StoreResult<Written> {
    let now = us(now);
    let mut written = Written::default();
    if records.is_empty() && sweeps.is_empty() {
        return Ok(written);
    }
    // The sequence row lock, taken first, serialises every writer of the connection: hashes are
    // judged against committed rows, and commits become visible in seq order.
    let mut last_seq: i64 = sqlx::query_scalar(
        "INSERT INTO sync_sequence AS s (connection_id, last_seq) VALUES ($1, 0)
         ON CONFLICT (connection_id) DO UPDATE SET last_seq = s.last_seq RETURNING last_seq",
    )
    .bind(connection.0)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    let start_seq = last_seq;

    let mut by_kind: HashMap<RecordKind, KindWrites> = HashMap::new();
    for write in records {
        by_kind.entry(write.kind).or_default().push(write)?;
    }
    for kind in RecordKind::ALL {
        let Some(writes) = by_kind.remove(&kind) else { continue };
        let table = kind.as_str();
        let keyed = kind.keyed_by_parent();
        // A kind keyed by parent is found under its parents (the unique key leads with them),
        // legacy rows (generation -1, from before events were keyed by calendar) left out.
        let scoped = if keyed { " AND t.parent_id = u.parent_id AND t.generation >= 0" } else { "" };
        let ids: Vec<&str> = writes.order.iter().map(|n| n.write.provider_id.as_str()).collect();
        let parents: Vec<Option<uuid::Uuid>> = writes.order.iter().map(|n| n.write.parent_id.map(|p| p.0)).collect();
        // Both lists as `= ANY` (an index scan on the key; the (parent, id) pairs are matched
        // below); a page of events names one calendar, so nothing is over-read in practice.
        let under = if keyed { " AND parent_id = ANY($3) AND generation >= 0" } else { "" };
        let found = sqlx::query(&format!(
            "SELECT parent_id, provider_id, hash, deleted_at IS NOT NULL AS dead FROM {table}
             WHERE connection_id = $1 AND provider_id = ANY($2){under}"
        ))
        .bind(connection.0)
        .bind(&ids)
        .bind(&parents)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
        let mut stored: HashMap<Key, (Vec<u8>, bool)> = HashMap::with_capacity(found.len());
        for row in &found {
            let parent: Option<uuid::Uuid> = row.try_get("parent_id").map_err(db_err)?;
            // A row of another parent with a provider id of this page is simply never looked up.
            stored.insert(
                (parent.filter(|_| keyed), row.try_get("provider_id").map_err(db_err)?),
                (row.try_get("hash").map_err(db_err)?, row.try_get("dead").map_err(db_err)?),
            );
        }
        let mut upserts = Upserts::default();
        let (mut tombstones, mut tombstone_parents, mut tombstone_seqs) = (Vec::new(), Vec::new(), Vec::new());
        let (mut seen, mut seen_parents) = (Vec::new(), Vec::new());
        for Net { write, upsert, delete_after } in writes.order {
            let key = key_of(&write)?;
            let mut live = matches!(stored.get(&key), Some((_, false)));
            let tombstone = delete_after.then(|| key.clone());
            if let Some(fields) = upsert {
                match stored.get(&key) {
                    Some((hash, false)) if *hash == fields.hash => {
                        seen.push(write.provider_id);
                        seen_parents.push(key.0);
                    }
                    _ => {
                        last_seq += 1;
                        upserts.push(write, fields, last_seq);
                    }
                }
                live = true;
            }
            if let (Some((parent, provider_id)), true) = (tombstone, live) {
                last_seq += 1;
                tombstones.push(provider_id);
                tombstone_parents.push(parent);
                tombstone_seqs.push(last_seq);
            }
        }
        written.upserted += upserts.id.len() as u64;
        written.unchanged += seen.len() as u64;
        written.deleted += tombstones.len() as u64;
        if !upserts.id.is_empty() {
            upsert(&mut *conn, kind, tenant, connection, generation, upserts, now).await?;
        }
        if !tombstones.is_empty() {
            sqlx::query(&format!(
                "UPDATE {table} AS t SET deleted_at = $1, updated_at = $1, change_seq = u.seq
                 FROM UNNEST($3::text[], $4::int8[], $5::uuid[]) AS u(provider_id, seq, parent_id)
                 WHERE t.connection_id = $2 AND t.provider_id = u.provider_id{scoped}"
            ))
            .bind(now)
            .bind(connection.0)
            .bind(&tombstones)
            .bind(&tombstone_seqs)
            .bind(&tombstone_parents)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        }
        if let (Some(generation), false) = (generation, seen.is_empty()) {
            // Seen again unchanged: only the mark of this generation, no new seq, no updated_at.
            sqlx::query(&format!(
                "UPDATE {table} AS t SET generation = $1
                 FROM UNNEST($3::text[], $4::uuid[]) AS u(provider_id, parent_id)
                 WHERE t.connection_id = $2 AND t.provider_id = u.provider_id AND t.generation <> $1{scoped}"
            ))
            .bind(generation)
            .bind(connection.0)
            .bind(&seen)
            .bind(&seen_parents)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        }
    }
    for sweep in sweeps {
        let row = sqlx::query(&format!(
            "WITH victims AS (
                 SELECT id, row_number() OVER (ORDER BY id) AS rn FROM {table}
                 WHERE connection_id = $1 AND ($2::uuid IS NULL OR parent_id = $2)
                   AND deleted_at IS NULL AND generation < $3
             ), swept AS (
                 UPDATE {table} AS t SET deleted_at = $4, updated_at = $4, change_seq = $5 + v.rn
                 FROM victims v WHERE t.id = v.id RETURNING t.change_seq
             )
             SELECT count(*) AS n, COALESCE(max(change_seq), $5) AS last FROM swept",
            table = sweep.kind.as_str()
        ))
        .bind(connection.0)
        .bind(sweep.parent_id.map(|p| p.0))
        .bind(sweep.generation)
        .bind(now)
        .bind(last_seq)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
        written.deleted += u64::try_from(row.try_get::<i64, _>("n").map_err(db_err)?).unwrap_or(0);
        last_seq = row.try_get("last").map_err(db_err)?;
    }
    if last_seq != start_seq {
        sqlx::query("UPDATE sync_sequence SET last_seq = $1 WHERE connection_id = $2")
            .bind(last_seq)
            .bind(connection.0)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    Ok(written)
}

/// Inserts or rewrites one kind's changed rows in one statement (a tombstoned row comes back).
async fn upsert(
    conn: &mut PgConnection,
    kind: RecordKind,
    tenant: TenantId,
    connection: ConnectionId,
    generation: Option<i64>,
    u: Upserts,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let table = kind.as_str();
    // Events: the partial key, legacy rows (generation -1) left for the sweep.
    let target = if kind.keyed_by_parent() {
        "(connection_id, parent_id, provider_id) WHERE generation >= 0"
    } else {
        "(connection_id, provider_id)"
    };
    sqlx::query(&format!(
        "INSERT INTO {table} AS t (id, tenant_id, connection_id, provider_id, parent_id, hash, sealed, key_id,
             starts_at, ends_at, series_id, status, provider_updated_at, generation, change_seq, deleted_at,
             created_at, updated_at)
         SELECT u.id, $1, $2, u.provider_id, u.parent_id, u.hash, u.sealed, u.key_id, u.starts_at, u.ends_at,
             u.series_id, u.status, u.provider_updated_at, COALESCE($3, 0), u.seq, NULL, $4, $4
         FROM UNNEST($5::uuid[], $6::text[], $7::uuid[], $8::bytea[], $9::bytea[], $10::int8[],
                     $11::timestamptz[], $12::timestamptz[], $13::text[], $14::text[], $15::timestamptz[],
                     $16::int8[])
             AS u(id, provider_id, parent_id, hash, sealed, key_id, starts_at, ends_at, series_id, status,
                  provider_updated_at, seq)
         ON CONFLICT {target} DO UPDATE SET
             parent_id = excluded.parent_id, hash = excluded.hash, sealed = excluded.sealed,
             key_id = excluded.key_id, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
             series_id = excluded.series_id, status = excluded.status,
             provider_updated_at = excluded.provider_updated_at, generation = COALESCE($3, t.generation),
             change_seq = excluded.change_seq, deleted_at = NULL, updated_at = excluded.updated_at"
    ))
    .bind(tenant.0)
    .bind(connection.0)
    .bind(generation)
    .bind(now)
    .bind(&u.id)
    .bind(&u.provider_id)
    .bind(&u.parent_id)
    .bind(&u.hash)
    .bind(&u.sealed)
    .bind(&u.key_id)
    .bind(&u.starts_at)
    .bind(&u.ends_at)
    .bind(&u.series_id)
    .bind(&u.status)
    .bind(&u.provider_updated_at)
    .bind(&u.seq)
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}
