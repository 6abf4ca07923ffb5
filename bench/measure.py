#!/usr/bin/env python3
"""Measure a built `patchbay` binary: start-to-ready, RSS, and wrk throughput/latency.

Normally run through bench/run.sh, which builds the binary, installs wrk and prepares the Postgres
database first. Standard library only. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import os
import platform
import re
import secrets
import shutil
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.002
WRK_THREADS = 2
WRK_CONNECTIONS = 32
IDLE_SETTLE_S = 1.0

TARGET_ME_RATIO = 0.5
TARGET_RSS_IDLE_MB = 20.0
TARGET_READY_MS_SQLITE = 150.0

# Variables that must not leak from the caller's shell into a measured server.
SCRUBBED_PREFIXES = ("PATCHBAY_",)
SCRUBBED_NAMES = {"DATABASE_URL", "PORT", "RUST_LOG"}

RATE_LIMIT_SCOPES = ("V1", "PUBLIC", "PRINCIPAL", "CONNECT", "WEBHOOKS")

ENDPOINTS = [("healthz", "/healthz", False), ("readyz", "/readyz", False), ("me", "/v1/me", True)]


def log(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """Something did not work (as opposed to a target that was missed)."""


@dataclass
class WrkResult:
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    non_2xx: int = 0
    socket_errors: dict = field(default_factory=dict)


@dataclass
class StoreResult:
    store: str
    error: str | None = None
    first_ready_ms: float | None = None
    ready_ms: list = field(default_factory=list)
    stop_ms: list = field(default_factory=list)
    rss_idle_kb: int | None = None
    rss_loaded_kb: int | None = None
    wrk: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not (k.startswith(SCRUBBED_PREFIXES) or k in SCRUBBED_NAMES)}
    env.update(
        {
            "PATCHBAY_ENV": "development",
            "PATCHBAY_LOG": "warn",
        }
    )
    # Raise the request limits so the limiter does not cap the benchmark (every limiter, so that
    # /v1/me is not held to one principal's share either).
    for scope in RATE_LIMIT_SCOPES:
        env[f"PATCHBAY_RATE_LIMIT_{scope}_PER_SECOND"] = "1000000"
        env[f"PATCHBAY_RATE_LIMIT_{scope}_BURST"] = "1000000"
    return env


def tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in lines[-n:]) or "    (empty log)"


def vm_rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def http_get(port: int, path: str, headers: dict | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Server:
    """One `patchbay serve` process with its own ports, logging to a file in the data dir."""

    def __init__(self, binary: Path, env: dict, workdir: Path, label: str):
        self.port = free_port()
        self.metrics_port = free_port()
        while self.metrics_port == self.port:
            self.metrics_port = free_port()
        self.env = dict(env)
        self.env["PATCHBAY_LISTEN"] = f"127.0.0.1:{self.port}"
        self.env["PATCHBAY_METRICS_LISTEN"] = f"127.0.0.1:{self.metrics_port}"
        self.env["PATCHBAY_PUBLIC_URL"] = f"http://127.0.0.1:{self.port}"
        self.binary = binary
        self.workdir = workdir
        self.log_path = workdir / f"serve-{label}.log"
        self.proc: subprocess.Popen | None = None

    def start_and_wait_ready(self) -> float:
        """Spawn and poll GET /readyz until 200; return milliseconds from spawn to ready."""
        logf = open(self.log_path, "wb")
        t0 = time.perf_counter()
        # cwd is the private data dir, so no .env file of the caller is read.
        self.proc = subprocess.Popen(
            [str(self.binary), "serve"], env=self.env, cwd=self.workdir, stdin=subprocess.DEVNULL,
            stdout=logf, stderr=subprocess.STDOUT,
        )
        logf.close()
        deadline = t0 + READY_TIMEOUT_S
        last = "no answer"
        while True:
            try:
                status, _ = http_get(self.port, "/readyz", timeout=2.0)
                if status == 200:
                    return (time.perf_counter() - t0) * 1000.0
                last = f"/readyz answered {status}"
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                pass
            except OSError as e:
                last = str(e)
            if self.proc.poll() is not None:
                raise BenchError(
                    f"`patchbay serve` exited with status {self.proc.returncode} before /readyz was 200; "
                    f"its log ({self.log_path}):\n{tail(self.log_path)}"
                )
            if time.perf_counter() > deadline:
                self.kill()
                raise BenchError(
                    f"/readyz was not 200 within {READY_TIMEOUT_S:.0f} s ({last}); log ({self.log_path}):\n"
                    f"{tail(self.log_path)}"
                )
            time.sleep(POLL_INTERVAL_S)

    def stop(self) -> float | None:
        """SIGTERM and wait; return ms to exit, or None if it had to be killed."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log(f"`patchbay serve` did not exit {STOP_TIMEOUT_S:.0f} s after SIGTERM; killing it")
            self.kill()
            return None
        return (time.perf_counter() - t0) * 1000.0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.02):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.max_kb = 0
        self._stop_evt = threading.Event()

    def run(self) -> None:
        while not self._stop_evt.is_set():
            kb = vm_rss_kb(self.pid)
            if kb is not None:
                self.max_kb = max(self.max_kb, kb)
            self._stop_evt.wait(self.interval)

    def stop(self) -> int:
        self._stop_evt.set()
        self.join()
        return self.max_kb


