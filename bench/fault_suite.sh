#!/usr/bin/env bash
# Fault suite: what posrelay answers, stores and delivers while real redis-server processes
# fail under it (issue 14). For each fault and each --redis-min-replicas-ack setting: fresh
# Redis processes on loopback (bench/lib/redis_topology.sh), two posrelay nodes on the same
# Redis URL, TERMINALS plain-TCP terminals in STORES stores (posrelay-terminal-load, one
# process per node, each node's terminals in their own stores), one order per notification
# registered (POST /v1/orders, half on each node), then a paced, bounded stream of signed
# settlement notifications alternating between the nodes (bench/fault_suite.py stream; a
# non-200 answer is retried 1 s later on the other node, up to 10 attempts, as Midtrans
# retries); the fault is injected when half of them were sent, the stream goes on, then a
# drain (until every order answered 200 reached its terminal, or DRAIN seconds).
#   usage: bench/fault_suite.sh [--short] [--only FAULT[,FAULT...]] [--acks 0|1|0,1]
#                               [--runs FAULT:ACKS[,FAULT:ACKS...]]  (instead of --only/--acks)
#   faults: cluster-kill      Cluster 3 primaries + 3 replicas; SIGKILL a primary, wait for
#                             its replica's promotion, restart it (it rejoins as a replica)
#           sentinel-kill     1 primary + 1 replica + 3 sentinels (quorum 2); SIGKILL the
#                             primary, wait for the sentinels' failover, restart it
#           lagging-promote   1 primary + 2 replicas on redis://; at half the stream one
#                             replica is cut off (REPLICAOF NO ONE); at three quarters the
#                             primary is SIGKILLed and its address served from that replica's
#                             older copy (SAVE, new redis-server on the same port): a failover
#                             to a replica that was behind, the epochs' case
#           cluster-reshard   Cluster 3+3; redis-cli --cluster reshard of 2,000 slots (short:
#                             1,000) between two primaries under the stream
#                             (reshard_keys_moved: the keys the moved slots held)
#   --short: 200 terminals, 20 stores, 100 notifications/s for 8 s (CI); default 1,000
#            terminals, 100 stores, 200/s for 20 s.
#   env: POSRELAY_BIN, LOAD_BIN (the release build's), KEEP_DIR (copy each run's logs,
#        events and results there), DRAIN (s, 30), RT_DEADLINE (s, 30: each topology wait),
#        FAULT_PLAIN_URL=1 (sentinel-kill: posrelay gets redis:// at the primary, not the
#        sentinels: a check of the harness itself on a build without Sentinel support).
# Per fault x setting, one JSON line (all printed last, on stdout):
#   notifications          orders notified (each once, retried until a 200 or 10 attempts)
#   answered_200           orders that got a 200; answers_200/_503/_other: every answer
#                          (0 = no answer: connection refused, reset or 10 s timeout)
#   stored                 orders whose GET /v1/orders/{id} shows settlement after the drain
#   delivered              stored orders whose settlement event reached their terminal
#   lost                   answered 200 but not stored (lost_not_stored), plus stored but
#                          never delivered to a terminal not told to resync
#                          (lost_not_delivered); undelivered_resync_told: stored, not
#                          delivered, the terminal was told resync (it re-reads its orders)
#   lost_after_fault       lost orders first notified after the fault was over
#   dup_seq                (terminal, epoch, seq) seen with two different events
#   lost_epoch_not_told    terminals shown an event that Redis then lost (its epoch is gone)
#                          and never told to resync
#   resyncs                resyncs the load tools were told; terminals_told_resync
#   status                 measured | unsupported (posrelay exited 2 at start: it refused the
#                          URL or the flag, the feature is not in this build; reason says
#                          what it answered) | error (it died, or a step failed)
#   nodes_alive            both posrelay nodes still ran after the drain
# Checks (exit 1 when one fails, after printing every line): unsupported fails; dup_seq,
# lost_epoch_not_told and lost_after_fault are 0 everywhere; lost = 0 with acks 1 (cluster-kill, sentinel-kill) and
# for cluster-reshard at any setting. lost with acks 0 is reported, not checked; so is
# lagging-promote's (replica acks cannot save writes the promoted copy never had).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib/redis_topology.sh
source bench/lib/redis_topology.sh

