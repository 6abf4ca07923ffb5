//! The real `patchbay` binary, for the suites that run it as an operator would.
//!
//! # How the binary is found
//!
//! `env!("CARGO_BIN_EXE_patchbay")` exists only inside `patchbay-api`, the package that defines
//! the binary, and a (dev-)dependency on `patchbay-api` builds its library, never its binary. So
//! [`path`] runs, once per test process,
//!
//! ```text
//! cargo build -p patchbay-api --bin patchbay --profile <the test's profile> --target-dir <the test's target dir>
//! ```
//!
//! with the `cargo` that is running the tests (`$CARGO`), against this workspace, and takes the
//! executable's path from cargo's own JSON messages. The profile and target directory are read
//! from where the test executable lives (`<target dir>/<debug|release|profile>/deps/<test>`).
//! This is the same command `scripts/test.sh` runs before the suites, so there it is a no-op
//! that takes well under a second; run on its own (`cargo nextest run -p patchbay-tests`,
//! `cargo test --workspace`) it builds or rebuilds the binary first, so a stale binary is never
//! the one tested. By the time tests run, `cargo test` and `cargo nextest run` have released the
//! build lock; concurrent test processes (nextest runs one per test) wait for each other on it.
//! The variables cargo sets for a test process (`CARGO_PKG_*`, `CARGO_MANIFEST_DIR`, …) are
//! removed from the build's environment: build scripts watch some of them, and passing them on
//! would make this build and the next plain `cargo build` rebuild each other's dependencies.
//!
//! `PATCHBAY_BIN=/path/to/patchbay` skips the build and tests that binary instead (a release
//! build, an installed package, a cross-compiled target).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `patchbay` binary to test: `$PATCHBAY_BIN`, or this workspace's, built if needed.
pub fn path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| match std::env::var_os("PATCHBAY_BIN") {
        Some(bin) => {
            let bin = PathBuf::from(bin);
            assert!(bin.is_file(), "PATCHBAY_BIN={} is not a file", bin.display());
            bin
        }
        None => build(),
    })
}

/// `cargo build -p patchbay-api --bin patchbay` for the test's own profile and target directory.
fn build() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace root");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(workspace)
        .args(["build", "-p", "patchbay-api", "--bin", "patchbay", "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .stdin(Stdio::null());
    // What cargo and nextest set for a test process describes this test, not the build: build
    // scripts watching those variables (ring's watches CARGO_PKG_NAME and CARGO_MANIFEST_DIR)
    // would see them change and rebuild, and the next plain `cargo build` would rebuild again.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let set_for_tests = key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_CFG_")
            || matches!(
                key,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "OUT_DIR"
            );
        if set_for_tests {
            command.env_remove(key);
        }
    }
    if let Some((target_dir, profile)) = test_build_dir() {
        command.arg("--profile").arg(profile).arg("--target-dir").arg(target_dir);
    }
    let shown = format!("{command:?}");
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        output.status.success(),
        "the patchbay binary does not build ({shown}, {}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "patchbay")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("{shown} reported no patchbay executable"))
}

/// Where the running test executable was built: `(<target dir>, <cargo profile>)`, read from
/// `<target dir>/<profile dir>/deps/<test>` (a cargo target directory holds `CACHEDIR.TAG`).
/// `None` when the executable lives elsewhere (an archive, a cross-compiled target): then cargo's
/// defaults apply.
fn test_build_dir() -> Option<(PathBuf, String)> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    let profile_dir = deps.parent()?;
    let target_dir = profile_dir.parent()?;
    if !target_dir.join("CACHEDIR.TAG").is_file() {
        return None;
    }
    let profile = match profile_dir.file_name()?.to_str()? {
        "debug" => "dev".to_string(),
        other => other.to_string(),
    };
    Some((target_dir.to_path_buf(), profile))
}

/// `patchbay` run in `dir` with an empty environment (so nothing from the developer's shell
/// leaks in) except `PATCHBAY_LOG=warn`, and no stdin.
pub fn command(dir: &Path) -> Command {
    let mut command = Command::new(path());
    command.env_clear().current_dir(dir).env("PATCHBAY_LOG", "warn").stdin(Stdio::null());
    command
}

/// A `patchbay serve` child process on free ports; dropping it kills a server still running.
#[derive(Debug)]
pub struct Served {
    child: Child,
    /// The public listener's port.
    pub port: u16,
}

impl Served {
    /// Starts `command` (see [`command`]) as `serve` on a free public port and a free metrics port,
    /// stdout and stderr captured.
    pub fn start(mut command: Command) -> Self {
        let (port, metrics) = (patchbay_testkit::app::free_port(), patchbay_testkit::app::free_port());
        command
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--metrics-listen",
                &format!("127.0.0.1:{metrics}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Self { child: command.spawn().expect("patchbay starts"), port }
    }

    /// Polls `/readyz` until it answers 200; panics (with the server's stderr) when the server
    /// exits first or is not ready within 20 s.
    pub async fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{}/readyz", self.port)).await {
                if response.status() == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                let output = self.stderr();
                panic!("patchbay exited early ({status}): {output}");
            }
            assert!(started.elapsed() < Duration::from_secs(20), "patchbay became ready within 20 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL (a crash: no drain, no lease given back), then wait for the exit.
    pub fn kill(mut self) {
        self.child.kill().expect("the server can be killed");
        self.child.wait().expect("the killed server is reaped");
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.stop()
    }

    /// SIGTERM, wait for the exit, and return everything written to stdout and stderr.
    pub fn terminate_with_output(mut self) -> (ExitStatus, String) {
        let status = self.stop();
        let mut out = Vec::new();
        use std::io::Read;
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout.read_to_end(&mut out).unwrap();
        }
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_end(&mut out).unwrap();
        }
        (status, String::from_utf8_lossy(&out).into_owned())
    }

    fn stop(&mut self) -> ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "patchbay exits within 15 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the (exited) server wrote to stderr.
    fn stderr(&mut self) -> String {
        let mut out = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            use std::io::Read;
            let _ = stderr.read_to_string(&mut out);
        }
        out
    }
}

impl Drop for Served {
    /// A test that fails midway must not leave a server running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
