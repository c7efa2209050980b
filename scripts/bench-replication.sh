#!/usr/bin/env bash
# Replication cost, in one run: produce throughput and latency (1 KiB messages) to
#   none   a master alone (ASYNC_MASTER, no slave: the baseline)
#   async  an ASYNC_MASTER with one slave
#   sync   a SYNC_MASTER with one slave
# plus the ASYNC_MASTER's replication lag under that load (ramjet_replication_lag_bytes,
# scraped every 0.5 s). One JSON line per scenario.
#
#   scripts/bench-replication.sh [DURATION_SECS] [DIR]
#
# Environment: SHARDS (per broker, 1), CONNECTIONS (2), INFLIGHT (32 per connection),
# SIZE (1024), FLUSH (ASYNC_FLUSH), BROKER_FLAGS (extra flags for every broker, e.g.
# "--spin-before-park-us 0"), RAMJET_BIN_DIR (target/release; built when absent).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
BASE=${2:-/var/tmp/ramjet-repl-bench}
BIN=${RAMJET_BIN_DIR:-target/release}
SHARDS=${SHARDS:-1}
CONNECTIONS=${CONNECTIONS:-2}
INFLIGHT=${INFLIGHT:-32}
SIZE=${SIZE:-1024}
FLUSH=${FLUSH:-ASYNC_FLUSH}
if [ ! -x "$BIN/ramjet-broker" ] || [ ! -x "$BIN/ramjet-bench" ]; then
  cargo build --release -p ramjet-server -p ramjet-bench --bins
fi
ulimit -l unlimited 2>/dev/null || true
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

start() { # $1 log name, then broker flags
  local log="$BASE/$1.log"; shift
  RUST_LOG=warn "$BIN/ramjet-broker" --broker-ip 127.0.0.1 --shards "$SHARDS" \
    --flush-disk-type "$FLUSH" ${BROKER_FLAGS:-} "$@" 2>"$log" &
  PIDS+=($!)
  for _ in $(seq 1 300); do grep -qs " ready: " "$log" && return 0; sleep 0.1; done
  cat "$log" >&2; exit 1
}

lag() { curl -s "http://127.0.0.1:41999/metrics" | awk '/^ramjet_replication_lag_bytes/ {s += $2; n++} END {if (n) print s; else print "none"}'; }

for mode in none async sync; do
  rm -rf "$BASE"; mkdir -p "$BASE"
  role=ASYNC_MASTER; [ "$mode" = sync ] && role=SYNC_MASTER
  start master --store-path "$BASE/master" --listen-port 41911 --grpc-port 41916 --namesrv-port 41876 \
    --metrics-port 41999 --broker-role "$role"
  if [ "$mode" != none ]; then
    start slave --store-path "$BASE/slave" --listen-port 41921 --grpc-port 41926 -n 127.0.0.1:41876 \
      --broker-role SLAVE --broker-id 1
    for _ in $(seq 1 300); do [ "$(lag)" != none ] && break; sleep 0.1; done
  fi
  : >"$BASE/lag.txt"
  ( while true; do lag >>"$BASE/lag.txt"; sleep 0.5; done ) &
  sampler=$!
  "$BIN/ramjet-bench" produce -n 127.0.0.1:41876 --topic repl-bench --size "$SIZE" \
    --connections "$CONNECTIONS" --inflight "$INFLIGHT" --duration "$DUR" --json \
    2>"$BASE/bench.err" >"$BASE/bench.json"
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  lag_max=$( (grep -v none "$BASE/lag.txt" || true) | sort -n | tail -1); lag_max=${lag_max:-null}
  lag_mean=$( (grep -v none "$BASE/lag.txt" || true) |
    awk '{s+=$1; n++} END {if (n) printf "%d", s/n; else print "null"}')
  jq -c --arg mode "$mode" --argjson lag_max "$lag_max" --argjson lag_mean "$lag_mean" \
    '{mode: $mode, msgs_per_s, mb_per_s, errors, errors_by_code, p50_us: .latency_us.p50,
      p99_us: .latency_us.p99, p999_us: .latency_us.p999,
      replication_lag_max_bytes: $lag_max, replication_lag_mean_bytes: $lag_mean}' \
    "$BASE/bench.json"
  cleanup; PIDS=()
done
