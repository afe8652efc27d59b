#!/usr/bin/env bash
# What each node receives from Redis per event committed: two release posrelay nodes on one
# Redis, TERMINALS plain-TCP terminals split over them (posrelay-terminal-load, one process
# per node; node 0's terminals in stores S-0..S-<STORES/2 - 1>, node 1's in the others), then
# EVENTS signed settlement notifications for orders of random terminals (registered first,
# POST /v1/orders), paced at RATE/s and alternating between the nodes. From each node's
# /metrics: the live-feed messages it received (FEED_METRIC, default
# posrelay_event_feed_events_total) during the notifications, divided by the events committed
# fleet-wide (posrelay_commits_total{outcome="new"} of both nodes). With a feed per store a
# node receives only its own stores' events: ≈ 0.5 each with two nodes; a fleet-wide channel
# gives ≈ 1.
#   usage: bench/feed_per_node.sh [TERMINALS] [STORES] [EVENTS] [RATE]   (10000, 1000, 5000, 500)
#   env:   POSRELAY_BIN, LOAD_BIN (the release build's); TOPOLOGY=single (default: one
#          redis-server started here) or cluster (3 primaries, redis-cluster://); REDIS_URL
#          (a Redis of yours instead);
#          FEED_METRIC; KEEP_DIR (copy logs there)
# Prints per node one JSON line, then last one line with both ratios.
# Needs: release build, python3, redis-server. Raises the open-file limit to the hard limit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib/redis_topology.sh
source bench/lib/redis_topology.sh
terms=${1:-10000} stores=${2:-1000} events=${3:-5000} rate=${4:-500}
per_node=$((terms / 2)) stores_per_node=$((stores / 2))
bin=${POSRELAY_BIN:-build/release/src/posrelay}
load=${LOAD_BIN:-build/release/src/tools/posrelay-terminal-load}
feed=${FEED_METRIC:-posrelay_event_feed_events_total}
[ -x "$bin" ] && [ -x "$load" ] || {
  cmake --preset release >/dev/null && cmake --build --preset release -j2 --target posrelay posrelay-terminal-load
}
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((per_node + 500)) ]; then
  echo "open-file limit $(ulimit -n) is too low for $per_node terminals per process" >&2
  exit 1
fi
export POSRELAY_SERVER_KEY=${SERVER_KEY:-SB-Mid-server-FEEDKEY}
export POSRELAY_OPERATOR_TOKEN=feed-operator-token
export POSRELAY_TERMINAL_SECRET=feed-terminal-secret
rt_init
work=$RT_DIR/work
mkdir -p "$work"
[ -n "${KEEP_DIR:-}" ] && rt_at_exit "mkdir -p '$KEEP_DIR' && cp -r '$work'/. '$KEEP_DIR'/"
url=${REDIS_URL:-}
if [ -z "$url" ] && [ "${TOPOLOGY:-single}" = cluster ]; then
  rt_cluster 0
  url="redis-cluster://127.0.0.1:${RT_CLUSTER[0]},127.0.0.1:${RT_CLUSTER[1]},127.0.0.1:${RT_CLUSTER[2]}"
elif [ -z "$url" ]; then
  rt_single
  url="redis://127.0.0.1:$RT_SINGLE"
fi

