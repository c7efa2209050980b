#!/usr/bin/env bash
# A local cluster on loopback: two NameServers and two broker groups (broker-a and
# broker-b of cluster RamjetCluster), each a master and a slave, every process with its
# own data folder and log under DIR.
#
# With MODE=controller (RocketMQ 5 controller mode, automatic failover): three
# NameServers that together form the controller quorum (enableControllerInNamesrv, Raft;
# controllers on CONTROLLER_PORT, +1, +2) and one broker group broker-a of three replicas
# (enableControllerMode; the controller picks the master), as namesrv.conf and broker.conf
# files under DIR. Inspect it with
#   ramjet-admin getControllerMetaData -a 127.0.0.1:9880
#   ramjet-admin getSyncStateSet -a 127.0.0.1:9880 -b broker-a
#
#   scripts/cluster.sh start DIR    start everything, wait for every ready line
#   scripts/cluster.sh stop DIR     SIGTERM everything (clean stop), SIGKILL after 30 s
#   scripts/cluster.sh status DIR   which processes run
#
# Environment:
#   ROLE=SYNC_MASTER|ASYNC_MASTER  role of both masters (default ASYNC_MASTER)
#   FLUSH=ASYNC_FLUSH|SYNC_FLUSH   flushDiskType of every broker (default ASYNC_FLUSH)
#   SHARDS=N                       shards per broker, the same for master and slave (1)
#   NAMESRV_PORT=P                 NameServers on P and P+1 (9876)
#   BROKER_PORT=P                  broker-a master P, slave P+10; broker-b master P+20,
#                                  slave P+30 (10911); each master's HA port is its + 1, gRPC its + 5
#   RAMJET_BIN_DIR                 binaries (target/release; built when absent)
#   MODE=controller                the controller topology above (default: master/slave)
#   CONTROLLER_PORT=P              controllers on P, P+1, P+2 (9880)
#   INSYNC=N                       controller mode: inSyncReplicas, minInSyncReplicas (2, 1)
#
# Clients use NameServers "127.0.0.1:9876;127.0.0.1:9877", e.g.
#   target/release/ramjet-bench produce -n "127.0.0.1:9876;127.0.0.1:9877" --duration 10
set -euo pipefail
CMD=${1:-}
DIR=${2:-}
if [ -z "$CMD" ] || [ -z "$DIR" ]; then
  sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
# DIR (and RAMJET_BIN_DIR) are relative to where the script was called from.
if [ "$CMD" = start ]; then mkdir -p "$DIR"; fi
[ -d "$DIR" ] || { echo "no cluster directory $DIR" >&2; exit 1; }
DIR="$(cd "$DIR" && pwd)"
if [ -n "${RAMJET_BIN_DIR:-}" ]; then RAMJET_BIN_DIR="$(cd "$RAMJET_BIN_DIR" && pwd)"; fi
cd "$(dirname "$0")/.."
ROLE=${ROLE:-ASYNC_MASTER}
FLUSH=${FLUSH:-ASYNC_FLUSH}
SHARDS=${SHARDS:-1}
NS_PORT=${NAMESRV_PORT:-9876}
BROKER_PORT=${BROKER_PORT:-10911}
BIN=${RAMJET_BIN_DIR:-target/release}
NAMESRV="127.0.0.1:${NS_PORT};127.0.0.1:$((NS_PORT + 1))"
MODE=${MODE:-}
# stop and status find a controller-mode cluster by its files.
if [ "$CMD" != start ] && [ -f "$DIR/namesrv-3.conf" ]; then MODE=controller; fi
CTRL_PORT=${CONTROLLER_PORT:-9880}
if [ "$MODE" = controller ]; then
  NAMESRV="127.0.0.1:${NS_PORT};127.0.0.1:$((NS_PORT + 1));127.0.0.1:$((NS_PORT + 2))"
  CONTROLLERS="127.0.0.1:${CTRL_PORT};127.0.0.1:$((CTRL_PORT + 1));127.0.0.1:$((CTRL_PORT + 2))"
  PEERS="n0-127.0.0.1:${CTRL_PORT};n1-127.0.0.1:$((CTRL_PORT + 1));n2-127.0.0.1:$((CTRL_PORT + 2))"
  NAMES="namesrv-1 namesrv-2 namesrv-3 broker-a-1 broker-a-2 broker-a-3"
else
  NAMES="namesrv-1 namesrv-2 broker-a-master broker-b-master broker-a-slave broker-b-slave"
fi

wait_ready() { # $1 name
  local log="$DIR/$1.log"
  for _ in $(seq 1 600); do
    if grep -q " ready: " "$log" 2>/dev/null; then
      grep " ready: " "$log"
      return 0
    fi
    if ! kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; then
      echo "$1 exited:" >&2; tail -20 "$log" >&2; return 1
    fi
    sleep 0.1
  done
  echo "$1 not ready after 60 s:" >&2; tail -20 "$log" >&2; return 1
}

