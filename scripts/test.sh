#!/usr/bin/env bash
# Patchbay's test command: ./scripts/test.sh [extra args for cargo nextest / cargo test]
# Run ./scripts/test.sh --help for what it does.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./scripts/test.sh [ARGS...]

Runs Patchbay's whole test suite, on SQLite and on Postgres, and in headless Chromium.

  1. Postgres: uses PATCHBAY_TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres.
     If that server does not answer and initdb/pg_ctl are installed, starts a private throwaway
     cluster (data and socket under target/pg-test, its own port from 55432 up, trust auth,
     fsync=off), points PATCHBAY_TEST_DATABASE_URL at it, and stops it on exit.
     If neither works, the Postgres half is skipped (PATCHBAY_TEST_POSTGRES=skip) and said so;
     under CI=true that makes the run fail, after the SQLite half has run.
  2. Drops leftover per-test schemas (t_<32 hex>) from that database: those over 2 minutes old,
     or over an hour old while other sessions are connected (a test run may be in progress).
     PATCHBAY_TEST_DROP_SCHEMAS=force drops all of them anyway, =skip drops none.
  3. Chromium for the browser tests (tests/browser): needs /usr/bin/chromium and
     /usr/bin/chromedriver. If either is missing and we are root, runs apt-get update (once) and
     apt-get install -y chromium chromium-driver. If they cannot be had, the browser tests are
     skipped (PATCHBAY_BROWSER=skip: each prints "skipped: ...") and said so; under CI=true that
     makes the run fail, after the other tests have run.
  4. Builds the binary (cargo build -p patchbay-api --bin patchbay): the CLI suite (tests/cli) runs it.
     That suite would build it too (tests/src/binary.rs); building first shows compiler errors once.
  5. Runs cargo nextest run --workspace (profile "ci" when CI=true), or cargo test --workspace when
     cargo-nextest is not installed, passing ARGS through, e.g.
         ./scripts/test.sh -E 'test(auth)'
     With no ARGS, doctests also run (cargo test --workspace --doc; nextest does not run them).

Environment:
  PATCHBAY_TEST_DATABASE_URL   Postgres to test against (tests create one schema per test in it)
  PATCHBAY_TEST_POSTGRES=skip  skip the Postgres half on purpose
  PATCHBAY_TEST_DROP_SCHEMAS   auto (default) | force | skip
  PATCHBAY_BROWSER=skip        skip the browser tests on purpose (and do not install Chromium)
  CI=true                      nextest profile "ci"; a skipped Postgres half or skipped browser
                               tests fail the run
EOF
}

case "${1:-}" in -h | --help) usage; exit 0 ;; esac

say() { printf '==> %s\n' "$*"; }
# redact URL: the URL with its password hidden, for messages.
redact() { printf '%s' "$1" | sed -E 's#(://[^:/@]*):[^@/]*@#\1:****@#'; }
warn() { printf '==> WARNING: %s\n' "$*" >&2; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

is_ci=false
case "${CI:-}" in true | 1 | yes) is_ci=true ;; esac

default_url=postgres://postgres@127.0.0.1:5432/postgres
pg_skip_reason=""
pg_dir=""      # private cluster's directory, when we started one
pg_user=""     # user that owns and runs it (empty: ourselves)
pg_ctl_bin=""

# ---------------------------------------------------------------------------------------------
# Postgres helpers

# as_pg_user CMD...: run CMD as the private cluster's owner (initdb refuses to run as root).
as_pg_user() {
  if [ -n "$pg_user" ]; then
    # From /, so that an unreadable working directory (a clone under /root) does not matter.
    (cd / && runuser -u "$pg_user" -- "$@")
  else
    "$@"
  fi
}

