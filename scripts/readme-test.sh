#!/usr/bin/env bash
# Runs the README's commands exactly as written, as a newcomer would, from a fresh copy of
# the repository, in a private network namespace (so the README's default ports are free
# and nothing leaves loopback):
#
#   1. `readme-test: start`: scripts/run-broker.sh (default relative store), wait for the
#      ready line; `readme-test: bench`: the produce and consume lines against it (both exit
#      0, consume reads messages); every `readme-example:` Rust example runs against it and
#      exits 0; Ctrl-C (SIGINT to the process group) → clean stop, exit 0, store created
#      in the directory it was started from.
#   2. target/release/ramjet-broker with no flags at all, in an empty directory: ready,
#      ./ramjet-store created there, SIGINT → exit 0.
#   3. `readme-test: cluster`: scripts/cluster.sh with a relative directory, run from
#      a sub-directory of the copy's parent (the directory is relative to the caller).
#
# The copy is every file git knows (tracked and untracked-not-ignored) under
# $RAMJET_README_DIR (default target/readme-test/repo of this checkout); its own target/
# is kept between runs as a build cache, everything else is laid anew each run.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE="${RAMJET_README_DIR:-$ROOT/target/readme-test}"

if [ "${RAMJET_README_IN_NS:-}" != 1 ]; then
  # Lay the fresh copy, then re-run this script inside a new network namespace.
  mkdir -p "$BASE/repo"
  find "$BASE/repo" -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
    tar --null -T - -cf -) | (cd "$BASE/repo" && tar -xf -)
  rm -rf "$BASE/run"
  mkdir -p "$BASE/run"
  # Everything cargo will need, fetched while the network is there (the namespace has
  # only its own loopback).
  (cd "$BASE/repo" && cargo fetch --quiet)
  export RAMJET_README_IN_NS=1 RAMJET_README_BASE="$BASE"
  exec unshare --net -- bash "$BASE/repo/scripts/readme-test.sh"
fi

BASE="$RAMJET_README_BASE"
REPO="$BASE/repo"
RUN="$BASE/run"
ip link set lo up
export CARGO_NET_OFFLINE=true
ulimit -l unlimited 2>/dev/null || true
unset RUST_LOG
fail() { echo "readme-test: FAIL: $*" >&2; exit 1; }
say() { echo "readme-test: $*" >&2; }

# The shell lines of the block after `<!-- readme-test: NAME -->`.
block() {
  awk -v name="$1" '
    $0 == "<!-- readme-test: " name " -->" { armed = 1; next }
    armed && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }
  ' "$REPO/README.md"
}
# The examples the README shows: "path[ features]" per line.
examples() {
  sed -n 's/^<!-- readme-example: \([^ ]*\)\( features=\([^ ]*\)\)\{0,1\} -->$/\1 \3/p' \
    "$REPO/README.md"
}

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  if [ -d "$RUN/cluster-caller" ]; then
    (cd "$RUN/cluster-caller" && "$REPO/scripts/cluster.sh" stop ramjet-cluster >/dev/null 2>&1) || true
  fi
}
trap cleanup EXIT

# Starts `bash -c LINE` in its own process group from directory $1, log in $2; sets BG to
# its pid (a child of this shell, so `wait` can read its exit status).
start_bg() {
  (cd "$1" && exec setsid bash -c "$3" >"$2" 2>&1 </dev/null) &
  BG=$!
  PIDS+=("$BG")
}
# Waits (bounded) for a ready line in log $2 of process $1.
wait_ready() {
  local deadline=$((SECONDS + ${3:-1500}))
  while [ $SECONDS -lt $deadline ]; do
    grep -q "ramjet-broker ready: " "$2" && return 0
    kill -0 "$1" 2>/dev/null || { tail -30 "$2" >&2; fail "$4 exited before its ready line"; }
    sleep 0.2
  done
  tail -30 "$2" >&2
  fail "$4: no ready line"
}
# Sends SIGINT (Ctrl-C) to the process group of $1 and waits (bounded) for exit 0.
ctrl_c() {
  kill -INT -- "-$1"
  local deadline=$((SECONDS + 60)) status=0
  while kill -0 "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "$2 still running 60 s after Ctrl-C"
    sleep 0.1
  done
  wait "$1" || status=$?
  [ "$status" = 0 ] || { tail -20 "$3" >&2; fail "$2 exited $status after Ctrl-C"; }
}