launch() { # $1 name, then the command
  local name=$1; shift
  if [ -f "$DIR/$name.pid" ] && kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null; then
    echo "$name already runs (pid $(cat "$DIR/$name.pid"))" >&2; return 1
  fi
  RUST_LOG=${RUST_LOG:-info} nohup "$@" >"$DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
  wait_ready "$name"
}

broker() { # $1 name, $2 broker name, $3 port, $4 id, $5 role
  mkdir -p "$DIR/$1"
  launch "$1" "$BIN/ramjet-broker" --store-path "$(cd "$DIR/$1" && pwd)" \
    --broker-ip 127.0.0.1 --listen-port "$3" --grpc-port "$(($3 + 5))" -n "$NAMESRV" --shards "$SHARDS" \
    --cluster RamjetCluster --broker-name "$2" --broker-id "$4" --broker-role "$5" \
    --flush-disk-type "$FLUSH"
}

controller_namesrv() { # $1 index 0..2: NameServer and controller member n$1
  local name="namesrv-$(($1 + 1))"
  mkdir -p "$DIR/$name"
  cat >"$DIR/$name.conf" <<CONF
listenPort=$((NS_PORT + $1))
enableControllerInNamesrv=true
controllerDLegerGroup=RamjetController
controllerDLegerPeers=$PEERS
controllerDLegerSelfId=n$1
controllerStorePath=$(cd "$DIR/$name" && pwd)/controller
enableElectUncleanMaster=false
controllerHeartBeatTimeoutMills=${CONTROLLER_HEARTBEAT_TIMEOUT_MS:-10000}
CONF
  launch "$name" "$BIN/ramjet-namesrv" --bind-ip 127.0.0.1 -c "$DIR/$name.conf"
}

controller_broker() { # $1 index 1..3: replica broker-a-$1
  local name="broker-a-$1"
  local port=$((BROKER_PORT + ($1 - 1) * 10))
  mkdir -p "$DIR/$name"
  cat >"$DIR/$name.conf" <<CONF
brokerClusterName=RamjetCluster
brokerName=broker-a
listenPort=$port
storePathRootDir=$(cd "$DIR/$name" && pwd)
namesrvAddr=$NAMESRV
enableControllerMode=true
controllerAddr=$CONTROLLERS
flushDiskType=$FLUSH
allAckInSyncStateSet=false
inSyncReplicas=${INSYNC:-2}
minInSyncReplicas=1
CONF
  launch "$name" "$BIN/ramjet-broker" -c "$DIR/$name.conf" --broker-ip 127.0.0.1 \
    --shards "$SHARDS"
}

case "$CMD" in
  start)
    if [ "$MODE" = controller ]; then
      if [ ! -x "$BIN/ramjet-broker" ] || [ ! -x "$BIN/ramjet-namesrv" ]; then
        cargo build --release -p ramjet-server --bins
      fi
      ulimit -l unlimited 2>/dev/null || true
      for i in 0 1 2; do controller_namesrv "$i"; done
      for i in 1 2 3; do controller_broker "$i"; done
      echo "cluster up: NameServers $NAMESRV; controllers $CONTROLLERS; logs and data in $DIR"
      exit 0
    fi
    if [ ! -x "$BIN/ramjet-broker" ] || [ ! -x "$BIN/ramjet-namesrv" ]; then
      cargo build --release -p ramjet-server --bins
    fi
    ulimit -l unlimited 2>/dev/null || true
    mkdir -p "$DIR"
    launch namesrv-1 "$BIN/ramjet-namesrv" --listen-port "$NS_PORT" --bind-ip 127.0.0.1
    launch namesrv-2 "$BIN/ramjet-namesrv" --listen-port "$((NS_PORT + 1))" --bind-ip 127.0.0.1
    broker broker-a-master broker-a "$BROKER_PORT" 0 "$ROLE"
    broker broker-b-master broker-b "$((BROKER_PORT + 20))" 0 "$ROLE"
    broker broker-a-slave broker-a "$((BROKER_PORT + 10))" 1 SLAVE
    broker broker-b-slave broker-b "$((BROKER_PORT + 30))" 1 SLAVE
    echo "cluster up: NameServers $NAMESRV; logs and data in $DIR"
    ;;
  stop)
    pids=()
    for name in $NAMES; do
      f="$DIR/$name.pid"
      [ -f "$f" ] || continue
      pid=$(cat "$f")
      if kill -TERM "$pid" 2>/dev/null; then pids+=("$pid"); fi
      rm -f "$f"
    done
    for pid in "${pids[@]}"; do
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    done
    echo "cluster stopped (${#pids[@]} processes)"
    ;;
  status)
    for name in $NAMES; do
      f="$DIR/$name.pid"
      if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
        echo "$name running (pid $(cat "$f"))"
      else
        echo "$name stopped"
      fi
    done
    ;;
  *)
    echo "unknown command $CMD (start|stop|status)" >&2; exit 2 ;;
esac