short=0 only="cluster-kill,sentinel-kill,lagging-promote,cluster-reshard" acks_list="0,1" runs=""
usage="usage: bench/fault_suite.sh [--short] [--only FAULT[,FAULT...]] [--acks 0|1|0,1] [--runs FAULT:ACKS[,...]]"
while [ $# -gt 0 ]; do
  case $1 in
    --short) short=1 ;;
    --only) only=${2:?$usage}; shift ;;
    --acks) acks_list=${2:?$usage}; shift ;;
    --runs) runs=${2:?$usage}; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
if [ "$short" = 1 ]; then
  terms=200 stores=20 rate=100 secs=8 slots=1000
else
  terms=1000 stores=100 rate=200 secs=20 slots=2000
fi
per_node=$((terms / 2)) stores_per_node=$((stores / 2)) orders=$((rate * secs)) tail=$((rate * 3))
# Orders registered: the stream's N plus room for it to go on until TAIL were sent after the
# fault (a slow failover) — at most 3 x N.
drain=${DRAIN:-30}
bin=${POSRELAY_BIN:-build/release/src/posrelay}
load=${LOAD_BIN:-build/release/src/tools/posrelay-terminal-load}
[ -x "$bin" ] && [ -x "$load" ] || {
  cmake --preset release >/dev/null && cmake --build --preset release -j2 --target posrelay posrelay-terminal-load
}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export POSRELAY_SERVER_KEY=${SERVER_KEY:-SB-Mid-server-FAULTKEY}
export POSRELAY_OPERATOR_TOKEN=fault-operator-token
export POSRELAY_TERMINAL_SECRET=fault-terminal-secret
results=$(mktemp)
RT_ON_EXIT='rm -f "$results"'

metric_sum() {  # PORT REGEX: the sum of the samples whose series matches REGEX (0 if none)
  curl -fs "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v r="$2" '$1 ~ r {s += $2} END {print s + 0}'
}
connected() { [ "$(metric_sum "$1" '^posrelay_terminal_connections[{].*transport="tcp"')" = "$2" ]; }
# Orders answered 200 so far whose settlement event some terminal received.
drained() {
  python3 - "$work" <<'PY'
import json, os, sys
w = sys.argv[1]
ok = set()
for l in open(os.path.join(w, "sent.jsonl")):
    r = json.loads(l)
    if 200 in r["codes"]:
        ok.add(r["order"])
got = set()
for n in os.listdir(w):
    if n.startswith("events-"):
        for l in open(os.path.join(w, n)):
            if '"order"' in l:
                try:
                    got.add(json.loads(l)["order"])
                except ValueError:
                    pass
sys.exit(0 if ok <= got else 1)
PY
}

