//! Table statistics for freshly synced record tables. Postgres plans a query on a table it has
//! never analysed from guesses: a calendar synced a minute ago with 100,000 events is read by
//! sorting all of them for every page of 100 (~11 ms on Postgres vs 0.2 ms with statistics; the
//! events page fell to 39 req/s in the Sync benchmark) until autovacuum gets round to it. So the
//! store analyses a record table itself once enough rows have been written to it since its last
//! analysis here: in the background, one table at a time, at most once a minute per table.

use patchbay_store::RecordKind;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rows written to one table (inserted or changed) that make it worth analysing.
const ROWS: u64 = 5_000;
/// The least time between two analyses of one table by this process.
const SPACING: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Table {
    written: u64,
    last: Option<Instant>,
    running: bool,
}

/// Counts rows written per record table and analyses a table when [`ROWS`] have piled up.
#[derive(Clone, Default)]
pub(crate) struct Analyzer(Arc<Mutex<HashMap<RecordKind, Table>>>);

impl Analyzer {
    /// Notes `rows` written to `kind`'s table (after their commit), and starts `ANALYZE` on it
    /// in the background when due. Needs a Tokio runtime (every store call runs in one).
    pub(crate) fn written(&self, pool: &PgPool, kind: RecordKind, rows: u64) {
        if rows == 0 {
            return;
        }
        {
            let mut tables = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let table = tables.entry(kind).or_default();
            table.written += rows;
            let spaced = table.last.is_none_or(|last| last.elapsed() >= SPACING);
            if table.running || table.written < ROWS || !spaced {
                return;
            }
            table.running = true;
            table.written = 0;
            table.last = Some(Instant::now());
        }
        let (pool, this) = (pool.clone(), self.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            // The table name is the kind's own (a fixed identifier, never input).
            let result = sqlx::query(&format!("ANALYZE {}", kind.as_str())).execute(&pool).await;
            match result {
                Ok(_) => {
                    tracing::debug!(table = kind.as_str(), took_ms = started.elapsed().as_millis() as u64, "analysed")
                }
                Err(e) => {
                    tracing::warn!(table = kind.as_str(), error = %e, "ANALYZE failed; autovacuum will analyse it later")
                }
            }
            let mut tables = this.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            tables.entry(kind).or_default().running = false;
        });
    }
}
