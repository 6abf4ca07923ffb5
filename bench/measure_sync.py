#!/usr/bin/env python3
"""Measure Sync through a real `patchbay serve`: its resident memory idle and while its worker
syncs N events from the fake Google, and the read API (a page of 100 events at concurrency 32)
against /healthz on the same server.

The fake Google lives in Rust (crates/testkit), so a fixture process runs it:
crates/sync/examples/sync_bench_fixture.rs loads one calendar of N events, prints the fake's URLs
(the server gets them as PATCHBAY_GOOGLE_*), and, asked over stdin, seeds the server's database
with a Google connection for the user `GET /v1/me` names (consent at the fake, real code
exchange, token set sealed with the server's PATCHBAY_VAULT_KEYS): the connect flow itself needs a
browser, and the Connect benchmarks already measure it. Then `POST /v1/connections/{id}/sync`
starts the run through the API, and `GET /v1/sync-runs/{id}` is polled until it ends.

Normally run through bench/run.sh (--sync, and part of the default and --smoke runs), which
builds the release binary and the fixture first. Standard library only. All traffic goes to
127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from measure import (
    IDLE_SETTLE_S,
    WRK_CONNECTIONS,
    BenchError,
    RssSampler,
    Server,
    base_env,
    dev_token,
    fmt_mb,
    fmt_ms,
    log,
    machine_lines,
    run_wrk,
    tail,
    verdict,
    vm_rss_kb,
)

TARGET_READ_RATIO = 0.25
TARGET_READ_P99_MS = 10.0
TARGET_RSS_IDLE_MB = 16.0
TARGET_RSS_SYNC_MB = 80.0
PAGE_LIMIT = 100
FIXTURE_START_TIMEOUT_S = 300.0
SYNC_TIMEOUT_S = 1200.0
FINAL = {"succeeded", "failed", "skipped"}
SERVE_DB = "patchbay_bench_serve_sync"


@dataclass
class SyncResult:
    store: str
    events: int
    error: str | None = None
    fixture_s: float | None = None
    rss_idle_kb: int | None = None
    rss_sync_kb: int | None = None
    rss_after_kb: int | None = None
    sync_s: float | None = None
    run: dict = field(default_factory=dict)
    fake_calls: int | None = None
    wrk: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# the fixture process


class Fixture:
    """The fake Google with N events, and the seeding of connections, in one child process."""

    def __init__(self, binary: Path, events: int, env: dict, workdir: Path):
        self.log_path = workdir / "fixture.log"
        logf = open(self.log_path, "wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(binary), "--events", str(events)], env=env, cwd=workdir, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=logf, text=True, bufsize=1,
        )
        logf.close()
        self.hello = self._answer("start", FIXTURE_START_TIMEOUT_S)
        self.start_s = time.perf_counter() - t0

    def _answer(self, what: str, timeout: float) -> dict:
        # The fixture answers every command with exactly one line; read it on a thread so that a
        # hung fixture fails the run instead of hanging it.
        got: list = []
        reader = threading.Thread(target=lambda: got.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if reader.is_alive():
            self.proc.kill()
            raise BenchError(f"the sync fixture did not answer within {timeout:.0f} s ({what}); log:\n{tail(self.log_path)}")
        if not got[0]:
            self.proc.wait(timeout=5)
            raise BenchError(f"the sync fixture exited ({self.proc.returncode}) during {what}; log:\n{tail(self.log_path)}")
        answer = json.loads(got[0])
        if "error" in answer:
            raise BenchError(f"the sync fixture could not {what}: {answer['error']}")
        return answer

    def ask(self, command: str, what: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._answer(what, 120.0)

    def stop(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------------------------------------------
# HTTP and Postgres helpers


def http_json(port: int, method: str, path: str, token: str | None = None, timeout: float = 30.0) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if method == "POST":
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=b"{}" if method == "POST" else None, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw[:200].decode(errors="replace")}
        return resp.status, body if isinstance(body, dict) else {"_list": body}
    finally:
        conn.close()


def psql(url: str, sql: str) -> None:
    p = subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "PGCONNECT_TIMEOUT": "5"})
    if p.returncode != 0:
        raise BenchError(f"psql: {(p.stderr.strip() or p.stdout.strip()).splitlines()[0]}")


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def run_id_of(body: dict) -> str | None:
    for candidate in (body, body.get("run") or {}, body.get("sync_run") or {}):
        if isinstance(candidate, dict) and isinstance(candidate.get("id"), str):
            return candidate["id"]
    return body.get("run_id")


def items_of(body: dict) -> list | None:
    for key in ("items", "data", "events", "_list"):
        if isinstance(body.get(key), list):
            return body[key]
    return None


# ------------------------------------------------------------------------------------------------
# one store


def bench_store(store: str, binary: Path, fixture_bin: Path, pg_url: str | None, events: int,
                duration: int, read_cache_bytes: int | None = None) -> SyncResult:
    res = SyncResult(store, events)
    workdir = Path(tempfile.mkdtemp(prefix=f"patchbay-bench-sync-{store}-"))
    env = base_env()
    env["PATCHBAY_DATA_DIR"] = str(workdir)
    if read_cache_bytes is not None:
        # The read API's page cache (0 disables it: every page is read and opened).
        env["PATCHBAY_READ_CACHE_BYTES"] = str(read_cache_bytes)
    # Explicit secrets on both stores: the fixture seals the connection's tokens with the same keys.
    env["PATCHBAY_AUTH_JWT_SECRET"] = secrets.token_urlsafe(48)
    env["PATCHBAY_VAULT_KEYS"] = "1:" + base64.b64encode(os.urandom(32)).decode()
    database_url = f"sqlite://{workdir / 'patchbay.db'}"
    maint_url = None
    fixture = srv = None
    ok = False
    try:
        if store == "postgres":
            maint_url = with_database(pg_url, "postgres")
            psql(maint_url, f"DROP DATABASE IF EXISTS {SERVE_DB} WITH (FORCE)")
            psql(maint_url, f"CREATE DATABASE {SERVE_DB}")
            database_url = with_database(pg_url, SERVE_DB)
            env["PATCHBAY_DATABASE_URL"] = database_url

        log(f"[{store}] sync fixture: the fake Google with {events:,} events ({fixture_bin.name})")
        fixture = Fixture(fixture_bin, events, {**env, "RUST_LOG": "warn"}, workdir)
        res.fixture_s = fixture.start_s
        h = fixture.hello
        env.update({
            "PATCHBAY_GOOGLE_CLIENT_ID": h["client_id"],
            "PATCHBAY_GOOGLE_CLIENT_SECRET": h["client_secret"],
            "PATCHBAY_GOOGLE_AUTH_URL": h["auth_url"],
            "PATCHBAY_GOOGLE_TOKEN_URL": h["token_url"],
            "PATCHBAY_GOOGLE_REVOKE_URL": h["revoke_url"],
            "PATCHBAY_GOOGLE_USERINFO_URL": h["userinfo_url"],
            "PATCHBAY_GOOGLE_API_URL": h["api_url"],
        })

        srv = Server(binary, env, workdir, "sync")
        srv.start_and_wait_ready()
        time.sleep(IDLE_SETTLE_S)
        res.rss_idle_kb = vm_rss_kb(srv.proc.pid)
        log(f"[{store}] RSS idle {fmt_mb(res.rss_idle_kb)}")

        token = dev_token(binary, env, workdir)
        status, me = http_json(srv.port, "GET", "/v1/me", token)
        if status != 200 or not me.get("tenant_id") or not me.get("user_id"):
            raise BenchError(f"GET /v1/me answered {status} without tenant_id and user_id")
        seeded = fixture.ask("seed " + json.dumps(
            {"database_url": database_url, "tenant_id": me["tenant_id"], "user_id": me["user_id"]}),
            "seed the connection")
        connection, calendar = seeded["connection_id"], seeded["calendar_id"]

        log(f"[{store}] POST /v1/connections/{{id}}/sync, then GET /v1/sync-runs/{{run}} until it ends")
        sampler = RssSampler(srv.proc.pid, interval=0.01)
        sampler.start()
        t0 = time.perf_counter()
        try:
            status, body = http_json(srv.port, "POST", f"/v1/connections/{connection}/sync", token)
            if status in (404, 405):
                raise BenchError(
                    f"the sync engine is not available: POST /v1/connections/{{id}}/sync answered {status} "
                    "(the runner branch wires the sync API and job handlers)")
            run_id = run_id_of(body)
            if status not in (200, 202) or not run_id:
                raise BenchError(f"POST /v1/connections/{{id}}/sync answered {status} without a run id: {body}")
            run = {}
            while True:
                status, run = http_json(srv.port, "GET", f"/v1/sync-runs/{run_id}", token)
                if status != 200:
                    raise BenchError(f"GET /v1/sync-runs/{{id}} answered {status}: {run}")
                if run.get("status") in FINAL:
                    break
                if srv.proc.poll() is not None:
                    raise BenchError(f"`patchbay serve` died during the sync; log:\n{tail(srv.log_path)}")
                if time.perf_counter() - t0 > SYNC_TIMEOUT_S:
                    raise BenchError(f"the sync run was still {run.get('status')!r} after {SYNC_TIMEOUT_S:.0f} s")
                time.sleep(0.05)
            res.sync_s = time.perf_counter() - t0
        finally:
            peak = sampler.stop() or None
        res.rss_sync_kb = peak
        res.run = run
        res.fake_calls = fixture.ask("stats", "count the fake's calls").get("api_calls")
        if run.get("status") != "succeeded":
            raise BenchError(f"the sync run ended {run.get('status')!r} ({run.get('error_code')})")
        log(f"[{store}] synced in {res.sync_s:.2f} s; RSS peak {fmt_mb(res.rss_sync_kb)}")

        path = f"/v1/connections/{connection}/google/calendars/{calendar}/events?limit={PAGE_LIMIT}"
        status, page = http_json(srv.port, "GET", path, token)
        items = items_of(page)
        if status != 200 or items is None:
            raise BenchError(f"GET …/google/calendars/{{calendar}}/events answered {status} (keys {sorted(page)})")
        if len(items) != min(PAGE_LIMIT, events):
            raise BenchError(f"a page of events held {len(items)} items, not {min(PAGE_LIMIT, events)}")
        log(f"[{store}] wrk, {duration} s each, {WRK_CONNECTIONS} connections: /healthz, then a page of events")
        for name, target, auth in (("healthz", "/healthz", None), ("events", path, token)):
            r = run_wrk(srv.port, target, duration, auth)
            res.wrk[name] = r
            if r.non_2xx or r.socket_errors.get("connect"):
                raise BenchError(f"GET {name}: {r.non_2xx} non-2xx answers, {r.socket_errors} socket errors under load")
        res.rss_after_kb = vm_rss_kb(srv.proc.pid)
        ok = True
    except BenchError as e:
        res.error = str(e)
        log(f"[{store}] FAILED: {e}")
    finally:
        if srv is not None:
            srv.stop()
        if fixture is not None:
            fixture.stop()
        if maint_url:
            try:
                psql(maint_url, f"DROP DATABASE IF EXISTS {SERVE_DB} WITH (FORCE)")
            except BenchError as e:
                log(f"[{store}] could not drop {SERVE_DB}: {e}")
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"[{store}] logs kept in {workdir}")
    return res


# ------------------------------------------------------------------------------------------------
# report


def render(results: list, meta: list, events: int, duration: int, smoke: bool) -> str:
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    out = [f"# Patchbay Sync through `patchbay serve`{' (smoke)' if smoke else ''} — {now}", ""]
    out += meta
    out += [f"- one calendar of {events:,} events at the fake Google (fixture process, no added latency); "
            f"{duration} s of wrk per endpoint; RSS sampled every 10 ms during the sync", ""]
    heads = [r.store for r in results]
    out.append("| metric | " + " | ".join(heads) + " | target |")
    out.append("|---|" + "---|" * len(heads) + "---|")

    def row(metric: str, cells: list, target: str = "") -> None:
        out.append(f"| {metric} | " + " | ".join(cells) + f" | {target} |")

    def mb_check(kb: int | None, limit: float) -> str:
        return fmt_mb(kb) + ("" if kb is None else f" {verdict(kb * 1024 / 1e6 <= limit)}")

    row("RSS idle (`serve` with its worker, ~1 s after ready)", [mb_check(r.rss_idle_kb, TARGET_RSS_IDLE_MB)
                                                                   for r in results], f"≤ {TARGET_RSS_IDLE_MB:.0f} MB")
    row(f"RSS during the sync of {events:,} events (max VmRSS)", [mb_check(r.rss_sync_kb, TARGET_RSS_SYNC_MB)
                                                                 for r in results], f"≤ {TARGET_RSS_SYNC_MB:.0f} MB")
    row("sync through the API: POST → run succeeded",
        ["—" if r.sync_s is None else f"{r.sync_s:.2f} s ({events / r.sync_s:,.0f} events/s)" for r in results])
    row("run: api_calls / upserted (fake: Calendar calls)",
        [f"{r.run.get('api_calls', '—')} / {r.run.get('upserted', '—')} ({r.fake_calls if r.fake_calls is not None else '—'})"
         if r.run else "—" for r in results])
    row("RSS after the read load", [fmt_mb(r.rss_after_kb) for r in results])
    for name, label in (("healthz", "`GET /healthz`"), ("events", f"`GET …/events?limit={PAGE_LIMIT}` (JWT)")):
        row(f"{label} requests/s", [f"{r.wrk[name].rps:,.0f}" if name in r.wrk else "—" for r in results])
        target = f"p99 ≤ {TARGET_READ_P99_MS:.0f} ms" if name == "events" else ""

        def lat(r: SyncResult, name: str = name) -> str:
            if name not in r.wrk:
                return "—"
            w = r.wrk[name]
            check = f" {verdict(w.p99_ms <= TARGET_READ_P99_MS)}" if name == "events" else ""
            return f"{fmt_ms(w.p50_ms)} / {fmt_ms(w.p99_ms)}{check}"

        row(f"{label} p50 / p99", [lat(r) for r in results], target)

    def ratio(r: SyncResult) -> str:
        if "events" not in r.wrk or not r.wrk.get("healthz") or not r.wrk["healthz"].rps:
            return "—"
        x = r.wrk["events"].rps / r.wrk["healthz"].rps
        return f"{x:.2f} {verdict(x >= TARGET_READ_RATIO)}"

    row("events page ÷ `/healthz` rate", [ratio(r) for r in results], f"≥ {TARGET_READ_RATIO}")
    failures = [r for r in results if r.error]
    if failures:
        out += ["", "**Not everything ran:**", ""]
        out += [f"- {r.store}: {r.error.splitlines()[0]}" for r in failures]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, type=Path, help="the built patchbay binary")
    ap.add_argument("--fixture", required=True, type=Path, help="the built sync_bench_fixture example")
    ap.add_argument("--stores", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    ap.add_argument("--pg-url", help="Postgres URL (its server gets a fresh database " + SERVE_DB + ")")
    ap.add_argument("--pg-error", help="why Postgres cannot be used (recorded as a failure)")
    ap.add_argument("--events", type=int, default=100_000, help="events in the fake's calendar")
    ap.add_argument("--duration", type=int, default=10, help="seconds of wrk per endpoint")
    ap.add_argument("--read-cache-bytes", type=int,
                    help="PATCHBAY_READ_CACHE_BYTES for the server (0: the events page uncached); "
                         "unset: the binary's default")
    ap.add_argument("--smoke", action="store_true", help="label the report as a smoke run")
    ap.add_argument("--out", type=Path, help="write the Markdown report here too")
    a = ap.parse_args()

    for path, what in ((a.bin, "cargo build --release -p patchbay-api"),
                       (a.fixture, "cargo build --release -p patchbay-sync --example sync_bench_fixture")):
        if not path.is_file():
            print(f"ERROR: {path} does not exist; build it ({what})", file=sys.stderr)
            return 1
    if not shutil.which("wrk"):
        print("ERROR: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    stores = [s.strip() for s in a.stores.split(",") if s.strip()]
    use_pg = "postgres" in stores and not a.pg_error
    meta = machine_lines(a.bin.resolve(), a.pg_url if use_pg else None)
    if a.read_cache_bytes is not None:
        meta.append(f"- PATCHBAY_READ_CACHE_BYTES={a.read_cache_bytes}")
    results = []
    for store in stores:
        if store == "postgres" and (a.pg_error or not a.pg_url):
            results.append(SyncResult(store, a.events, error=a.pg_error or "no --pg-url given"))
            continue
        results.append(bench_store(store, a.bin.resolve(), a.fixture.resolve(), a.pg_url, a.events, a.duration,
                                   a.read_cache_bytes))

    report = render(results, meta, a.events, a.duration, a.smoke)
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