# start_nodes URL ACKS: two posrelay nodes on URL; sets NODE_HTTP, NODE_TERM, NODE_PID.
# Returns 3 (and sets REFUSED) when posrelay exits with 2 before it is ready: it refused the
# configuration (a feature this build does not have); 4 when it died otherwise.
start_nodes() {
  local url=$1 acks=$2 n extra=()
  [ "$acks" != 0 ] && extra=(--redis-min-replicas-ack "$acks")
  NODE_HTTP=() NODE_TERM=() NODE_PID=()
  for n in 0 1; do
    NODE_HTTP[n]=$(rt_free_port) NODE_TERM[n]=$(rt_free_port)
    POSRELAY_REDIS_URL=$url "$bin" --listen "127.0.0.1:${NODE_HTTP[n]}" --terminal-listen "127.0.0.1:${NODE_TERM[n]}" \
      --data-dir "$work/data-$n" --confirm-paid false --poll-rate 0 --terminal-max-connections $((per_node + 100)) \
      --log-level warn "${extra[@]}" 2>"$work/posrelay-$n.log" &
    NODE_PID[n]=$!
    rt_at_exit "kill ${NODE_PID[n]}; wait ${NODE_PID[n]}"
  done
  for n in 0 1; do
    rt_wait "$RT_DEADLINE" "posrelay node $n ready (or gone)" node_ready_or_gone "$n" || return 1
    if ! kill -0 "${NODE_PID[n]}" 2>/dev/null; then
      local rc=0
      wait "${NODE_PID[n]}" || rc=$?
      REFUSED="exit $rc: $(tail -c 600 "$work/posrelay-$n.log" | tr '\n' ' ')"
      [ "$rc" = 2 ] && return 3
      return 4
    fi
  done
}
node_ready_or_gone() {
  ! kill -0 "${NODE_PID[$1]}" 2>/dev/null || curl -fs "http://127.0.0.1:${NODE_HTTP[$1]}/readyz" >/dev/null
}

inject() {  # FAULT: the fault, after half the stream; returns when it is over
  case $1 in
    cluster-kill)
      rt_cluster_kill_primary || return 1
      rt_restart "$RT_KILLED" || return 1
      rt_wait 60 "killed primary rejoined as replica" rt_cluster_rejoined "$RT_KILLED"
      ;;
    sentinel-kill)
      local old=$RT_PRIMARY
      rt_sentinel_kill_primary posrelay || return 1
      rt_restart "$old" || return 1
      rt_wait 60 "old primary rejoined as replica" rt_sentinel_rejoined "$old"
      ;;
    lagging-promote)
      local lag=${RT_REPLICAS[0]} good=${RT_REPLICAS[1]}
      rt_lag_cut "$lag" || return 1
      rt_wait 120 "three quarters of the stream sent" test -e "$work/sent-75" || return 1
      rt_lag_promote "$RT_PRIMARY" "$lag" || return 1
      # The in-sync replica follows the address: it full-syncs from the older copy.
      rt_wait 60 "other replica in sync with the promoted copy" rt_replica_synced "$good" "$RT_PRIMARY"
      ;;
    cluster-reshard)
      rt_cluster_reshard "$slots"
      ;;
  esac
}

topology() {  # FAULT: starts its Redis; prints the URL posrelay gets
  case $1 in
    cluster-kill | cluster-reshard)
      rt_cluster >&2 || return 1
      local p seeds=()
      for p in "${RT_CLUSTER[@]}"; do seeds+=("127.0.0.1:$p"); done
      TOPO_URL="redis-cluster://$(IFS=,; echo "${seeds[*]}")"
      ;;
    sentinel-kill)
      rt_replicated 1 || { rt_log "primary + replica did not come up"; return 1; }
      rt_sentinels posrelay || { rt_log "sentinels did not come up"; return 1; }
      TOPO_URL="redis-sentinel://127.0.0.1:${RT_SENTINELS[0]},127.0.0.1:${RT_SENTINELS[1]},127.0.0.1:${RT_SENTINELS[2]}/posrelay"
      # FAULT_PLAIN_URL=1: redis:// at the primary instead (checks the harness with a build
      # that has no Sentinel client: posrelay stays on the dead address).
      if [ -n "${FAULT_PLAIN_URL:-}" ]; then TOPO_URL="redis://127.0.0.1:$RT_PRIMARY"; fi
      ;;
    lagging-promote)
      rt_replicated 2 || return 1
      TOPO_URL="redis://127.0.0.1:$RT_PRIMARY"
      ;;
  esac
}

emit() { echo "$1" >>"$results"; rt_log "result: $1"; }

