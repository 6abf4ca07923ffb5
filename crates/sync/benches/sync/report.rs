//! The results and their Markdown report, targets beside the numbers.

use crate::{Options, StoreKind};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Events/s a SQLite sync must reach.
pub const TARGET_SQLITE_PER_SECOND: f64 = 20_000.0;
/// The share of Postgres's `COPY` rate a Postgres sync must reach.
pub const TARGET_COPY_RATIO: f64 = 0.5;

/// What one store's run measured.
pub struct StoreResult {
    pub store: StoreKind,
    pub events: usize,
    pub error: Option<String>,
    /// Loading the fake (N inserts under one lock).
    pub fake_load: Option<Duration>,
    /// Average sealed JSON per event, bytes.
    pub sealed_bytes: Option<usize>,
    pub copy: Option<CopyMeasured>,
    pub sync: Option<SyncMeasured>,
}

impl StoreResult {
    pub fn new(store: StoreKind, events: usize) -> Self {
        StoreResult { store, events, error: None, fake_load: None, sealed_bytes: None, copy: None, sync: None }
    }
}

/// The timed sync.
pub struct SyncMeasured {
    pub wall: Duration,
    pub api_calls: i64,
    pub upserted: i64,
    pub stored: usize,
    pub rss_before_kb: Option<u64>,
    pub rss_peak_kb: Option<u64>,
    pub hwm_kb: Option<u64>,
}

/// The timed `COPY`.
pub struct CopyMeasured {
    pub wall: Duration,
    pub rows: usize,
    pub bytes: usize,
    /// How the target table was shaped.
    pub shape: &'static str,
}

fn rate(count: usize, wall: Duration) -> f64 {
    count as f64 / wall.as_secs_f64().max(1e-9)
}

fn mb(kb: Option<u64>) -> String {
    kb.map_or("—".into(), |kb| format!("{:.1} MB", kb as f64 * 1024.0 / 1e6))
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "✓"
    } else {
        "✗ missed"
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The Markdown report.
pub fn render(options: &Options, results: &[StoreResult], load_before: &str, load_after: &str) -> String {
    let now = chrono::Local::now();
    let mut out = String::new();
    let kind = if options.smoke { " (smoke)" } else { "" };
    let _ = writeln!(out, "## Sync benchmark{kind}, {}", now.format("%Y-%m-%d %H:%M %Z"));
    let _ = writeln!(out);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let profile = if cfg!(debug_assertions) { "debug build" } else { "optimised build (bench profile)" };
    let _ = writeln!(
        out,
        "{cores} cores, load average {load_before} before / {load_after} after, {profile}{}. One process: the \
         engine, the store client and the fake Google (no added latency) share the cores; one calendar of {} \
         events, pages of {}.",
        git_revision().map(|r| format!(", commit {r}")).unwrap_or_default(),
        thousands(options.events),
        crate::run::PAGE_SIZE,
    );
    for r in results {
        let _ = writeln!(out);
        let _ = writeln!(out, "### {}", r.store.name());
        let _ = writeln!(out);
        let _ = writeln!(out, "| metric | measured | target | |");
        let _ = writeln!(out, "|---|---|---|---|");
        let copy_rate = r.copy.as_ref().map(|c| rate(c.rows, c.wall));
        if let Some(s) = &r.sync {
            let sync_rate = rate(s.stored, s.wall);
            let (target, check) = match (r.store, copy_rate) {
                (StoreKind::Sqlite, _) => (
                    format!("≥ {}/s", thousands(TARGET_SQLITE_PER_SECOND as usize)),
                    mark(sync_rate >= TARGET_SQLITE_PER_SECOND),
                ),
                (StoreKind::Postgres, Some(c)) => (
                    format!("≥ {TARGET_COPY_RATIO} × COPY = {:.0}/s", c * TARGET_COPY_RATIO),
                    mark(sync_rate >= c * TARGET_COPY_RATIO),
                ),
                (StoreKind::Postgres, None) => ("≥ 0.5 × COPY (not measured)".into(), ""),
            };
            let _ = writeln!(
                out,
                "| events synced/s ({} events in {:.2} s) | {sync_rate:.0} | {target} | {check} |",
                thousands(s.stored),
                s.wall.as_secs_f64()
            );
            let _ = writeln!(
                out,
                "| provider calls; records upserted; live events stored | {}; {}; {} | ; ; all {} | {} |",
                s.api_calls,
                s.upserted,
                thousands(s.stored),
                thousands(r.events),
                mark(s.stored == r.events)
            );
            let _ = writeln!(
                out,
                "| RSS of this process: before the sync / peak during (VmRSS every 5 ms) / VmHWM | {} / {} / {} | | |",
                mb(s.rss_before_kb),
                mb(s.rss_peak_kb),
                mb(s.hwm_kb)
            );
        }
        if let Some(c) = &r.copy {
            let copy_rate = rate(c.rows, c.wall);
            let _ = writeln!(
                out,
                "| Postgres COPY rows/s ({} rows, {:.1} MB of COPY text, in {:.2} s; table {}) | {copy_rate:.0} | | |",
                thousands(c.rows),
                c.bytes as f64 / 1e6,
                c.wall.as_secs_f64(),
                c.shape
            );
            if let Some(s) = &r.sync {
                let ratio = rate(s.stored, s.wall) / copy_rate;
                let _ = writeln!(
                    out,
                    "| sync ÷ COPY | {ratio:.2} | ≥ {TARGET_COPY_RATIO} | {} |",
                    mark(ratio >= TARGET_COPY_RATIO)
                );
            }
        }
        if let Some(bytes) = r.sealed_bytes {
            let _ = writeln!(out, "| sealed JSON per event (average) | {bytes} bytes | | |");
        }
        if let Some(load) = r.fake_load {
            let _ = writeln!(
                out,
                "| setup: {} events into the fake | {:.2} s | | |",
                thousands(r.events),
                load.as_secs_f64()
            );
        }
        if let Some(error) = &r.error {
            let _ = writeln!(out);
            let _ = writeln!(out, "**Did not work:** {error}");
        }
    }
    out
}

fn git_revision() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn repo_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.ancestors().nth(2).unwrap_or(crate_dir).to_path_buf()
}

pub fn default_out(smoke: bool) -> PathBuf {
    let date = chrono::Local::now().format("%Y-%m-%d");
    let suffix = if smoke { "-smoke" } else { "" };
    repo_root().join("bench/out").join(format!("sync-{date}{suffix}.md"))
}

pub fn append(path: &Path, report: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(file, "{report}")
}
