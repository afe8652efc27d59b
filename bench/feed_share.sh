#!/usr/bin/env bash
# Live-feed share (key schema version 4: events by SPUBLISH per store, a node SSUBSCRIBEd to its
# terminals' stores only): two posrelay nodes on one redis-server, TERMINALS terminals of
# STORES stores, half on each node, ORDERS orders registered for random terminals and each
# notified once (settlement, alternately through either node). With AFFINITY=1 (default) each
# store's terminals are on one node (node A: S-0 .. S-(STORES/2 - 1), node B: the rest); with
# AFFINITY=0 every store has terminals on both nodes. Prints, per run, the events each node
# received on its feed per event the fleet published, and the medians.
#   usage: bench/feed_share.sh [RUNS] [TERMINALS] [STORES] [ORDERS]
#   e.g.   bench/feed_share.sh 3 10000 100 2000
# Needs: release build, redis-server, python3, curl. Leaves no process behind (trap).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3} terms=${2:-10000} stores=${3:-100} orders=${4:-2000}
affinity=${AFFINITY:-1}
bin=${POSRELAY_BIN:-build/release/src/posrelay}
load=build/release/src/tools/posrelay-terminal-load
[ -x "$bin" ] && [ -x "$load" ] || {
  cmake --preset release >/dev/null && cmake --build --preset release -j2 --target posrelay posrelay-terminal-load
}
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((terms + 500)) ] || { echo "open-file limit too low for $terms terminals" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export POSRELAY_SERVER_KEY=SB-Mid-server-TESTKEY POSRELAY_OPERATOR_TOKEN=bench-operator-token
export POSRELAY_TERMINAL_SECRET=bench-terminal-secret
half=$((terms / 2)) shalf=$((stores / 2))
metric() {  # PORT SERIES: its value (0 when absent)
  curl -fs "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s {print $2; f=1} END {if (!f) print 0}'
}
wait_until() {  # SECONDS COMMAND...
  for _ in $(seq $(($1 * 10))); do "${@:2}" && return 0; sleep 0.1; done
  return 1
}
one_run() {  # RUN
  local run=$1 sock=$work/redis-$1.sock
  redis-server --port 0 --unixsocket "$sock" --save "" --appendonly no --daemonize no \
    >"$work/redis-$run.log" 2>&1 &
  pids+=($!)
  wait_until 10 redis-cli -s "$sock" PING >/dev/null
  local ports=(18291 18292) tports=(17291 17292) n
  for n in 0 1; do
    POSRELAY_REDIS_URL="unix://$sock" "$bin" --listen 127.0.0.1:${ports[n]} \
      --terminal-listen 127.0.0.1:${tports[n]} --terminal-max-connections $((terms + 100)) \
      --confirm-paid false --log-level warn 2>"$work/node-$run-$n.log" &
    pids+=($!)
  done
  for n in 0 1; do wait_until 15 curl -fs "http://127.0.0.1:${ports[n]}/readyz" -o /dev/null; done
  for n in 0 1; do
    local offset=$((affinity == 1 ? n * shalf : 0)) count=$((affinity == 1 ? shalf : stores))
    "$load" --connect 127.0.0.1:${tports[n]} --terminals $half --prefix "n$n" --stores $count \
      --store-base $offset --duration 3600s --connect-rate 5000 --progress 0 --log-level warn \
      >"$work/load-$run-$n.json" 2>"$work/load-$run-$n.log" &
    pids+=($!)
  done
  for n in 0 1; do
    wait_until 60 bash -c "[ \"\$(curl -fs http://127.0.0.1:${ports[n]}/metrics |
      awk '\$1 == \"posrelay_terminal_connections{transport=\\\"tcp\\\"}\" {print \$2}')\" = $half ]"
  done
  python3 - "$run" "$orders" "$half" "$stores" "$shalf" "$affinity" "${ports[@]}" <<'PY'
import hashlib, http.client, json, os, random, sys
run, orders, half, stores, shalf, affinity, pa, pb = sys.argv[1:]
orders, half, stores, shalf, affinity = map(int, (orders, half, stores, shalf, affinity))
key, token = os.environ["POSRELAY_SERVER_KEY"], os.environ["POSRELAY_OPERATOR_TOKEN"]
conns = [http.client.HTTPConnection("127.0.0.1", int(p)) for p in (pa, pb)]
def post(c, path, body, auth=None):
    h = {"Content-Type": "application/json"}
    if auth: h["Authorization"] = "Bearer " + auth
    c.request("POST", path, json.dumps(body), h)
    r = c.getresponse(); r.read()
    return r.status
rnd = random.Random(run)
for i in range(orders):
    n, k = rnd.randrange(2), rnd.randrange(half)
    store = (n * shalf + k % shalf) if affinity else k % stores
    o = f"FS{run}-{i:06d}"
    assert post(conns[i % 2], "/v1/orders", {"order_id": o, "gross_amount": "10000",
        "terminal_id": f"T-n{n}-{k}", "store_id": f"S-{store}"}, token) == 201
    sig = hashlib.sha512((o + "200" + "10000.00" + key).encode()).hexdigest()
    assert post(conns[(i + 1) % 2], "/v1/midtrans/notifications", {
        "transaction_status": "settlement", "status_code": "200", "signature_key": sig,
        "order_id": o, "gross_amount": "10000.00", "fraud_status": "accept",
        "transaction_id": f"{i:08x}-2a48-47a9-8cb1-fb36060b88f3", "payment_type": "qris",
        "transaction_time": "2026-11-24 10:00:00", "currency": "IDR"}) == 200
PY
  drained() {
    local p0 p1 d0 d1
    p0=$(metric ${ports[0]} posrelay_events_published_total); p1=$(metric ${ports[1]} posrelay_events_published_total)
    d0=$(metric ${ports[0]} posrelay_terminal_events_delivered_total); d1=$(metric ${ports[1]} posrelay_terminal_events_delivered_total)
    [ "$(echo "$p0 + $p1" | bc)" = "$(echo "$d0 + $d1" | bc)" ]
  }
  wait_until 30 drained || echo "warning: not every event delivered within 30 s" >&2
  local pub=0 line="{\"run\": $run, \"affinity\": $affinity, \"terminals\": $terms, \"stores\": $stores"
  for n in 0 1; do pub=$(echo "$pub + $(metric ${ports[n]} posrelay_events_published_total)" | bc); done
  line+=", \"published\": $pub"
  for n in 0 1; do
    local got un st
    got=$(metric ${ports[n]} posrelay_event_feed_events_total)
    un=$(metric ${ports[n]} posrelay_event_feed_unmatched_total)
    st=$(metric ${ports[n]} posrelay_event_feed_stores)
    line+=", \"node$n\": {\"received\": $got, \"per_published\": $(awk -v a="$got" -v b="$pub" 'BEGIN {printf "%.3f", a / b}'), \"unmatched\": $un, \"stores\": $st}"
  done
  echo "$line}" | tee -a "$work/runs.jsonl"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
for r in $(seq "$runs"); do one_run "$r"; done
python3 - "$work/runs.jsonl" <<'PY'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
med = lambda k, n: statistics.median(r[f"node{n}"][k] for r in rs)
print("median of", len(rs), "runs:", json.dumps({f"node{n}_per_published": med("per_published", n)
      for n in (0, 1)}))
PY
