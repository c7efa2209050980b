#!/usr/bin/env bash
# The benchmark suite: starts a release broker per flush mode on loopback, runs
# ramjet-bench scenarios against it, and prints one JSON summary per scenario plus the
# broker's CPU seconds per million messages. Also measures the disk's raw 4 KiB
# write+fdatasync latency in the same run, for comparison with SYNC_FLUSH.
#
#   scripts/bench.sh [DURATION_SECS] [STORE_DIR]
#
# Binaries: target/release (override with RAMJET_BIN_DIR). Builds them if absent.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
BASE=${2:-/var/tmp/ramjet-bench}
BIN=${RAMJET_BIN_DIR:-target/release}
if [ ! -x "$BIN/ramjet-broker" ] || [ ! -x "$BIN/ramjet-bench" ]; then
  cargo build --release -p ramjet-server -p ramjet-bench --bins
fi
ulimit -l unlimited 2>/dev/null || true
CLK=$(getconf CLK_TCK)
BROKER_PID=""
cleanup() { [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null; true; }
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_broker() { # $1 flush type
  rm -rf "$BASE/store"; mkdir -p "$BASE"
  local log="$BASE/broker.log"
  RUST_LOG=warn "$BIN/ramjet-broker" --store-path "$BASE/store" --broker-ip 127.0.0.1 \
    --listen-port 0 --namesrv-port 0 --flush-disk-type "$1" 2>"$log" &
  BROKER_PID=$!
  for _ in $(seq 1 200); do
    if grep -q "ready:" "$log"; then break; fi
    sleep 0.1
  done
  NS=$(grep -o 'namesrv [0-9.:]*' "$log" | awk '{print $2}')
  [ -n "$NS" ] || { cat "$log"; exit 1; }
}

stop_broker() { kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""; }

run() { # name, then bench args
  local name=$1; shift
  local before after out
  before=$(cpu_ticks "$BROKER_PID")
  out=$("$BIN/ramjet-bench" "$@" -n "$NS" --json 2>/dev/null)
  after=$(cpu_ticks "$BROKER_PID")
  python3 - "$name" "$out" "$before" "$after" "$CLK" <<'PY'
import json, sys
name, out, before, after, clk = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cpu = (after - before) / clk
msgs = max(out.get("messages", 0), 1)
out["scenario"] = name
out["broker_cpu_s"] = round(cpu, 2)
out["broker_cpu_s_per_million_msgs"] = round(cpu / msgs * 1e6, 2)
print(json.dumps(out))
PY
}

raw_fsync() { # p50/p99 of 4 KiB O_DIRECT write + fdatasync on the store's disk
  python3 - "$BASE" <<'PY'
import mmap, os, sys, time
path = os.path.join(sys.argv[1], "raw-fsync.dat")
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
buf = mmap.mmap(-1, 4096); buf.write(b"x" * 4096)
lat = []
for i in range(2000):
    t = time.perf_counter()
    os.pwritev(fd, [buf], (i % 256) * 4096)
    os.fdatasync(fd)
    lat.append((time.perf_counter() - t) * 1e6)
os.close(fd); os.unlink(path)
lat.sort()
q = lambda p: round(lat[min(len(lat) - 1, int(len(lat) * p))], 1)
print('{"scenario":"raw_4k_write_fdatasync","count":%d,"latency_us":{"p50":%s,"p99":%s,"p999":%s,"max":%s}}' % (len(lat), q(.5), q(.99), q(.999), round(lat[-1], 1)))
PY
}

start_broker ASYNC_FLUSH
run async_1conn_inflight1 produce --topic t1 --size 1024 --connections 1 --inflight 1 --duration "$DUR"
run async_4conn_inflight32 produce --topic t2 --size 1024 --connections 4 --inflight 32 --duration "$DUR"
run async_batch32 produce --topic t3 --size 1024 --connections 2 --inflight 8 --batch 32 --duration "$DUR"
run consume_all consume --topic t2 --group g1 --duration "$DUR"
stop_broker

start_broker SYNC_FLUSH
raw_fsync
run sync_4conn_inflight32 produce --topic t4 --size 1024 --connections 4 --inflight 32 --duration "$DUR"
run sync_1conn_inflight1 produce --topic t5 --size 1024 --connections 1 --inflight 1 --duration "$DUR"
raw_fsync
stop_broker
