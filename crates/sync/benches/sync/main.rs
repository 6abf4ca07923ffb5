//! The Sync benchmark: a full Google Calendar sync of one calendar of 100,000 events from a
//! zero-latency fake Google, through the real engine (`patchbay_sync::google::run`) into a real
//! store, beside a Postgres `COPY` of the same rows in the same run. Run it with
//!
//! ```text
//! cargo bench -p patchbay-sync --bench sync -- [--smoke] [--events N] [--store sqlite|postgres|both]
//! ```
//!
//! (or `bench/run.sh --sync`); `--help` says what it measures. Targets (the issue's): events
//! synced/s ≥ 0.5 × the `COPY` rate on Postgres, ≥ 20,000/s on SQLite. Missing a target is
//! reported, not fatal: the exit status is non-zero only when something did not work (the engine
//! failed or is not there yet, a wrong record count, a store that could not be opened).

#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;
mod copy;
mod report;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
Usage: cargo bench -p patchbay-sync --bench sync -- [OPTIONS]

A full sync of one Google calendar of N events from the fake Google (in this process, no added
latency), through patchbay_sync::google::run (Scope::Everything, pages of 2,500, the job lease
held as the worker holds it) into a fresh store: events synced/s from the first provider call to
the last page's commit, provider calls, records stored (must be N), and this process's resident
memory (VmRSS sampled every 5 ms during the sync, and VmHWM; the fake's N events live in the same
process). On Postgres, the same N rows (ids, tenant, connection, provider id, parent, keyed hash,
sealed JSON of the same size, times) are then loaded with COPY ... FROM STDIN (binary-free text
format, buffer prepared beforehand) into a fresh table shaped like google_event, with its indexes:
rows/s, and the sync ÷ COPY ratio.
Targets: sync >= 0.5 x COPY on Postgres; sync >= 20,000 events/s on SQLite.

Options:
  --smoke        N=5,000, SQLite only (what CI runs, from the test profile)
  --events N     events in the calendar (default 100000)
  --store S      sqlite, postgres or both (default both)
  --out FILE     append the results here (default bench/out/sync-<date>[-smoke].md)
  -h, --help     this text

Postgres: the server PATCHBAY_BENCH_DATABASE_URL names, else postgres://postgres@127.0.0.1:5432;
a database patchbay_bench_sync is created there (dropped first if an earlier run left it) and
dropped at the end. SQLite: a fresh file in a temporary directory.
Exit status: 0 when everything worked (targets missed or not), 1 when something did not work,
2 for bad arguments.";

/// Which store a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "SQLite",
            StoreKind::Postgres => "Postgres",
        }
    }
}

/// The command line.
#[derive(Debug)]
pub struct Options {
    pub smoke: bool,
    pub events: usize,
    pub stores: Vec<StoreKind>,
    pub out: Option<PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut smoke = false;
    let mut events = None;
    let mut stores = None;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--smoke" => smoke = true,
            "--events" => {
                let value = args.next().ok_or("--events needs a number")?;
                events = Some(match value.replace(['_', ','], "").parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("--events must be a positive whole number, not '{value}'")),
                });
            }
            "--store" => {
                stores = Some(match args.next().as_deref() {
                    Some("sqlite") => vec![StoreKind::Sqlite],
                    Some("postgres") => vec![StoreKind::Postgres],
                    Some("both") => vec![StoreKind::Sqlite, StoreKind::Postgres],
                    other => return Err(format!("--store must be sqlite, postgres or both, not {other:?}")),
                })
            }
            "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a file")?)),
            other => return Err(format!("unknown argument '{other}' (see --help)")),
        }
    }
    let default_stores = if smoke { vec![StoreKind::Sqlite] } else { vec![StoreKind::Sqlite, StoreKind::Postgres] };
    Ok(Options {
        smoke,
        events: events.unwrap_or(if smoke { 5_000 } else { 100_000 }),
        stores: stores.unwrap_or(default_stores),
        out,
    })
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let load_before = report::load_average();
    let mut results = Vec::new();
    let mut failed = false;
    for &store in &options.stores {
        say(&format!("{}: a full sync of {} events", store.name(), report::thousands(options.events)));
        let result = runtime.block_on(run::run(store, options.events));
        if let Some(error) = &result.error {
            eprintln!("==> ERROR: {}: {error}", store.name());
            failed = true;
        }
        results.push(result);
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    let text = report::render(&options, &results, &load_before, &report::load_average());
    println!("{text}");
    let out = options.out.clone().unwrap_or_else(|| report::default_out(options.smoke));
    match report::append(&out, &text) {
        Ok(()) => say(&format!("appended to {}", out.display())),
        Err(e) => {
            eprintln!("==> ERROR: could not write {}: {e}", out.display());
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A progress line on stderr.
pub fn say(message: &str) {
    eprintln!("==> {message}");
}