fail_line() {  # FAULT ACKS STATUS REASON: the result line of a run that measured nothing
  python3 -c 'import json,sys; print(json.dumps({"fault": sys.argv[1], "acks": int(sys.argv[2]), "status": sys.argv[3], "reason": sys.argv[4].strip()[-300:]}))' "$@"
}

# setup_run FAULT ACKS: Redis, two nodes, orders registered, terminals connected (LOADS set).
# On failure, emits the run's line and returns 1.
setup_run() {
  local fault=$1 acks=$2 n rc=0
  topology "$fault" || { emit "$(fail_line "$fault" "$acks" error "topology did not come up")"; return 1; }
  start_nodes "$TOPO_URL" "$acks" || rc=$?
  case $rc in
    0) ;;
    3) emit "$(fail_line "$fault" "$acks" unsupported "$REFUSED")"; return 1 ;;
    4) emit "$(fail_line "$fault" "$acks" error "$REFUSED")"; return 1 ;;
    *) emit "$(fail_line "$fault" "$acks" error "posrelay not ready")"; return 1 ;;
  esac
  python3 bench/fault_suite.py orders "$work" "$fault$acks" $((orders * 3)) "$per_node" "$stores_per_node"
  python3 bench/fault_suite.py register "$work" "${NODE_HTTP[0]}" "${NODE_HTTP[1]}" ||
    { emit "$(fail_line "$fault" "$acks" error "order registration failed")"; return 1; }
  LOADS=()
  for n in 0 1; do
    "$load" --connect "127.0.0.1:${NODE_TERM[n]}" --terminals "$per_node" --prefix "n$n" --stores "$stores_per_node" \
      --store-base $((n * stores_per_node)) --events-out "$work/events-$n.jsonl" --duration 3600s \
      --connect-rate 2000 --backoff-max 2s --progress 0 --log-level warn >"$work/load-$n.json" 2>"$work/load-$n.log" &
    LOADS+=($!)
    rt_at_exit "kill -INT $!; wait $!"
  done
  for n in 0 1; do
    rt_wait 60 "terminals connected to node $n" connected "${NODE_HTTP[n]}" "$per_node" ||
      { emit "$(fail_line "$fault" "$acks" error "terminals did not connect")"; return 1; }
  done
}

# stream_with_fault FAULT: the stream, the fault at half of it, the drain. Sets FAULT_OK,
# FAULT_MS, NODES_ALIVE; stops the load tools (their summaries written).
stream_with_fault() {
  local fault=$1 stream n t0 t1
  rt_log "$terms terminals connected; streaming $orders notifications at $rate/s"
  python3 bench/fault_suite.py stream "$work" "$rate" "$orders" "$tail" "${NODE_HTTP[0]}" "${NODE_HTTP[1]}" &
  stream=$!
  rt_at_exit "kill $stream; wait $stream"
  FAULT_OK=1 FAULT_MS=0
  rt_wait $((secs * 4)) "half the stream sent" test -e "$work/sent-50" || FAULT_OK=0
  if [ "$FAULT_OK" = 1 ]; then
    t0=$(date +%s%N)
    inject "$fault" || FAULT_OK=0
    t1=$(date +%s%N)
    touch "$work/fault-done"
    FAULT_MS=$(((t1 - t0) / 1000000))
    rt_log "fault $fault over in $FAULT_MS ms"
  fi
  [ "$FAULT_OK" = 1 ] || touch "$work/stop"
  wait "$stream" || true
  rt_wait "$drain" "every order answered 200 delivered (drain)" drained || true
  NODES_ALIVE=1
  for n in 0 1; do
    kill -0 "${NODE_PID[n]}" 2>/dev/null || { NODES_ALIVE=0; rt_log "posrelay node $n died: $(tail -c 300 "$work/posrelay-$n.log")"; }
  done
  for n in 0 1; do kill -INT "${LOADS[n]}" 2>/dev/null || true; done
  for n in 0 1; do wait "${LOADS[n]}" 2>/dev/null || true; done
}

