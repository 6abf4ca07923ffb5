//! Rate budgets, concurrency slots and circuit breakers on Postgres. Every step is one statement:
//! the row lock of `INSERT … ON CONFLICT DO UPDATE` orders concurrent steps (from any number of
//! processes) and nothing is held between calls.

use crate::{db_err, rows, us, PgStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_store::*;
use sqlx::Row;

/// One GCRA step. The admitted test is the upsert's own condition (evaluated on the latest row
/// version under its lock), so two racing steps can never both fit in the last unit of room: a
/// refused step writes nothing and returns no `taken` row. `seen` (the locked current tat) only
/// feeds the retry hint. The insert is skipped when even an empty bucket could not take the
/// increment, which is exactly when the conflict branch would refuse too.
const GCRA: &str = "WITH seen AS (
        SELECT tat_us FROM rate_bucket WHERE provider = $1 AND key = $2 AND bucket = $3 FOR UPDATE
    ), taken AS (
        INSERT INTO rate_bucket AS b (provider, key, bucket, tat_us, updated_at)
        SELECT $1, $2, $3, GREATEST($4 + $5, $4), $8
        WHERE $7 OR $5 <= $6
        ON CONFLICT (provider, key, bucket) DO UPDATE
            SET tat_us = GREATEST(GREATEST(b.tat_us, $4) + $5, $4), updated_at = $8
            WHERE $7 OR GREATEST(b.tat_us, $4) + $5 - $4 <= $6
        RETURNING b.tat_us
    )
    SELECT (SELECT tat_us FROM taken) AS taken, (SELECT tat_us FROM seen) AS seen";

/// Takes a random free slot: one with no row, no holder or a lapsed lease. Two callers may pick
/// the same number; the loser's conflict branch finds it held and takes nothing, and reports
/// that a free slot existed (`candidates`) so the caller can try again.
const ACQUIRE_SLOT: &str = "WITH held AS (
        SELECT slot FROM rate_slot
        WHERE provider = $1 AND key = $2 AND bucket = $3 AND holder IS NOT NULL AND lease_until > $7
    ), free AS (
        SELECT s FROM generate_series(0, $4 - 1) AS s WHERE s NOT IN (SELECT slot FROM held)
    ), taken AS (
        INSERT INTO rate_slot AS r (provider, key, bucket, slot, holder, lease_until)
        SELECT $1, $2, $3, s, $5, $6 FROM (SELECT s FROM free ORDER BY random() LIMIT 1) AS pick
        ON CONFLICT (provider, key, bucket, slot) DO UPDATE
            SET holder = excluded.holder, lease_until = excluded.lease_until
            WHERE r.holder IS NULL OR r.lease_until <= $7
        RETURNING r.slot
    )
    SELECT EXISTS (SELECT 1 FROM taken) AS got, (SELECT count(*) FROM free) AS candidates";

/// How many lost races for one free slot an acquire absorbs before answering "no slot".
const MAX_SLOT_RACES: usize = 4;

/// A transient failure. Closed: count it, open at the threshold with the base cooldown. Open
/// past its probe time, or half-open (the probe failed): reopen with the cooldown doubled up to
/// the maximum. Open before its probe time: just count it.
const FAILURE: &str = "INSERT INTO circuit_breaker AS b
        (key, state, consecutive_failures, opened_at, next_probe_at, cooldown_ms, updated_at)
    SELECT $1, CASE WHEN opens THEN 'open' ELSE 'closed' END, 1,
           CASE WHEN opens THEN $5 END,
           CASE WHEN opens THEN $5 + make_interval(secs => $3::double precision / 1000) END,
           CASE WHEN opens THEN $3 ELSE 0 END, $5
    FROM (SELECT 1 >= $2 AS opens) AS first
    ON CONFLICT (key) DO UPDATE SET
        consecutive_failures = b.consecutive_failures + 1,
        state = CASE
            WHEN b.state = 'closed' AND b.consecutive_failures + 1 < $2 THEN 'closed'
            ELSE 'open' END,
        opened_at = CASE
            WHEN b.state = 'closed' AND b.consecutive_failures + 1 >= $2 THEN $5
            WHEN b.state = 'half_open' OR (b.state = 'open' AND b.next_probe_at <= $5) THEN $5
            ELSE b.opened_at END,
        cooldown_ms = CASE
            WHEN b.state = 'closed' AND b.consecutive_failures + 1 >= $2 THEN $3
            WHEN b.state = 'half_open' OR (b.state = 'open' AND b.next_probe_at <= $5)
                THEN LEAST(GREATEST(b.cooldown_ms, $3) * 2, $4)
            ELSE b.cooldown_ms END,
        next_probe_at = CASE
            WHEN b.state = 'closed' AND b.consecutive_failures + 1 >= $2
                THEN $5 + make_interval(secs => $3::double precision / 1000)
            WHEN b.state = 'half_open' OR (b.state = 'open' AND b.next_probe_at <= $5)
                THEN $5 + make_interval(secs => LEAST(GREATEST(b.cooldown_ms, $3) * 2, $4)::double precision / 1000)
            ELSE b.next_probe_at END,
        updated_at = $5
    RETURNING *";