# 1. The single-node broker as the README starts it, from the copy's root.
START=$(block start)
[ -n "$START" ] || fail "README has no readme-test: start block"
say "start: $START (builds the release binaries)"
start_bg "$REPO" "$RUN/start.log" "$START"
pid=$BG
wait_ready "$pid" "$RUN/start.log" 1500 "run-broker.sh"
grep "ramjet-broker ready: " "$RUN/start.log" >&2
[ -f "$REPO/ramjet-store/store.meta" ] || fail "no ./ramjet-store/store.meta in the copy"
(cd "$REPO" && cargo build --release -p ramjet-bench -p ramjet-admin)
n=0
while IFS= read -r line; do
  [ -n "$line" ] || continue
  say "bench: $line"
  out=$(cd "$REPO" && bash -c "$line" 2>"$RUN/bench-$n.err") || {
    rc=$?; tail -20 "$RUN/bench-$n.err" >&2; fail "exit $rc from: $line"; }
  echo "$out" >&2
  count=$(echo "$out" | sed -n 's/^[a-z]*: \([0-9]*\) messages.*/\1/p' | head -1)
  [ "${count:-0}" -gt 0 ] || fail "no messages from: $line"
  n=$((n + 1))
done < <(block bench)
[ "$n" -ge 2 ] || fail "README bench block has $n lines, expected produce and consume"
while read -r path features; do
  name=$(basename "$path" .rs)
  crate_dir=${path%%/examples/*}
  feature_args=()
  [ -z "$features" ] || feature_args=(--features "$features")
  say "example: $path ${features:+(features $features)}"
  (cd "$REPO/$crate_dir" && timeout 900 cargo run --release "${feature_args[@]}" --example "$name") \
    >"$RUN/example-$name.out" 2>"$RUN/example-$name.err" || {
    tail -20 "$RUN/example-$name.err" >&2; fail "example $path failed"; }
  cat "$RUN/example-$name.out" >&2
  grep -q '^received ' "$RUN/example-$name.out" || fail "example $path printed no received message"
done < <(examples)
ctrl_c "$pid" "run-broker.sh" "$RUN/start.log"
grep -q "stopped cleanly" "$RUN/start.log" || fail "no clean stop line"
say "start, bench, examples, Ctrl-C: ok"

# 2. No flags at all, in an empty directory.
mkdir -p "$RUN/empty"
start_bg "$RUN/empty" "$RUN/noflags.log" "exec '$REPO/target/release/ramjet-broker'"
pid=$BG
wait_ready "$pid" "$RUN/noflags.log" 60 "ramjet-broker (no flags)"
grep "ramjet-broker ready: " "$RUN/noflags.log" >&2
[ -f "$RUN/empty/ramjet-store/store.meta" ] || fail "no ramjet-store in the empty directory"
ctrl_c "$pid" "ramjet-broker (no flags)" "$RUN/noflags.log"
say "no flags in an empty directory: ok"

# 3. The cluster block, run from a directory that is not the repository's root, with the
#    script called by a path relative to it.
CLUSTER=$(block cluster)
[ -n "$CLUSTER" ] || fail "README has no readme-test: cluster block"
mkdir -p "$RUN/cluster-caller"
# The README's lines call scripts/ and target/ from the repository root; from elsewhere a
# user would prefix them: do that, so the relative cluster directory is the caller's.
rel=$(realpath --relative-to="$RUN/cluster-caller" "$REPO")
while IFS= read -r line; do
  [ -n "$line" ] || continue
  line=${line%%#*}
  cmd="$rel/$line"
  say "cluster: $cmd"
  out=$(cd "$RUN/cluster-caller" && timeout 600 bash -c "$cmd" 2>&1) || {
    rc=$?; echo "$out" | tail -20 >&2; fail "exit $rc from: $cmd"; }
  echo "$out" | tail -3 | tee -a "$RUN/cluster.out" >&2
done <<<"$CLUSTER"
[ -f "$RUN/cluster-caller/ramjet-cluster/broker-a-master.log" ] ||
  fail "cluster logs are not under the caller's relative directory"
[ ! -e "$REPO/ramjet-cluster" ] || fail "cluster directory landed in the repository root"
grep -q "cluster up: " "$RUN/cluster.out" || fail "cluster start printed no 'cluster up'"
grep -q "cluster stopped (6 processes)" "$RUN/cluster.out" || fail "cluster stop did not stop 6 processes"
say "cluster with a relative directory: ok"
rm -rf "$RUN" "$REPO/ramjet-store"
echo "readme-test: 3 passed, 0 failed"
