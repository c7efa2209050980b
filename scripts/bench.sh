#!/usr/bin/env bash
# The benchmark suite: starts a release broker per flush mode on loopback, runs
# ramjet-bench scenarios against it, and prints one JSON summary per scenario plus the
# broker's CPU seconds per million messages. Also measures the disk's raw 4 KiB
# write+fdatasync latency in the same run, for comparison with SYNC_FLUSH, and the raw
# O_DIRECT sequential write throughput, for comparison with `ramjet-bench storage`. Ends
# with one line per row of issue 17's table: the figure, its target, and the ratio.
# E2E_RATE (default 10000) is the producer rate of the end-to-end row.
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
cleanup() {
  [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
  rm -rf "$BASE/store" "$BASE/storage-store"
  true
}
RESULTS=$(mktemp)
trap 'cleanup; rm -f "$RESULTS"' EXIT

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

record() { tee -a "$RESULTS"; }

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

raw_seq_write() { # MB/s of 1 MiB O_DIRECT sequential writes (at most 2 GiB or $1 s), fdatasync at the end
  python3 - "$BASE" "$1" <<'PY'
import mmap, os, sys, time
path = os.path.join(sys.argv[1], "raw-seq.dat")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
buf = mmap.mmap(-1, 1 << 20); buf.write(b"r" * (1 << 20))
limit, total, t0 = float(sys.argv[2]), 0, time.perf_counter()
while total < (2 << 30) and time.perf_counter() - t0 < limit:
    total += os.pwrite(fd, buf, total)
os.fdatasync(fd)
secs = time.perf_counter() - t0
os.close(fd); os.unlink(path)
print('{"scenario":"raw_odirect_seq_write","bytes":%d,"elapsed_s":%.3f,"mb_per_s":%.1f}' % (total, secs, total / secs / 1e6))
PY
}

e2e() { # a long-polling consumer of a fresh topic while one producer sends at $1 msgs/s
  local topic=t6 cpid
  "$BIN/ramjet-bench" produce --topic $topic --size 1024 --messages 1 -n "$NS" >/dev/null 2>&1
  "$BIN/ramjet-bench" consume --topic $topic --group e2e --latency-from body \
    --duration "$((DUR + 2))" -n "$NS" --json >"$BASE/e2e.json" 2>/dev/null &
  cpid=$!
  run "produce_rate_$1" produce --topic $topic --size 1024 --connections 1 --inflight 32 \
    --rate "$1" --duration "$DUR"
  wait $cpid
  python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); o["scenario"]="e2e_rate_"+sys.argv[2]; print(json.dumps(o))' \
    "$BASE/e2e.json" "$1"
  rm -f "$BASE/e2e.json"
}

summary() { # one line per row of issue 17's table
  python3 - "$RESULTS" <<'PY'
import json, sys
rows = {}
for text in open(sys.argv[1]):
    text = text.strip()
    if text.startswith("{"):
        o = json.loads(text)
        rows.setdefault(o["scenario"], []).append(o)
def last(name):
    return rows.get(name, [None])[-1]
def lat(o, q):
    return max((o or {}).get("latency_us", {}).get(q) or 1, 1)
def line(row, now, target, ratio):
    print("%-34s %-44s %-28s %s" % (row, now, target, ratio))
print("--- issue 17 table (ratio: figure over target, >= 1.00 meets it) ---")
a1 = last("async_1conn_inflight1")
if a1:
    line("async 1 conn x 1 in flight", "%.0f/s p50 %s us p99 %s us" % (a1["msgs_per_s"], lat(a1, "p50"), lat(a1, "p99")),
         ">= 15000/s, p99 <= 200 us", "%.2f, %.2f" % (a1["msgs_per_s"] / 15000, 200 / lat(a1, "p99")))
    cpm = max(a1["broker_cpu_s_per_million_msgs"], 0.01)
    line("broker CPU at that load", "%.1f CPU-s per million" % cpm, "<= 40 CPU-s per million", "%.2f" % (40 / cpm))
a4 = last("async_4conn_inflight32")
if a4:
    line("async 4 conn x 32 in flight", "%.0f/s p99 %s us, %.1f CPU-s/M" % (a4["msgs_per_s"], lat(a4, "p99"), a4["broker_cpu_s_per_million_msgs"]),
         ">= 100000/s, p99 <= 3000 us", "%.2f, %.2f" % (a4["msgs_per_s"] / 1e5, 3000 / lat(a4, "p99")))
b = last("async_batch32")
if b:
    line("batches of 32", "%.0f msgs/s = %.0f MB/s, %.1f CPU-s/M" % (b["msgs_per_s"], b["mb_per_s"], b["broker_cpu_s_per_million_msgs"]),
         ">= 800 MB/s", "%.2f" % (b["mb_per_s"] / 800))
for k in [k for k in rows if k.startswith("e2e_rate_")]:
    e = last(k)
    line("end to end at %s msgs/s" % k[len("e2e_rate_"):], "p50 %s us p99 %s us" % (lat(e, "p50"), lat(e, "p99")),
         "p99 <= 1000 us", "%.2f" % (1000 / lat(e, "p99")))
raw, s1 = rows.get("raw_4k_write_fdatasync", []), last("sync_1conn_inflight1")
if s1 and raw:
    rp99 = sum(lat(r, "p99") for r in raw) / len(raw)
    line("SYNC_FLUSH 1 conn x 1 in flight", "p99 %s us = %.1fx raw p99 %.0f us" % (lat(s1, "p99"), lat(s1, "p99") / rp99, rp99),
         "<= 2x raw", "%.2f" % (2 * rp99 / lat(s1, "p99")))
st, rw = last("storage_async"), last("raw_odirect_seq_write")
if st and rw:
    line("storage only, async appends", "%.0f MB/s = %.0f%% of raw %.0f MB/s" % (st["mb_per_s"], 100 * st["mb_per_s"] / rw["mb_per_s"], rw["mb_per_s"]),
         ">= 70% of raw", "%.2f" % (st["mb_per_s"] / rw["mb_per_s"] / 0.7))
PY
}

start_broker ASYNC_FLUSH
run async_1conn_inflight1 produce --topic t1 --size 1024 --connections 1 --inflight 1 --duration "$DUR" | record
run async_4conn_inflight32 produce --topic t2 --size 1024 --connections 4 --inflight 32 --duration "$DUR" | record
run async_batch32 produce --topic t3 --size 1024 --connections 2 --inflight 8 --batch 32 --duration "$DUR" | record
run consume_all consume --topic t2 --group g1 --duration "$DUR" | record
e2e "${E2E_RATE:-10000}" | record
stop_broker

start_broker SYNC_FLUSH
raw_fsync | record
run sync_4conn_inflight32 produce --topic t4 --size 1024 --connections 4 --inflight 32 --duration "$DUR" | record
run sync_1conn_inflight1 produce --topic t5 --size 1024 --connections 1 --inflight 1 --duration "$DUR" | record
raw_fsync | record
stop_broker

rm -rf "$BASE/storage-store"
"$BIN/ramjet-bench" storage --store-path "$BASE/storage-store" --size 1024 --duration "$DUR" \
  --flush-disk-type ASYNC_FLUSH --inflight 64 --json 2>/dev/null \
  | python3 -c 'import json,sys; o=json.load(sys.stdin); o["scenario"]="storage_async"; print(json.dumps(o))' \
  | record
rm -rf "$BASE/storage-store"
raw_seq_write "$DUR" | record
summary