# ------------------------------------------------------------------------------------------------
# wrk

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_latency(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise BenchError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * UNIT_MS[m.group(2)]


def parse_wrk(out: str) -> WrkResult:
    r = WrkResult()
    m = re.search(r"^\s*(\d+) requests in", out, re.M)
    r.requests = int(m.group(1)) if m else 0
    m = re.search(r"^Requests/sec:\s*([\d.]+)", out, re.M)
    r.rps = float(m.group(1)) if m else 0.0
    for pct, attr in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s*{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        if m:
            setattr(r, attr, parse_latency(m.group(1)))
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    r.non_2xx = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r.socket_errors = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    return r


def run_wrk(port: int, path: str, duration_s: int, token: str | None) -> WrkResult:
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{duration_s}s", "--latency"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    shown = shlex.join(cmd).replace(token, "<jwt>") if token else shlex.join(cmd)
    log(f"  {shown}")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
    if p.returncode != 0:
        raise BenchError(f"wrk failed (exit {p.returncode}): {p.stderr.strip() or p.stdout.strip()}")
    r = parse_wrk(p.stdout)
    if r.requests == 0:
        raise BenchError(f"wrk completed no request against {path}:\n{p.stdout}")
    return r


# ------------------------------------------------------------------------------------------------
# one store


def dev_token(binary: Path, env: dict, workdir: Path) -> str:
    p = subprocess.run(
        [str(binary), "dev-token", "--user", "bench-user"], env=env, cwd=workdir, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60,
    )
    lines = [line.strip() for line in p.stdout.splitlines() if line.strip()]
    if p.returncode != 0 or not lines:
        raise BenchError(
            f"`patchbay dev-token --user bench-user` failed (exit {p.returncode}): "
            f"{(p.stderr.strip() or p.stdout.strip() or 'no output')[-800:]}"
        )
    return lines[-1]


def bench_store(store: str, binary: Path, pg_url: str | None, duration: int, starts: int) -> StoreResult:
    res = StoreResult(store)
    workdir = Path(tempfile.mkdtemp(prefix=f"patchbay-bench-{store}-"))
    env = base_env()
    env["PATCHBAY_DATA_DIR"] = str(workdir)
    if store == "postgres":
        env["PATCHBAY_DATABASE_URL"] = pg_url
        # Development secrets are generated only on SQLite; Postgres needs explicit ones.
        env["PATCHBAY_AUTH_JWT_SECRET"] = secrets.token_urlsafe(48)
        env["PATCHBAY_VAULT_KEYS"] = "1:" + base64.b64encode(os.urandom(32)).decode()
    ok = False
    try:
        log(f"[{store}] start-to-ready: 1 first start + {starts} more (data dir {workdir})")
        for i in range(starts + 1):
            srv = Server(binary, env, workdir, f"start{i}")
            try:
                ms = srv.start_and_wait_ready()
            finally:
                stop_ms = srv.stop()
            if i == 0:
                res.first_ready_ms = ms
            else:
                res.ready_ms.append(ms)
            if stop_ms is not None:
                res.stop_ms.append(stop_ms)
            log(f"  start {i + 1}: ready in {ms:.1f} ms" + (f", stopped in {stop_ms:.0f} ms" if stop_ms else ""))

        log(f"[{store}] dev-token")
        token = dev_token(binary, env, workdir)

        srv = Server(binary, env, workdir, "load")
        try:
            srv.start_and_wait_ready()
            time.sleep(IDLE_SETTLE_S)
            res.rss_idle_kb = vm_rss_kb(srv.proc.pid)
            auth = {"Authorization": f"Bearer {token}"}
            for name, path, needs_auth in ENDPOINTS:
                status, body = http_get(srv.port, path, auth if needs_auth else None)
                if status != 200:
                    raise BenchError(
                        f"GET {path} answered {status} before the load run: {body[:300]!r}"
                        + (" (is the dev-token accepted by the server?)" if needs_auth else "")
                    )
            log(f"[{store}] wrk, {duration} s per endpoint, {WRK_CONNECTIONS} connections")
            sampler = RssSampler(srv.proc.pid)
            sampler.start()
            try:
                for name, path, needs_auth in ENDPOINTS:
                    r = run_wrk(srv.port, path, duration, token if needs_auth else None)
                    res.wrk[name] = r
                    if srv.proc.poll() is not None:
                        raise BenchError(f"`patchbay serve` died during the load run; log:\n{tail(srv.log_path)}")
                    if r.non_2xx:
                        raise BenchError(
                            f"GET {path}: {r.non_2xx} of {r.requests} answers were not 2xx under load "
                            "(rate limiter still on? check PATCHBAY_RATE_LIMIT_* names)"
                        )
                    if r.socket_errors.get("connect"):
                        raise BenchError(f"GET {path}: {r.socket_errors['connect']} connect errors under load")
            finally:
                res.rss_loaded_kb = sampler.stop()
        finally:
            srv.stop()
        ok = True
    except BenchError as e:
        res.error = str(e)
        log(f"[{store}] FAILED: {e}")
    finally:
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"[{store}] logs kept in {workdir}")
    return res


# ------------------------------------------------------------------------------------------------
# report


def cmd_out(cmd: list) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (p.stdout.strip() or p.stderr.strip()).splitlines()[0] if p.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return ""


def machine_lines(binary: Path, pg_url: str | None) -> list:
    cpu = "unknown"
    mem = "unknown"
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m.group(1).strip() if m else cpu
        m = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        mem = f"{int(m.group(1)) / 1024 / 1024:.1f} GiB" if m else mem
    except OSError:
        pass
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    commit = cmd_out(["git", "rev-parse", "--short", "HEAD"]) or "no commit"
    dirty = " (uncommitted changes)" if cmd_out(["git", "status", "--porcelain"]) else ""
    lines = [
        f"- machine: {os.cpu_count()} CPUs (`nproc` {cmd_out(['nproc']) or '?'}), {cpu}, {mem} RAM; "
        f"{platform.system()} {platform.release()}",
        f"- load average at start: {' '.join(load)}; wrk runs on the same cores as the server",
        f"- binary: `{binary}` ({binary.stat().st_size / 1e6:.1f} MB), {cmd_out(['rustc', '--version'])}, "
        f"commit {commit}{dirty}",
        f"- load generator: {cmd_out(['wrk', '--version']) or 'wrk'} "
        f"(`-t{WRK_THREADS} -c{WRK_CONNECTIONS} --latency`)",
    ]
    if pg_url:
        v = cmd_out(["psql", pg_url, "-X", "-t", "-A", "-c", "show server_version"])
        lines.append(f"- Postgres: {v or 'version unknown'} at {re.sub(r'//[^@/]*@', '//', pg_url)}")
    return lines


def fmt_ms(v: float | None) -> str:
    return "—" if v is None else (f"{v:.0f} ms" if v >= 100 else f"{v:.1f} ms")


def fmt_mb(kb: int | None) -> str:
    return "—" if kb is None else f"{kb * 1024 / 1e6:.1f} MB"


def verdict(ok: bool) -> str:
    return "✓" if ok else "✗ missed"


def render(results: list, meta: list, duration: int, smoke: bool) -> str:
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    out = [f"# Patchbay benchmark{' (smoke)' if smoke else ''} — {now}", ""]
    out += meta
    out += [f"- {duration} s per endpoint; start-to-ready = spawn → first `GET /readyz` 200, polled every 2 ms", ""]
    heads = [r.store for r in results]
    out.append("| metric | " + " | ".join(heads) + " | target |")
    out.append("|---|" + "---|" * len(heads) + "---|")

    def row(metric: str, cells: list, target: str = "") -> None:
        out.append(f"| {metric} | " + " | ".join(cells) + f" | {target} |")

    def med(xs: list) -> float | None:
        return statistics.median(xs) if xs else None

    def cell_ready(r: StoreResult) -> str:
        v = med(r.ready_ms)
        if v is None:
            return "—"
        s = f"{fmt_ms(v)} (n={len(r.ready_ms)}, {fmt_ms(min(r.ready_ms))}–{fmt_ms(max(r.ready_ms))})"
        return s + (f" {verdict(v <= TARGET_READY_MS_SQLITE)}" if r.store == "sqlite" else "")

    row("start-to-ready, first start (empty data dir)", [fmt_ms(r.first_ready_ms) for r in results],
        "— (Postgres: migrations run only when the database is new)" if "postgres" in heads else "")
    row("start-to-ready, later starts (median)", [cell_ready(r) for r in results],
        f"≤ {TARGET_READY_MS_SQLITE:.0f} ms on SQLite")
    row("stop (SIGTERM → exit), median", [fmt_ms(med(r.stop_ms)) for r in results])
    row("RSS idle (~1 s after ready)",
        [fmt_mb(r.rss_idle_kb) + ("" if r.rss_idle_kb is None else
                                  f" {verdict(r.rss_idle_kb * 1024 / 1e6 <= TARGET_RSS_IDLE_MB)}") for r in results],
        f"≤ {TARGET_RSS_IDLE_MB:.0f} MB")
    row("RSS loaded (max during wrk)", [fmt_mb(r.rss_loaded_kb) for r in results])
    for name, path, _ in ENDPOINTS:
        row(f"`GET {path}` requests/s", [f"{r.wrk[name].rps:,.0f}" if name in r.wrk else "—" for r in results])
        row(f"`GET {path}` p50 / p99",
            [f"{fmt_ms(r.wrk[name].p50_ms)} / {fmt_ms(r.wrk[name].p99_ms)}" if name in r.wrk else "—"
             for r in results])

    def ratio(r: StoreResult) -> str:
        if "me" not in r.wrk or "healthz" not in r.wrk or not r.wrk["healthz"].rps:
            return "—"
        x = r.wrk["me"].rps / r.wrk["healthz"].rps
        return f"{x:.2f} {verdict(x >= TARGET_ME_RATIO)}"

    row("`/v1/me` ÷ `/healthz` rate", [ratio(r) for r in results], f"≥ {TARGET_ME_RATIO}")

    def errs(r: StoreResult) -> str:
        if not r.wrk:
            return "—"
        non2xx = sum(w.non_2xx for w in r.wrk.values())
        sock = sum(sum(w.socket_errors.values()) for w in r.wrk.values())
        return f"{non2xx} / {sock}"

    row("non-2xx / socket errors under load", [errs(r) for r in results], "0 / 0")
    failures = [r for r in results if r.error]
    if failures:
        out += ["", "**Not everything ran:**", ""]
        for r in failures:
            first = r.error.splitlines()[0]
            out.append(f"- {r.store}: {first}")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", required=True, type=Path, help="the built patchbay binary")
    ap.add_argument("--stores", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    ap.add_argument("--pg-url", help="Postgres URL for the postgres store")
    ap.add_argument("--pg-error", help="why Postgres cannot be used (recorded as a failure)")
    ap.add_argument("--duration", type=int, default=10, help="seconds of wrk per endpoint")
    ap.add_argument("--starts", type=int, default=5, help="starts measured after the first one")
    ap.add_argument("--smoke", action="store_true", help="label the report as a smoke run")
    ap.add_argument("--out", type=Path, help="write the Markdown report here too")
    a = ap.parse_args()

    if not a.bin.is_file():
        print(f"ERROR: {a.bin} does not exist; build it (cargo build --release -p patchbay-api)", file=sys.stderr)
        return 1
    if not shutil.which("wrk"):
        print("ERROR: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1

    stores = [s.strip() for s in a.stores.split(",") if s.strip()]
    meta = machine_lines(a.bin.resolve(), a.pg_url if "postgres" in stores and not a.pg_error else None)
    results = []
    for store in stores:
        if store == "postgres" and (a.pg_error or not a.pg_url):
            results.append(StoreResult(store, error=a.pg_error or "no --pg-url given"))
            log(f"[postgres] not run: {a.pg_error or 'no --pg-url'}")
            continue
        results.append(bench_store(store, a.bin.resolve(), a.pg_url, a.duration, a.starts))

    report = render(results, meta, a.duration, a.smoke)
    print(report)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(report)
        log(f"report written to {a.out}")
    failed = [r.store for r in results if r.error]
    if failed:
        log(f"FAILED: {', '.join(failed)} did not complete (details above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
