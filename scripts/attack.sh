#!/usr/bin/env bash
# Issue 13's attack measurement in one run: starts a release broker (2 shards, embedded
# NameServer, /metrics, a fresh store under BASE_DIR), runs `ramjet-bench attack` against
# it (every attack, a normal producer alongside), then stops the broker and deletes the
# store. See docs/attacks.md for what each attack does and what the columns mean.
#
#   scripts/attack.sh [BASE_DIR] [ramjet-bench attack flags...]
#   scripts/attack.sh /work/ramjet-attack --json
#
# BASE_DIR should be on a real filesystem (O_DIRECT), not tmpfs. Binaries: target/release
# (override with RAMJET_BIN_DIR); built when absent.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:-/var/tmp/ramjet-attack}
[ $# -gt 0 ] && shift
BIN=${RAMJET_BIN_DIR:-target/release}
if [ ! -x "$BIN/ramjet-broker" ] || [ ! -x "$BIN/ramjet-bench" ]; then
  nice cargo build --release -p ramjet-server -p ramjet-bench --bins
fi
ulimit -l unlimited 2>/dev/null || true
# Attack e opens 1,050 connections; the broker and the tool each need a descriptor per one.
ulimit -n 8192 2>/dev/null || true
mkdir -p "$BASE"
STORE=$(mktemp -d "$BASE/store.XXXXXX")
LOG="$STORE.log"
BROKER_PID=""
cleanup() {
  if [ -n "$BROKER_PID" ]; then
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  rm -rf "$STORE" "$LOG"
}
trap cleanup EXIT

RUST_LOG=warn "$BIN/ramjet-broker" --store-path "$STORE" --broker-ip 127.0.0.1 \
  --listen-port 0 --namesrv-port 0 --shards 2 --metrics-port 0 2>"$LOG" &
BROKER_PID=$!
for _ in $(seq 1 600); do
  grep -q " ready: " "$LOG" && break
  kill -0 "$BROKER_PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
READY=$(grep " ready: " "$LOG" || true)
[ -n "$READY" ] || { echo "broker not ready in 60 s" >&2; cat "$LOG" >&2; exit 1; }
word() { echo "$READY" | awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}'; }
echo "$READY" >&2
"$BIN/ramjet-bench" attack -n "$(word namesrv)" --broker "$(word broker)" \
  --pid "$BROKER_PID" --metrics "$(word metrics)" "$@"
