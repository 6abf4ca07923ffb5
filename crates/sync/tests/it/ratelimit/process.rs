//! Worker processes for the "two workers on one Postgres" scenario. The scenario re-runs its own
//! test binary ([`std::env::current_exe`]) as `--exact ratelimit::postgres_fleet::worker_process
//! --nocapture` with [`CHILD_ENV`] set to a [`ChildSpec`] (its lease owner name, the Postgres
//! schema URL, where the fakes listen and the vault's key ring). That test builds the same
//! instance ([`Instance::over`]) and runs the same worker loop and sync handlers as the
//! in-process scenarios, until its stdin closes: the scenario closes it once the backlog is done,
//! and the pipe closes by itself if the scenario's process dies, so a worker never outlives it.
//! Without [`CHILD_ENV`] the test returns at once, so ordinary runs are unaffected.
//!
//! A worker process prints one [`REPORT`] line when it is ready (with its pid), one per job it
//! ran and one when it stopped; the scenario reads them from the pipe. The fakes stay in the
//! scenario's process and do the measuring.

use super::{scaled, Running};
use crate::support::{vault_over, Endpoints, Instance};
use patchbay_store_postgres::{PgOptions, PgStore};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Names the worker a process is to run; absent in every ordinary test run.
const CHILD_ENV: &str = "PATCHBAY_TEST_RATELIMIT_WORKER";
/// The test a worker process runs (its path in this binary, as libtest names it).
const CHILD_TEST: &str = "ratelimit::postgres_fleet::worker_process";
/// Starts every line a worker process reports on its stdout.
pub const REPORT: &str = "ratelimit-worker:";
/// Jobs one worker process runs at once: two each, so the scenario's four runs start spread over
/// both processes and both draw on the budget at the same time.
const CONCURRENCY: usize = 2;
/// How long a worker process may take to start, and to stop once told to.
const START_WAIT: Duration = Duration::from_secs(30);
const STOP_WAIT: Duration = Duration::from_secs(30);

/// What a worker process needs to know, passed as JSON in [`CHILD_ENV`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChildSpec {
    pub owner: String,
    /// The Postgres URL of the scenario's schema (already migrated).
    pub store: String,
    pub endpoints: Endpoints,
    /// The vault's key ring (`PATCHBAY_VAULT_KEYS` format), to open the seeded credentials.
    pub vault: String,
}

/// The body of the `worker_process` test: a no-op unless started by [`WorkerProcess::spawn`].
pub async fn worker_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let spec: ChildSpec = serde_json::from_str(&spec).expect("the worker spec in the environment");
    let store = PgStore::connect(&spec.store, PgOptions::default()).await.expect("a pool to the test Postgres");
    let mut deps = Instance::over(Arc::new(store), &spec.endpoints, vault_over(&spec.vault)).deps;
    let mut settings = (*deps.settings).clone();
    scaled(&mut settings);
    deps.settings = Arc::new(settings);
    let worker = Running::with(&deps, &spec.owner, CONCURRENCY, Some(spec.owner.clone()));
    println!("{REPORT} {} ready pid {}", spec.owner, std::process::id());
    // Run until stdin closes: the scenario is done with us, or it died.
    let drained = tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()));
    let _ = drained.await.expect("the stdin reader ends");
    let ran = worker.stop().await;
    println!("{REPORT} {} stopped after {ran} jobs", spec.owner);
}

/// A worker process the scenario started; killed (and reaped) when dropped, on every path.
pub struct WorkerProcess {
    owner: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    reports: Vec<String>,
}

impl WorkerProcess {
    pub fn spawn(spec: &ChildSpec) -> WorkerProcess {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, serde_json::to_string(spec).expect("the spec serialises"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a worker process");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("a piped stdout");
        let (send, lines) = mpsc::channel();
        // Ends when the process's stdout closes (it exited or was killed).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest may print the test's name on the same line, before the first report.
                if let Some(at) = line.find(REPORT) {
                    if send.send(line[at..].to_owned()).is_err() {
                        return;
                    }
                }
            }
        });
        WorkerProcess { owner: spec.owner.clone(), child, stdin, lines, reports: Vec::new() }
    }

    /// Waits until the worker loop runs; returns the process id it reported.
    pub async fn until_ready(&mut self) -> u32 {
        let started = Instant::now();
        loop {
            self.drain();
            let prefix = format!("{REPORT} {} ready pid ", self.owner);
            if let Some(pid) = self.reports.iter().find_map(|r| r.strip_prefix(&prefix)) {
                return pid.parse().expect("a pid");
            }
            self.assert_running();
            assert!(started.elapsed() < START_WAIT, "worker process {} not ready in {START_WAIT:?}", self.owner);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Panics if the process already ended (it must run until told to stop).
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("poll the worker process") {
            self.drain();
            panic!("worker process {} ended early ({status}); it reported {:?}", self.owner, self.reports);
        }
    }

    /// Tells the process to stop (closes its stdin), waits for a clean exit and returns the jobs
    /// it reported running.
    pub async fn finish(&mut self) -> usize {
        drop(self.stdin.take());
        let status = self.exit().await;
        self.drain();
        assert!(status.success(), "worker process {} exited with {status}: {:?}", self.owner, self.reports);
        let ran = self.reports.iter().filter(|r| r.contains(" ran ")).count();
        let stopped = format!("{REPORT} {} stopped after {ran} jobs", self.owner);
        assert!(self.reports.contains(&stopped), "job reports and the final count agree: {:?}", self.reports);
        ran
    }

    async fn exit(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the worker process") {
                return status;
            }
            assert!(started.elapsed() < STOP_WAIT, "worker process {} did not stop in {STOP_WAIT:?}", self.owner);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Collects what the process reported so far. After it exited, everything it wrote: the
    /// reader thread sends every line before its channel closes.
    fn drain(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            self.reports.extend(self.lines.iter());
        } else {
            self.reports.extend(self.lines.try_iter());
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
