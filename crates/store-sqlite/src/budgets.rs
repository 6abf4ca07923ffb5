//! Rate buckets, concurrency slots and circuit breakers on SQLite. Every step is one short
//! write on the single writer connection, so it is atomic without any lock held across calls.

use crate::codec::{id_text, int, int32, micros, opt_time, parsed, text, time};
use crate::{db_err, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::sqlite::SqliteRow;

#[async_trait]
impl BudgetStore for SqliteStore {
    async fn gcra(&self, key: &BucketKey, step: GcraStep, now: DateTime<Utc>) -> StoreResult<GcraVerdict> {
        let now_us = micros(now);
        // Read and write in one transaction on the single writer: nothing can step the bucket
        // in between, and the verdict needs the previous `tat`, which RETURNING cannot give.
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let stored: Option<i64> =
            sqlx::query_scalar("SELECT tat_us FROM rate_bucket WHERE provider = ? AND key = ? AND bucket = ?")
                .bind(key.provider.as_str())
                .bind(&key.key)
                .bind(&key.bucket)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        let tat = stored.unwrap_or(now_us);
        let new = tat.max(now_us).saturating_add(step.increment_us);
        let admitted = step.force || new - now_us <= step.capacity_us;
        let after = if admitted { new.max(now_us) } else { tat };
        if admitted {
            sqlx::query(
                "INSERT INTO rate_bucket (provider, key, bucket, tat_us, updated_at) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (provider, key, bucket) DO UPDATE SET tat_us = excluded.tat_us,
                     updated_at = excluded.updated_at",
            )
            .bind(key.provider.as_str())
            .bind(&key.key)
            .bind(&key.bucket)
            .bind(after)
            .bind(now_us)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        let retry_at = if admitted { now_us } else { now_us + (new - now_us - step.capacity_us) };
        Ok(GcraVerdict { admitted, retry_at: from_micros(retry_at)?, tat: from_micros(after)? })
    }

    async fn acquire_slot(
        &self,
        key: &BucketKey,
        slots: u32,
        holder: uuid::Uuid,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        if slots == 0 {
            return Ok(false);
        }
        // One statement: the lowest slot number in 0..slots that is missing, free or lapsed.
        let done = sqlx::query(
            "WITH RECURSIVE n(slot) AS (SELECT 0 UNION ALL SELECT slot + 1 FROM n WHERE slot + 1 < ?6)
             INSERT INTO rate_slot (provider, key, bucket, slot, holder, lease_until)
             SELECT ?1, ?2, ?3, n.slot, ?4, ?5 FROM n
             WHERE NOT EXISTS (SELECT 1 FROM rate_slot r
                               WHERE r.provider = ?1 AND r.key = ?2 AND r.bucket = ?3 AND r.slot = n.slot
                                 AND r.holder IS NOT NULL AND r.lease_until > ?7)
             ORDER BY n.slot LIMIT 1
             ON CONFLICT (provider, key, bucket, slot) DO UPDATE SET holder = excluded.holder,
                 lease_until = excluded.lease_until",
        )
        .bind(key.provider.as_str())
        .bind(&key.key)
        .bind(&key.bucket)
        .bind(id_text(holder))
        .bind(micros(until))
        .bind(i64::from(slots))
        .bind(micros(now))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_slot(&self, key: &BucketKey, holder: uuid::Uuid) -> StoreResult<()> {
        sqlx::query(
            "UPDATE rate_slot SET holder = NULL, lease_until = NULL
             WHERE provider = ? AND key = ? AND bucket = ? AND holder = ?",
        )
        .bind(key.provider.as_str())
        .bind(&key.key)
        .bind(&key.bucket)
        .bind(id_text(holder))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn breaker(&self, key: &str) -> StoreResult<Option<Breaker>> {
        let row = sqlx::query("SELECT * FROM circuit_breaker WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        row.as_ref().map(breaker).transpose()
    }

    async fn breaker_failure(&self, key: &str, policy: BreakerPolicy, now: DateTime<Utc>) -> StoreResult<Breaker> {
        // SET expressions all read the old row. A half-open breaker, or an open one past its
        // probe time, reopens with a doubled cooldown; a closed one opens at the threshold.
        let row = sqlx::query(
            "INSERT INTO circuit_breaker (key, state, consecutive_failures, opened_at, next_probe_at, cooldown_ms, updated_at)
             VALUES (?1, CASE WHEN 1 >= ?2 THEN 'open' ELSE 'closed' END, 1,
                     CASE WHEN 1 >= ?2 THEN ?5 END, CASE WHEN 1 >= ?2 THEN ?5 + ?3 * 1000 END,
                     CASE WHEN 1 >= ?2 THEN ?3 ELSE 0 END, ?5)
             ON CONFLICT (key) DO UPDATE SET
                 state = CASE
                     WHEN state = 'half_open' OR (state = 'open' AND next_probe_at <= ?5) THEN 'open'
                     WHEN state = 'closed' AND consecutive_failures + 1 >= ?2 THEN 'open'
                     ELSE state END,
                 opened_at = CASE
                     WHEN state = 'half_open' OR (state = 'open' AND next_probe_at <= ?5) THEN ?5
                     WHEN state = 'closed' AND consecutive_failures + 1 >= ?2 THEN ?5
                     ELSE opened_at END,
                 cooldown_ms = CASE
                     WHEN state = 'half_open' OR (state = 'open' AND next_probe_at <= ?5)
                         THEN MIN(MAX(cooldown_ms * 2, ?3), ?4)
                     WHEN state = 'closed' AND consecutive_failures + 1 >= ?2 THEN ?3
                     ELSE cooldown_ms END,
                 next_probe_at = CASE
                     WHEN state = 'half_open' OR (state = 'open' AND next_probe_at <= ?5)
                         THEN ?5 + MIN(MAX(cooldown_ms * 2, ?3), ?4) * 1000
                     WHEN state = 'closed' AND consecutive_failures + 1 >= ?2 THEN ?5 + ?3 * 1000
                     ELSE next_probe_at END,
                 consecutive_failures = consecutive_failures + 1,
                 updated_at = ?5
             RETURNING *",
        )
        .bind(key)
        .bind(policy.failure_threshold)
        .bind(policy.base_cooldown_ms)
        .bind(policy.max_cooldown_ms)
        .bind(micros(now))
        .fetch_one(&self.writer)
        .await
        .map_err(db_err)?;
        breaker(&row)
    }

    async fn breaker_try_probe(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE circuit_breaker SET state = 'half_open', updated_at = ?1
             WHERE key = ?2 AND state = 'open' AND next_probe_at <= ?1",
        )
        .bind(micros(now))
        .bind(key)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn breaker_success(&self, key: &str, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE circuit_breaker SET state = 'closed', consecutive_failures = 0, opened_at = NULL,
                 next_probe_at = NULL, cooldown_ms = 0, updated_at = ?
             WHERE key = ? AND (state <> 'closed' OR consecutive_failures > 0)",
        )
        .bind(micros(now))
        .bind(key)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }
}

fn breaker(row: &SqliteRow) -> StoreResult<Breaker> {
    Ok(Breaker {
        key: text(row, "key")?,
        state: parsed(row, "state")?,
        consecutive_failures: int32(row, "consecutive_failures")?,
        opened_at: opt_time(row, "opened_at")?,
        next_probe_at: opt_time(row, "next_probe_at")?,
        cooldown_ms: int(row, "cooldown_ms")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn from_micros(us: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Other("a rate bucket time is out of range".into()))
}