metric() {  # PORT SERIES: its value (0 when absent)
  curl -fs "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s {print $2; f = 1} END {if (!f) print 0}'
}
has_metric() { curl -fs "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s || index($1, s "{") == 1 {f = 1} END {exit !f}'; }
# NAME's samples summed over every label set (the feed counter may gain a shard label).
metric_all() {
  curl -fs "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s || index($1, s "{") == 1 {t += $2} END {printf "%d\n", t}'
}
HTTP=() TERM_PORT=() PID=()
for n in 0 1; do
  HTTP[n]=$(rt_free_port) TERM_PORT[n]=$(rt_free_port)
  POSRELAY_REDIS_URL=$url "$bin" --listen "127.0.0.1:${HTTP[n]}" --terminal-listen "127.0.0.1:${TERM_PORT[n]}" \
    --data-dir "$work/data-$n" --confirm-paid false --poll-rate 0 --terminal-max-connections $((per_node + 100)) \
    --log-level warn 2>"$work/posrelay-$n.log" &
  PID[n]=$!
  rt_at_exit "kill ${PID[n]}; wait ${PID[n]}"
done
for n in 0 1; do
  rt_wait 30 "posrelay node $n ready or gone" \
    bash -c "! kill -0 ${PID[n]} 2>/dev/null || curl -fs http://127.0.0.1:${HTTP[n]}/readyz" || true
  curl -fs "http://127.0.0.1:${HTTP[n]}/readyz" >/dev/null ||
    { echo "posrelay node $n did not start:" >&2; tail -c 400 "$work/posrelay-$n.log" >&2; exit 1; }
  has_metric "${HTTP[n]}" "$feed" || { echo "node $n exports no $feed (set FEED_METRIC)" >&2; exit 1; }
done

python3 bench/fault_suite.py orders "$work" feed "$events" "$per_node" "$stores_per_node"
python3 bench/fault_suite.py register "$work" "${HTTP[0]}" "${HTTP[1]}"
for n in 0 1; do
  "$load" --connect "127.0.0.1:${TERM_PORT[n]}" --terminals "$per_node" --prefix "n$n" --stores "$stores_per_node" \
    --store-base $((n * stores_per_node)) --duration 3600s --connect-rate 2500 --progress 0 --log-level warn \
    >"$work/load-$n.json" 2>"$work/load-$n.log" &
  rt_at_exit "kill -INT $!; wait $!"
done
connected() { [ "$(metric "$1" 'posrelay_terminal_connections{transport="tcp"}')" = "$per_node" ]; }
for n in 0 1; do
  rt_wait 120 "$per_node terminals connected to node $n" connected "${HTTP[n]}" || exit 1
done
new_commits() {  # PORT: posrelay_commits_total samples with outcome="new", any other labels
  curl -fs "http://127.0.0.1:$1/metrics" | awk '$1 ~ /^posrelay_commits_total[{]/ && $1 ~ /outcome="new"/ {t += $2} END {printf "%d\n", t}'
}
commits() { echo $(($(new_commits "${HTTP[0]}") + $(new_commits "${HTTP[1]}"))); }
c0=$(commits) f0_0=$(metric_all "${HTTP[0]}" "$feed") f1_0=$(metric_all "${HTTP[1]}" "$feed")
echo "$terms terminals connected; $events notifications at $rate/s" >&2
python3 bench/fault_suite.py stream "$work" "$rate" "$events" 0 "${HTTP[0]}" "${HTTP[1]}"
# The feed's last messages are on the loopback: wait until both nodes' counts stop moving.
settled() {
  local a b
  a="$(metric_all "${HTTP[0]}" "$feed") $(metric_all "${HTTP[1]}" "$feed")"
  sleep 0.5
  b="$(metric_all "${HTTP[0]}" "$feed") $(metric_all "${HTTP[1]}" "$feed")"
  [ "$a" = "$b" ]
}
rt_wait 30 "feed counts settled" settled || true
c1=$(commits) f0_1=$(metric_all "${HTTP[0]}" "$feed") f1_1=$(metric_all "${HTTP[1]}" "$feed")
python3 - "$((c1 - c0))" "$f0_0" "$f0_1" "$f1_0" "$f1_1" "$terms" "$stores" "$feed" <<'PY'
import json, sys
committed = int(sys.argv[1])
f = [float(sys.argv[3]) - float(sys.argv[2]), float(sys.argv[5]) - float(sys.argv[4])]
ratio = [round(x / committed, 3) if committed else None for x in f]
for n in (0, 1):
    print(json.dumps({"node": n, "feed_received": int(f[n]), "committed_fleet": committed,
                      "received_per_committed": ratio[n]}))
print(json.dumps({"terminals": int(sys.argv[6]), "stores": int(sys.argv[7]), "metric": sys.argv[8],
                  "committed_fleet": committed, "received_per_committed": ratio}))
PY
