#!/usr/bin/env bash
# Patchbay's benchmark: bench/run.sh [--smoke] [--connect] [--sync] [--store sqlite|postgres|both] [--duration S]. See --help.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/run.sh [--smoke] [--connect] [--sync] [--store sqlite|postgres|both] [--duration SECONDS] [--no-build]

Builds the release binary (cargo build --release -p patchbay-api) and measures it on each store:
  - start-to-ready: spawn `patchbay serve`, poll GET /readyz every 2 ms until 200; the first start
    on an empty data directory, then the median of 5 more starts; also SIGTERM-to-exit time
  - RSS idle (VmRSS ~1 s after ready) and RSS loaded (max VmRSS during the wrk runs)
  - wrk -t2 -c32 --latency against GET /healthz, GET /readyz and GET /v1/me (a JWT from
    `patchbay dev-token --user bench-user`): requests/s, p50, p99, and the /v1/me ÷ /healthz ratio
Targets shown beside the numbers: /v1/me >= 0.5 x /healthz; RSS idle <= 20 MB;
start-to-ready <= 150 ms on SQLite.

Then the Connect benchmarks (crates/api/benches/connect.rs; `cargo bench -p patchbay-api --bench
connect -- --help` says more), in-process against the fake Google:
  - callback throughput: 2,000 prepared connect flows, all callbacks fired with concurrency 32:
    callbacks/s, p50, p99 (target >= 500/s on Postgres)
  - refresh storm: 10,000 real connects whose token sets then expire at one instant inside the
    refresh margin; fresh_access_token for all of them with concurrency 64 (targets: exactly
    10,000 refresh calls at the fake, finished before the tokens expire)

Then signed webhook ingest (bench/ingest/run.sh STORE SECONDS): Standard-Webhooks-signed
deliveries, each distinct, through POST /webhooks/sources/{id} with wrk -t2 -c64 (verified,
committed, 204): requests/s, p50, p99; on Postgres beside pgbench single-row inserts at the same
concurrency on the same server (target >= 1.0 x pgbench with p99 <= 25 ms). Any answer other than
204 fails the run. The smoke runs it for 2 s on SQLite.

Then the Sync benchmarks:
  - in process (crates/sync/benches/sync; `cargo bench -p patchbay-sync --bench sync -- --help`):
    a full sync of one calendar of 100,000 events from the fake Google (no added latency, pages
    of 2,500) through the real engine into a fresh store: events/s, beside a Postgres COPY of the
    same rows in the same run (targets: >= 0.5 x COPY on Postgres, >= 20,000/s on SQLite), and the
    process's peak RSS
  - through the release binary (bench/measure_sync.py): a fixture process runs the fake Google
    with 100,000 events and seeds a Google connection in the server's database; POST
    /v1/connections/{id}/sync, poll the run until it succeeds while sampling the server's VmRSS
    (targets: <= 16 MB idle with the worker running, <= 80 MB during the sync); then wrk
    GET .../google/calendars/{calendar}/events?limit=100 with a JWT beside /healthz (targets:
    >= 0.25 x /healthz, p99 <= 10 ms)

Targets never change the exit status; something that did not work (no start, a non-2xx answer
under load, Postgres unreachable, a callback that did not connect, a wrong refresh count) does.

Stores:
  sqlite    a fresh temporary data directory, no other configuration
  postgres  PATCHBAY_BENCH_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/patchbay_bench
            (the database is created if missing); explicit random JWT secret and vault key

Options:
  --smoke            2 s per endpoint, 3 later starts, SQLite only (what CI runs); the Connect
                     smoke (200 callbacks, a storm of 500) runs from the test profile
                     (cargo test --bench connect), which the test suite has already built: an
                     optimised build of the bench target and its dev-dependencies takes minutes;
                     likewise the Sync smoke (5,000 events in process, SQLite; 2,000 through the
                     server, with the fixture built in the test profile)
  --connect          only the Connect benchmarks (no release binary, no wrk)
  --sync             only the Sync benchmarks
  --store S          sqlite, postgres or both (default: both)
  --duration S       seconds of wrk per endpoint (default 10)
  --no-build         use the existing target/release/patchbay
  -h, --help         this text

The Markdown tables go to stdout and to bench/out/results-<date>.md, bench/out/connect-<date>.md,
bench/out/sync-<date>.md and bench/out/sync-serve-<date>.md (-smoke.md for --smoke).
wrk is installed with apt-get when missing and running as root. All traffic goes to 127.0.0.1.
EOF
}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf '==> ERROR: %s\n' "$*" >&2; exit 1; }