keep_failed() {  # FAULT ACKS: logs, events, lost.jsonl and the Redis logs of a failed run
  local keep p
  keep=$(mktemp -d "${TMPDIR:-/tmp}/fault-suite-failed-$1-$2.XXXXXX")
  cp -r "$work"/. "$keep"/ 2>/dev/null || true
  for p in "${!RT_ARGS[@]}"; do cp "$RT_DIR/$p/redis.log" "$keep/redis-$p.log" 2>/dev/null || true; done
  for p in "${RT_SENTINELS[@]}"; do cp "$RT_DIR/$p/sentinel.log" "$keep/sentinel-$p.log" 2>/dev/null || true; done
  rt_log "failed run kept in $keep; lost orders: $(wc -l <"$work/lost.jsonl" 2>/dev/null || echo ?)"
  head -3 "$work/lost.jsonl" 2>/dev/null | cut -c1-600 >&2 || true
}

run_one() {  # FAULT ACKS
  local fault=$1 acks=$2 line resyncs
  rt_init
  work=$RT_DIR/work
  mkdir -p "$work"
  rt_log "== $fault, --redis-min-replicas-ack $acks"
  setup_run "$fault" "$acks" || return 0
  stream_with_fault "$fault"
  line=$(python3 bench/fault_suite.py count "$work" "${NODE_HTTP[0]}" "$fault" "$acks")
  resyncs=$(($(metric_sum "${NODE_HTTP[0]}" '^posrelay_terminal_resyncs_total([{]|$)') +
    $(metric_sum "${NODE_HTTP[1]}" '^posrelay_terminal_resyncs_total([{]|$)')))
  line=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["fault_injected"]=sys.argv[2]=="1"; d["fault_ms"]=int(sys.argv[3]); d["server_resyncs"]=int(float(sys.argv[4]))
if sys.argv[5]: d["reshard_keys_moved"]=int(sys.argv[5])
d["nodes_alive"]=sys.argv[6]=="1"
print(json.dumps(d))' "$line" "$FAULT_OK" "$FAULT_MS" "$resyncs" "${RT_RESHARD_KEYS:-}" "$NODES_ALIVE")
  emit "$line"
  python3 -c 'import json,sys; sys.path.insert(0, "bench"); import fault_suite as f; sys.exit(1 if f.failures(json.loads(sys.argv[1])) else 0)' "$line" ||
    keep_failed "$fault" "$acks"
  if [ -n "${KEEP_DIR:-}" ]; then
    mkdir -p "$KEEP_DIR/$fault-$acks" && cp -r "$work"/. "$KEEP_DIR/$fault-$acks"/ 2>/dev/null || true
  fi
}

plan=()
if [ -n "$runs" ]; then
  IFS=, read -r -a plan <<<"$runs"
else
  IFS=, read -r -a faults <<<"$only"
  IFS=, read -r -a settings <<<"$acks_list"
  for fault in "${faults[@]}"; do for acks in "${settings[@]}"; do plan+=("$fault:$acks"); done; done
fi
for item in "${plan[@]}"; do
  case ${item%%:*} in cluster-kill | sentinel-kill | lagging-promote | cluster-reshard) ;;
    *) echo "unknown fault: ${item%%:*}" >&2; exit 2 ;;
  esac
  case ${item#*:} in 0 | 1) ;; *) echo "--redis-min-replicas-ack must be 0 or 1 here: $item" >&2; exit 2 ;; esac
done
start_s=$(date +%s)
for item in "${plan[@]}"; do
  run_one "${item%%:*}" "${item#*:}"
  rt_cleanup
done
rt_log "fault suite: ${#plan[@]} runs in $(($(date +%s) - start_s)) s"
status=0
python3 bench/fault_suite.py verdict "$results" >&2 || status=1
cat "$results"
rm -f "$results"
exit "$status"