#[async_trait]
impl BudgetStore for PgStore {
    async fn gcra(&self, key: &BucketKey, step: GcraStep, now: DateTime<Utc>) -> StoreResult<GcraVerdict> {
        let now_us = us(now).timestamp_micros();
        let row = sqlx::query(GCRA)
            .bind(key.provider.as_str())
            .bind(&key.key)
            .bind(&key.bucket)
            .bind(now_us)
            .bind(step.increment_us)
            .bind(step.capacity_us)
            .bind(step.force)
            .bind(us(now))
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        let taken: Option<i64> = row.try_get("taken").map_err(db_err)?;
        if let Some(tat) = taken {
            return Ok(GcraVerdict { admitted: true, retry_at: us(now), tat: micros(tat)? });
        }
        // Refused: nothing changed. The hint says when this step would fit; without a row seen
        // (a first step racing another's insert) it falls back to an empty bucket's answer.
        let tat = row.try_get::<Option<i64>, _>("seen").map_err(db_err)?.unwrap_or(now_us);
        let new = tat.max(now_us) + step.increment_us;
        let retry = (new - step.capacity_us).max(now_us + 1);
        Ok(GcraVerdict { admitted: false, retry_at: micros(retry)?, tat: micros(tat)? })
    }

    async fn acquire_slot(
        &self,
        key: &BucketKey,
        slots: u32,
        holder: uuid::Uuid,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        for _ in 0..MAX_SLOT_RACES {
            let row = sqlx::query(ACQUIRE_SLOT)
                .bind(key.provider.as_str())
                .bind(&key.key)
                .bind(&key.bucket)
                .bind(i32::try_from(slots).unwrap_or(i32::MAX))
                .bind(holder)
                .bind(us(until))
                .bind(us(now))
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
            if row.try_get::<bool, _>("got").map_err(db_err)? {
                return Ok(true);
            }
            if row.try_get::<i64, _>("candidates").map_err(db_err)? == 0 {
                return Ok(false);
            }
            // Another caller took the free slot we picked in the same instant: pick again.
        }
        Ok(false)
    }

    async fn release_slot(&self, key: &BucketKey, holder: uuid::Uuid) -> StoreResult<()> {
        sqlx::query(
            "UPDATE rate_slot SET holder = NULL, lease_until = NULL
             WHERE provider = $1 AND key = $2 AND bucket = $3 AND holder = $4",
        )
        .bind(key.provider.as_str())
        .bind(&key.key)
        .bind(&key.bucket)
        .bind(holder)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn breaker(&self, key: &str) -> StoreResult<Option<Breaker>> {
        let row = sqlx::query("SELECT * FROM circuit_breaker WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(rows::breaker).transpose()
    }

    async fn breaker_failure(&self, key: &str, policy: BreakerPolicy, now: DateTime<Utc>) -> StoreResult<Breaker> {
        let row = sqlx::query(FAILURE)
            .bind(key)
            .bind(policy.failure_threshold)
            .bind(policy.base_cooldown_ms)
            .bind(policy.max_cooldown_ms.max(policy.base_cooldown_ms))
            .bind(us(now))
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        rows::breaker(&row)
    }

    async fn breaker_try_probe(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        // The row lock lets exactly one of racing callers see `open` and flip it.
        let done = sqlx::query(
            "UPDATE circuit_breaker SET state = 'half_open', updated_at = $2
             WHERE key = $1 AND state = 'open' AND next_probe_at <= $2",
        )
        .bind(key)
        .bind(us(now))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn breaker_success(&self, key: &str, now: DateTime<Utc>) -> StoreResult<()> {
        // Every successful call lands here: a healthy breaker must cost no write.
        sqlx::query(
            "UPDATE circuit_breaker SET state = 'closed', consecutive_failures = 0, opened_at = NULL,
                 next_probe_at = NULL, cooldown_ms = 0, updated_at = $2
             WHERE key = $1 AND (state <> 'closed' OR consecutive_failures > 0)",
        )
        .bind(key)
        .bind(us(now))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }
}

/// Microseconds since the epoch as a time.
fn micros(us: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt("a bucket time is out of range".into()))
}