smoke=false
store=both
duration=""
build=true
connect_only=false
sync_only=false
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --smoke) smoke=true ;;
    --connect) connect_only=true ;;
    --sync) sync_only=true ;;
    --store)
      [ $# -ge 2 ] || die "--store needs a value: sqlite, postgres or both"
      store=$2; shift ;;
    --store=*) store=${1#--store=} ;;
    --duration)
      [ $# -ge 2 ] || die "--duration needs a number of seconds"
      duration=$2; shift ;;
    --duration=*) duration=${1#--duration=} ;;
    --no-build) build=false ;;
    *) die "unknown argument '$1' (see bench/run.sh --help)" ;;
  esac
  shift
done
case "$store" in sqlite | postgres | both) ;; *) die "--store must be sqlite, postgres or both, not '$store'" ;; esac
! { $connect_only && $sync_only; } || die "--connect and --sync each run only their own benchmarks; pick one"
[ -z "$duration" ] || [[ $duration =~ ^[1-9][0-9]*$ ]] || die "--duration must be a whole number of seconds, not '$duration'"

starts=5
if $smoke; then
  store=sqlite
  duration=${duration:-2}
  starts=3
fi
duration=${duration:-10}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# run_connect: the Connect benchmarks (stores as --store says), with the same Postgres database.
run_connect() {
  local connect_store=$store
  [ -z "${pg_url:-}" ] || export PATCHBAY_BENCH_DATABASE_URL=$pg_url
  if $smoke; then
    say "Connect benchmarks, smoke (cargo test -p patchbay-api --bench connect -- --smoke --store sqlite)"
    cargo test -p patchbay-api --bench connect -- --smoke --store sqlite
  else
    say "Connect benchmarks ($connect_store; cargo bench -p patchbay-api --bench connect; the first build takes minutes)"
    cargo bench -p patchbay-api --bench connect -- --store "$connect_store"
  fi
}

if $connect_only; then
  pg_url=""
  if [ "$store" != sqlite ]; then
    pg_url=${PATCHBAY_BENCH_DATABASE_URL:-}
  fi
  run_connect || die "the Connect benchmarks did not work (see above)"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 is needed (apt-get install python3)"

# --- the binary
target_dir=${CARGO_TARGET_DIR:-$root/target}
bin="$target_dir/release/patchbay"
if $build; then
  say "building the release binary (cargo build --release -p patchbay-api; a few minutes from scratch)"
  cargo build --release -p patchbay-api || die "the release build failed (compiler errors above)"
fi
[ -x "$bin" ] || die "$bin is missing; build it with cargo build --release -p patchbay-api"

# --- wrk
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing wrk (apt-get install -y wrk)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } ||
      die "could not install wrk with apt-get; install it yourself (apt-get install wrk)"
  else
    die "wrk is not installed; install it (sudo apt-get install wrk) and run again"
  fi
fi

# --- Postgres
stores=sqlite
pg_args=()
if [ "$store" != sqlite ]; then
  [ "$store" = postgres ] && stores=postgres || stores=sqlite,postgres
  pg_url=${PATCHBAY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/patchbay_bench}
  pg_error=""
  if ! command -v psql >/dev/null 2>&1; then
    pg_error="psql is not installed (apt-get install postgresql-client), so the database cannot be checked"
  elif ! out=$(PGCONNECT_TIMEOUT=5 psql "$pg_url" -X -q -t -A -c 'select 1' 2>&1); then
    if printf '%s' "$out" | grep -q 'does not exist'; then
      # Connect to the server's "postgres" database to create the one named in the URL.
      read -r maint_url db_name < <(python3 - "$pg_url" <<'PY'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit(p._replace(path="/postgres")), u.unquote(p.path.lstrip("/")))
PY
)
      say "creating database $db_name"
      # (psql interpolates :"db" as a quoted identifier only in input it reads, not in -c.)
      if ! out=$(echo 'CREATE DATABASE :"db";' |
        PGCONNECT_TIMEOUT=5 psql "$maint_url" -X -q -v ON_ERROR_STOP=1 -v db="$db_name" 2>&1); then
        pg_error="could not create database $db_name: $(printf '%s' "$out" | head -n 1)"
      fi
    else
      pg_error="$(printf '%s' "$out" | head -n 1 | sed 's/^psql: error: //') (set PATCHBAY_BENCH_DATABASE_URL, or use --store sqlite)"
    fi
  fi
  pg_args=(--pg-url "$pg_url")
  [ -z "$pg_error" ] || { say "Postgres will not be measured: $pg_error"; pg_args+=(--pg-error "$pg_error"); }
