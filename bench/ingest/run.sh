#!/usr/bin/env bash
# bench/ingest/run.sh [sqlite|postgres] [SECONDS]: signed ingest over HTTP at concurrency 64 (wrk),
# and on Postgres pgbench single-row inserts at the same concurrency on the same server, same run.
# Needs target/release/patchbay, wrk, python3 (no curl) (and psql/pgbench for Postgres). Postgres URL:
# PATCHBAY_BENCH_DATABASE_URL's server, database patchbay_bench_ingest (dropped and re-created).
# Batcher, worker and pool settings set by the caller (PATCHBAY_WEBHOOK_BATCH_MAX_ITEMS,
# PATCHBAY_WEBHOOK_BATCH_MAX_WAIT_MS, PATCHBAY_WORKER_CONCURRENCY, PATCHBAY_DB_MAX_CONNECTIONS) reach the server.
set -euo pipefail
store=${1:-sqlite}
secs=${2:-10}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${PATCHBAY_BIN:-$here/../../target/release/patchbay}
work=$(mktemp -d /tmp/patchbay-ingest.XXXX)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
env_vars=(PATCHBAY_ENV=development PATCHBAY_LOG=warn "PATCHBAY_DATA_DIR=$work" PATCHBAY_TENANT_CLAIM=org
  "PATCHBAY_LISTEN=127.0.0.1:$port" PATCHBAY_METRICS_LISTEN=127.0.0.1:0 "PATCHBAY_PUBLIC_URL=http://127.0.0.1:$port")
for s in V1 PUBLIC PRINCIPAL CONNECT WEBHOOKS; do
  env_vars+=("PATCHBAY_RATE_LIMIT_${s}_PER_SECOND=1000000" "PATCHBAY_RATE_LIMIT_${s}_BURST=1000000")
done
# Tuning knobs the caller sets are passed through (the server otherwise starts from a clean env).
for v in PATCHBAY_WEBHOOK_BATCH_MAX_ITEMS PATCHBAY_WEBHOOK_BATCH_MAX_WAIT_MS PATCHBAY_WORKER_CONCURRENCY \
  PATCHBAY_DB_MAX_CONNECTIONS; do
  [ -n "${!v:-}" ] && env_vars+=("$v=${!v}")
done
if [ "$store" = postgres ]; then
  base=${PATCHBAY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/patchbay_bench}
  server=${base%/*}
  psql "$server/postgres" -X -q -c "DROP DATABASE IF EXISTS patchbay_bench_ingest" -c "CREATE DATABASE patchbay_bench_ingest"
  db="$server/patchbay_bench_ingest"
  env_vars+=("PATCHBAY_DATABASE_URL=$db" "PATCHBAY_AUTH_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')"
    "PATCHBAY_VAULT_KEYS=1:$(head -c 32 /dev/urandom | base64)")
fi
cd "$work"
env -i PATH="$PATH" "${env_vars[@]}" "$bin" serve >serve.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
ready() { python3 -c 'import sys,urllib.request as u; u.urlopen(sys.argv[1], timeout=2)' "http://127.0.0.1:$port/readyz" 2>/dev/null; }
for _ in $(seq 1 600); do ready && break; sleep 0.05; done
ready || { echo "ERROR: patchbay serve was not ready; its log:" >&2; tail -n 20 serve.log >&2; exit 1; }
cli() { env -i PATH="$PATH" "${env_vars[@]}" "$bin" "$@" 2>/dev/null; }
secret=$(cli webhook-sources create --tenant acme --name bench --scheme standard_webhooks | tail -n 1)
id=$(cli webhook-sources list --tenant acme | grep -Eo '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' | head -n 1)
python3 "$here/sign.py" "$secret" $((secs * 20000)) "$work/requests.txt"
echo "== $store: signed ingest, wrk -t2 -c64 -d${secs}s; load before: $(uptime)"
out=$(PATCHBAY_INGEST_REQUESTS="$work/requests.txt" wrk -t2 -c64 -d"${secs}s" --latency -s "$here/ingest.lua" \
  "http://127.0.0.1:$port/webhooks/sources/$id")
printf '%s\n' "$out" | grep -E 'Requests/sec|  50%|  99%|requests in|non2xx|Socket'
# Something that did not work fails the run (a missed target does not): an answer other than 204.
printf '%s\n' "$out" | grep -q '^non2xx_total=0$' || { echo "ERROR: some deliveries were not answered 204" >&2; exit 1; }
if [ "$store" = postgres ]; then
  psql "$db" -X -q -t -c "SELECT count(*) AS stored FROM webhook_event"
  psql "$db" -X -q -c "CREATE TABLE pgb_insert (id bigserial PRIMARY KEY, k text NOT NULL, body bytea NOT NULL)"
  echo "== postgres: pgbench single-row insert, -c64 -j2 -T${secs}; load before: $(uptime)"
  pgbench "$db" -n -f "$here/insert.sql" -c 64 -j 2 -T "$secs" 2>&1 | grep -E 'tps|latency average|failed'
fi
echo "== load after: $(uptime)"