# find_pg_tool NAME: print the path of a Postgres server tool, from PATH or /usr/lib/postgresql.
find_pg_tool() {
  local found
  if found=$(command -v "$1" 2>/dev/null); then
    printf '%s\n' "$found"
    return 0
  fi
  # Highest installed major version first.
  found=$(find /usr/lib/postgresql/*/bin -maxdepth 1 -name "$1" -type f 2>/dev/null | sort -V | tail -n 1) || true
  [ -n "$found" ] || return 1
  printf '%s\n' "$found"
}

# tcp_open HOST PORT: whether something accepts TCP connections there.
tcp_open() {
  # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# pg_reachable URL: whether a Postgres server answers at URL (a reason is left in pg_check_error).
pg_check_error=""
pg_reachable() {
  local url=$1 out
  if command -v psql >/dev/null 2>&1; then
    if out=$(PGCONNECT_TIMEOUT=5 psql "$url" -X -q -t -A -c 'select 1' 2>&1); then
      return 0
    fi
    pg_check_error=$(printf '%s\n' "$out" | head -n 1 | sed 's/^psql: error: //')
    return 1
  fi
  if command -v pg_isready >/dev/null 2>&1; then
    if pg_isready -q -t 5 -d "$url"; then return 0; fi
    pg_check_error="pg_isready reports no server"
    return 1
  fi
  # No client tools: a plain TCP check on host:port from the URL.
  local re='^postgres(ql)?://([^@/]*@)?([^:/?]+)(:([0-9]+))?'
  if [[ $url =~ $re ]]; then
    if tcp_open "${BASH_REMATCH[3]}" "${BASH_REMATCH[5]:-5432}"; then return 0; fi
    pg_check_error="nothing listens on ${BASH_REMATCH[3]}:${BASH_REMATCH[5]:-5432} (no psql to check further)"
  else
    pg_check_error="cannot read host and port from the URL, and psql is not installed"
  fi
  return 1
}

stop_private_cluster() {
  [ -n "$pg_dir" ] || return 0
  if [ -f "$pg_dir/data/postmaster.pid" ]; then
    say "stopping the private Postgres cluster"
    as_pg_user "$pg_ctl_bin" -D "$pg_dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_pg_user "$pg_ctl_bin" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$pg_dir"
  pg_dir=""
}

# shellcheck disable=SC2317 # called by the trap
on_exit() {
  local rc=$?
  stop_private_cluster
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_private_cluster: initdb + pg_ctl start a throwaway cluster; sets PATCHBAY_TEST_DATABASE_URL.
start_private_cluster() {
  local initdb_bin dir port log
  initdb_bin=$(find_pg_tool initdb) || { pg_skip_reason="initdb is not installed (apt-get install postgresql)"; return 1; }
  pg_ctl_bin=$(find_pg_tool pg_ctl) || { pg_skip_reason="pg_ctl is not installed (apt-get install postgresql)"; return 1; }

  if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1; then pg_user=postgres; else pg_user=nobody; fi
    command -v runuser >/dev/null 2>&1 || {
      pg_skip_reason="running as root and runuser is missing, so initdb cannot run as '$pg_user'"
      return 1
    }
  fi

  # target/pg-test, unless another live run of this script uses it. A cluster left there by a run
  # that was killed before its trap ran is stopped and removed.
  dir="$root/target/pg-test"
  local owner_pid
  owner_pid=$(cat "$dir/owner.pid" 2>/dev/null) || owner_pid=""
  if [ -n "$owner_pid" ] && [ "$owner_pid" != $$ ] && kill -0 "$owner_pid" 2>/dev/null; then
    dir=""
  else
    if [ -f "$dir/data/postmaster.pid" ]; then
      say "stopping a private cluster left over from an earlier run"
      local owner
      owner=$(stat -c %U "$dir/data")
      if [ "$(id -u)" = 0 ] && [ "$owner" != root ]; then
        (cd / && runuser -u "$owner" -- "$pg_ctl_bin" -D "$dir/data" -m immediate -w stop) >/dev/null 2>&1 || true
      else
        "$pg_ctl_bin" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
      fi
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [ -z "$pg_user" ] || chown "$pg_user" "$dir"
    # The cluster's owner must reach the directory; the socket path must fit in sun_path (107 bytes).
    if ! as_pg_user test -w "$dir" 2>/dev/null || [ ${#dir} -gt 80 ]; then
      rm -rf "$dir"
      dir=""
    fi
  fi
  if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/patchbay-pg-test.XXXXXX")
    [ -z "$pg_user" ] || chown "$pg_user" "$dir"
  fi
  echo $$ >"$dir/owner.pid"
  pg_dir=$dir
  log="$dir/postgres.log"

  # Free port from 55432 up.
  port=55432
  while tcp_open 127.0.0.1 "$port"; do
    port=$((port + 1))
    [ "$port" -lt 55532 ] || { pg_skip_reason="no free port in 55432-55531 for a private cluster"; return 1; }
  done

  say "starting a private Postgres cluster in $dir on 127.0.0.1:$port${pg_user:+ (as user $pg_user)}"
  if ! as_pg_user "$initdb_bin" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
    tail -n 20 "$dir/initdb.log" >&2 || true
    pg_skip_reason="initdb failed (output above, from $initdb_bin)"
    return 1
  fi
  cat >>"$dir/data/postgresql.conf" <<EOF

# Throwaway test cluster started by scripts/test.sh: speed over durability.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  if ! as_pg_user "$pg_ctl_bin" -D "$dir/data" -l "$log" -w -t 60 start >/dev/null 2>&1; then
    tail -n 20 "$log" >&2 || true
    pg_skip_reason="the private cluster did not start (log above, $log)"
    return 1
  fi
  export PATCHBAY_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  say "private cluster ready: PATCHBAY_TEST_DATABASE_URL=$PATCHBAY_TEST_DATABASE_URL"
}

# drop_leftover_schemas URL: drop t_<32 hex> schemas left by earlier (killed) test runs.
# The testkit names them t_<uuid v7>, whose first 48 bits are the creation time in ms, so a
# concurrent run's schemas can be told apart: see min_age_ms below.
drop_leftover_schemas() {
  local url=$1 mode=${PATCHBAY_TEST_DROP_SCHEMAS:-auto} others=0 list n filter=""
  [ "$mode" != skip ] || return 0
  command -v psql >/dev/null 2>&1 || { say "psql is not installed: leftover test schemas are not dropped"; return 0; }
  local psql_q=(psql "$url" -X -q -t -A -v ON_ERROR_STOP=1)
  if [ "$mode" != force ]; then
    others=$(PGCONNECT_TIMEOUT=5 "${psql_q[@]}" -c "select count(*) from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'") || others=0
  fi
  # Minimum age in ms: none when forced; 2 minutes (a test may have just made its schema and
  # not yet connected to it); an hour while other sessions are connected.
  local min_age_ms=120000 age_note=""
  [ "$mode" != force ] || min_age_ms=0
  if [ "${others:-0}" -gt 0 ]; then
    min_age_ms=3600000
    age_note=" older than an hour ($others other sessions are connected; PATCHBAY_TEST_DROP_SCHEMAS=force drops all)"
  fi
  if [ "$min_age_ms" -gt 0 ]; then
    filter="and (substr(nspname, 15, 1) <> '7'
      or ('x' || lpad(substr(nspname, 3, 12), 16, '0'))::bit(64)::bigint
         < (extract(epoch from now()) * 1000)::bigint - $min_age_ms)"
  fi
  list=$(PGCONNECT_TIMEOUT=5 "${psql_q[@]}" -c \
    "select format('DROP SCHEMA IF EXISTS %I CASCADE;', nspname) from pg_namespace
      where nspname ~ '^t_[0-9a-f]{32}\$' $filter order by nspname") || {
    warn "could not list leftover test schemas"
    return 0
  }
  n=$(printf '%s' "$list" | grep -c . || true)
  if [ "$n" -gt 0 ]; then
    say "dropping $n leftover test schemas$age_note"
    # One statement per schema, each in its own transaction (one big one could run out of locks).
    printf '%s\n' "$list" | psql "$url" -X -q -v ON_ERROR_STOP=0 >/dev/null 2>&1 ||
      warn "some leftover test schemas could not be dropped"
  fi
}

# ensure_chromium: Debian's Chromium and ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver) for
# the browser tests. Installs them with apt-get when missing and we are root; when they cannot be
# had, leaves the reason in browser_skip_reason (the caller skips the browser tests).
browser_skip_reason=""
apt_updated=false
ensure_chromium() {
  if [ "${PATCHBAY_BROWSER:-}" = skip ]; then
    browser_skip_reason="PATCHBAY_BROWSER=skip was set"
    return 0
  fi
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    say "Chromium and ChromeDriver found"
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    browser_skip_reason="/usr/bin/chromium or /usr/bin/chromedriver is missing and we are not root to install them (sudo apt-get install -y chromium chromium-driver)"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || {
    browser_skip_reason="/usr/bin/chromium or /usr/bin/chromedriver is missing and apt-get is not available to install them"
    return 0
  }
  local log
  log=$(mktemp "${TMPDIR:-/tmp}/patchbay-apt.XXXXXX")
  say "installing Chromium and ChromeDriver for the browser tests (apt-get install -y chromium chromium-driver)"
  if ! $apt_updated; then
    if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >"$log" 2>&1; then
      tail -n 20 "$log" >&2 || true
      rm -f "$log"
      browser_skip_reason="apt-get update failed (output above), so Chromium could not be installed"
      return 0
    fi
    apt_updated=true
  fi
  if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium chromium-driver >"$log" 2>&1; then
    tail -n 20 "$log" >&2 || true
    rm -f "$log"
    browser_skip_reason="apt-get install chromium chromium-driver failed (output above)"
    return 0
  fi
  rm -f "$log"
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    say "Chromium and ChromeDriver installed"
  else
    browser_skip_reason="apt-get installed chromium and chromium-driver, but /usr/bin/chromium or /usr/bin/chromedriver is still missing"
  fi
}

# ---------------------------------------------------------------------------------------------
# 1. Postgres

if [ "${PATCHBAY_TEST_POSTGRES:-}" = skip ]; then
  pg_skip_reason="PATCHBAY_TEST_POSTGRES=skip was set"
else
  url=${PATCHBAY_TEST_DATABASE_URL:-$default_url}
  say "checking Postgres at $(redact "$url")"
  if pg_reachable "$url"; then
    export PATCHBAY_TEST_DATABASE_URL=$url
    say "Postgres reachable"
  else
    say "Postgres at $(redact "$url") is unreachable: $pg_check_error"
    if ! start_private_cluster; then
      stop_private_cluster
    fi
  fi
fi

if [ -n "$pg_skip_reason" ]; then
  printf '==> Postgres half did NOT run: %s\n' "$pg_skip_reason" >&2
  export PATCHBAY_TEST_POSTGRES=skip
else
  unset PATCHBAY_TEST_POSTGRES
  drop_leftover_schemas "$PATCHBAY_TEST_DATABASE_URL"
fi

# ---------------------------------------------------------------------------------------------
# 2. Chromium, for the browser tests

ensure_chromium
if [ -n "$browser_skip_reason" ]; then
  printf '==> browser tests will NOT run: %s\n' "$browser_skip_reason" >&2
  export PATCHBAY_BROWSER=skip
fi

# ---------------------------------------------------------------------------------------------
# 3. Build and test

say "building the patchbay binary (cargo build -p patchbay-api --bin patchbay)"
cargo build -p patchbay-api --bin patchbay || {
  printf '==> FAILED: the patchbay binary does not build (compiler errors above)\n' >&2
  exit 1
}

status=0
if cargo nextest --version >/dev/null 2>&1; then
  args=(nextest run --workspace)
  $is_ci && args+=(--profile ci)
  # An empty workspace (or crate) is not a failure; a filter that matches nothing still is.
  [ $# -gt 0 ] || args+=(--no-tests=warn)
  # Doctests first (nextest does not run them), so the run closes on nextest's summary.
  if [ $# -eq 0 ]; then
    say "running doctests (cargo test --workspace --doc)"
    cargo test --workspace --doc || status=$?
  fi
  say "running cargo ${args[*]}${*:+$(printf ' %q' "$@")}"
  cargo "${args[@]}" "$@" || status=$?
else
  say "cargo-nextest is not installed (cargo install cargo-nextest --locked); using cargo test"
  say "running cargo test --workspace${*:+$(printf ' %q' "$@")}"
  cargo test --workspace "$@" || status=$?
fi

# ---------------------------------------------------------------------------------------------
# 4. Verdict

if [ -n "$pg_skip_reason" ]; then
  printf '==> Postgres half did NOT run: %s\n' "$pg_skip_reason" >&2
  if $is_ci && [ "$status" -eq 0 ]; then
    printf '==> FAILED: CI=true requires the Postgres half (start Postgres or set PATCHBAY_TEST_DATABASE_URL)\n' >&2
    status=1
  fi
fi
if [ -n "$browser_skip_reason" ]; then
  printf '==> browser tests did NOT run: %s\n' "$browser_skip_reason" >&2
  if $is_ci && [ "$status" -eq 0 ]; then
    printf '==> FAILED: CI=true requires the browser tests (install chromium and chromium-driver, as root)\n' >&2
    status=1
  fi
fi
if [ "$status" -eq 0 ]; then
  skipped="${pg_skip_reason:+SQLite only}"
  [ -z "$browser_skip_reason" ] || skipped="${skipped:+$skipped, }without the browser tests"
  say "tests passed${skipped:+ ($skipped)}"
else
  printf '==> tests FAILED (exit %s)\n' "$status" >&2
fi
exit "$status"
