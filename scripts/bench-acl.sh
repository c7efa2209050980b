#!/usr/bin/env bash
# The cost of access control on the broker: two release brokers on loopback, one with
# aclEnable=false and one with aclEnable=true (one admin account), and ramjet-bench
# produce (1 KiB) against each in turn, every request signed in both cases so that only
# the broker's check differs (plus an unsigned run against the ACL-off broker: the
# client's signing cost). One connection with one request in flight, then 4 connections
# with 32 each; the whole round is repeated, in the opposite order each time. Prints one JSON summary per run with the
# broker's CPU seconds per million messages.
#
#   scripts/bench-acl.sh [DURATION_SECS] [ROUNDS] [STORE_DIR]
#
# Binaries: target/release (override with RAMJET_BIN_DIR). Builds them if absent.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
ROUNDS=${2:-2}
BASE=${3:-/var/tmp/ramjet-bench-acl}
BIN=${RAMJET_BIN_DIR:-target/release}
if [ ! -x "$BIN/ramjet-broker" ] || [ ! -x "$BIN/ramjet-bench" ]; then
  cargo build --release -p ramjet-server -p ramjet-bench --bins
fi
ulimit -l unlimited 2>/dev/null || true
CLK=$(getconf CLK_TCK)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$BASE"
}
trap cleanup EXIT
rm -rf "$BASE"; mkdir -p "$BASE"
AK=benchAdmin1
SK=benchSecret1
cat >"$BASE/plain_acl.yml" <<EOF
accounts:
  - accessKey: $AK
    secretKey: $SK
    admin: true
EOF
printf 'aclEnable=false\n' >"$BASE/off.conf"
printf 'aclEnable=true\naclFilePath=%s\ninnerClientAuthenticationCredentials={"accessKey":"%s","secretKey":"%s"}\n' \
  "$BASE/plain_acl.yml" "$AK" "$SK" >"$BASE/on.conf"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_broker() { # $1 name (off|on): sets PID_$1 and NS_$1
  local log="$BASE/$1.log"
  RUST_LOG=warn "$BIN/ramjet-broker" -c "$BASE/$1.conf" --store-path "$BASE/store-$1" \
    --broker-ip 127.0.0.1 --listen-port 0 --namesrv-port 0 2>"$log" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 200); do
    if grep -q "ready:" "$log"; then break; fi
    sleep 0.1
  done
  local ns
  ns=$(grep -o 'namesrv [0-9.:]*' "$log" | awk '{print $2}')
  [ -n "$ns" ] || { cat "$log"; exit 1; }
  printf -v "PID_$1" '%s' "$pid"
  printf -v "NS_$1" '%s' "$ns"
}

run() { # name, broker (off|on), then bench args
  local name=$1 which=$2; shift 2
  local pid_var="PID_$which" ns_var="NS_$which"
  local pid=${!pid_var} ns=${!ns_var}
  local before after out
  before=$(cpu_ticks "$pid")
  out=$("$BIN/ramjet-bench" produce "$@" -n "$ns" --size 1024 --duration "$DUR" --json 2>/dev/null)
  after=$(cpu_ticks "$pid")
  python3 - "$name" "$out" "$before" "$after" "$CLK" <<'PY'
import json, sys
name, out, before, after, clk = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cpu = (after - before) / clk
msgs = max(out.get("messages", 0), 1)
print(json.dumps({"scenario": name, "msgs_per_s": out.get("msgs_per_s"),
                  "messages": out.get("messages"), "errors": out.get("errors"),
                  "latency_us": out.get("latency_us"), "broker_cpu_s": round(cpu, 2),
                  "broker_cpu_s_per_million_msgs": round(cpu / msgs * 1e6, 2)}))
PY
}

start_broker off
start_broker on
SIGN=(--access-key "$AK" --secret-key "$SK")
for round in $(seq 1 "$ROUNDS"); do
  for shape in "1 1" "4 32"; do
    set -- $shape
    c=$1 i=$2
    off_unsigned() { run "r${round}_${c}x${i}_acl_off_unsigned" off --topic "u${c}x${i}" --connections "$c" --inflight "$i"; }
    off_signed() { run "r${round}_${c}x${i}_acl_off_signed" off --topic "s${c}x${i}" --connections "$c" --inflight "$i" "${SIGN[@]}"; }
    on_signed() { run "r${round}_${c}x${i}_acl_on_signed" on --topic "s${c}x${i}" --connections "$c" --inflight "$i" "${SIGN[@]}"; }
    # Odd rounds off first, even rounds on first, so a drift in the machine's load
    # favours neither side.
    if [ $((round % 2)) -eq 1 ]; then off_unsigned; off_signed; on_signed; else on_signed; off_signed; off_unsigned; fi
  done
done