fi

# --- measure
date_tag=$(date +%Y-%m-%d)
suffix=""
$smoke && suffix=-smoke
out="$root/bench/out/results-$date_tag$suffix.md"
args=(--bin "$bin" --stores "$stores" --duration "$duration" --starts "$starts" --out "$out")
$smoke && args+=(--smoke)
status=0
if ! $sync_only; then
  say "measuring ($stores; $duration s of wrk per endpoint)"
  python3 "$root/bench/measure.py" "${args[@]}" "${pg_args[@]}" || status=$?
fi
sync_store=$store

# --- signed webhook ingest over HTTP (bench/ingest/run.sh; beside pgbench on Postgres)
if ! $sync_only; then
  ingest_secs=$duration
  for ingest_store in ${stores//,/ }; do
    say "signed ingest ($ingest_store; wrk -c64 for $ingest_secs s)"
    env PATCHBAY_BIN="$bin" ${pg_url:+PATCHBAY_BENCH_DATABASE_URL="$pg_url"} "$root/bench/ingest/run.sh" "$ingest_store" "$ingest_secs" ||
      { say "ERROR: the ingest benchmark did not work (see above)"; status=1; }
  done
fi

# --- the Connect benchmarks
if ! $sync_only; then
  if [ -n "${pg_error:-}" ] && [ "$store" != sqlite ]; then
    say "Connect benchmarks on Postgres not run: $pg_error"
    status=1
    [ "$store" = both ] && store=sqlite || store=""
  fi
  if [ -n "$store" ]; then
    run_connect || { say "ERROR: the Connect benchmarks did not work (see above)"; status=1; }
  fi
fi

# --- the Sync benchmarks
# run_sync: in process (cargo bench/test --bench sync), then through the release binary with the
# fixture (bench/measure_sync.py). The smoke builds the fixture in the test profile, which the test
# suite has already compiled; the full run builds it optimised.
run_sync() {
  local ok=0 in_store=$sync_store profile=release events=100000
  local -a build_args=(--release) sync_args=(--bin "$bin" --stores "$stores" --duration "$duration")
  if [ -n "${pg_error:-}" ] && [ "$in_store" != sqlite ]; then
    say "Sync benchmark on Postgres not run: $pg_error"
    ok=1
    [ "$in_store" = both ] && in_store=sqlite || in_store=""
  fi
  # The benchmark creates (and drops) its own database patchbay_bench_sync on this server.
  [ -z "${pg_url:-}" ] || export PATCHBAY_BENCH_DATABASE_URL=$pg_url
  if $smoke; then
    profile=debug events=2000 build_args=()
    sync_args+=(--smoke)
    say "Sync benchmark, smoke (cargo test -p patchbay-sync --bench sync -- --smoke)"
    cargo test -p patchbay-sync --bench sync -- --smoke || ok=1
  elif [ -n "$in_store" ]; then
    say "Sync benchmark ($in_store; cargo bench -p patchbay-sync --bench sync; the first build takes minutes)"
    cargo bench -p patchbay-sync --bench sync -- --store "$in_store" || ok=1
  fi
  local fixture="$target_dir/$profile/examples/sync_bench_fixture"
  if $build; then
    say "building the sync fixture (cargo build ${build_args[*]} -p patchbay-sync --example sync_bench_fixture)"
    cargo build "${build_args[@]}" -p patchbay-sync --example sync_bench_fixture || return 1
  fi
  [ -x "$fixture" ] || { say "ERROR: $fixture is missing; build it with cargo build ${build_args[*]} -p patchbay-sync --example sync_bench_fixture"; return 1; }
  say "Sync through the server ($stores; $events events; $duration s of wrk per endpoint)"
  python3 "$root/bench/measure_sync.py" "${sync_args[@]}" --fixture "$fixture" --events "$events" \
    --out "$root/bench/out/sync-serve-$date_tag$suffix.md" "${pg_args[@]}" || ok=1
  return "$ok"
}
run_sync || { say "ERROR: the Sync benchmarks did not work (see above)"; status=1; }
exit "$status"
