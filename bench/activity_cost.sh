#!/usr/bin/env bash
# Redis's cost per delivered event: CPU (INFO cpu, used_cpu_sys + used_cpu_user of
# redis-server), bytes received (INFO stats total_net_input_bytes), AOF growth (INFO persistence
# aof_current_size) and commands (INFO commandstats calls), over a phase of N signed settlement
# notifications to orders routed to TERMINALS connected, acking terminals — the cost of the
# presence and delivery-timeline marks (issue 16) shows as the difference between two builds
# under the same load. Each run: a fresh posrelay with its embedded Redis; medians of RUNS.
#   usage: bench/activity_cost.sh [RUNS] [N] [TERMINALS]      (default 3 2000 200)
#   env:   POSRELAY_BIN (build/release/src/posrelay) the posrelay to measure; LOAD_BIN
#          (build/release/src/tools/posrelay-terminal-load) the terminals; PARALLEL (1)
#          notifications sent by this many processes at once (a higher rate: more marks per
#          flush)
#   e.g.   POSRELAY_BIN=/work/main/build/release/src/posrelay bench/activity_cost.sh
# Notifications are POSTed one at a time per sender (keep-alive), so both builds see the same
# load, its rate set by the round trip. Needs: release build, python3, curl, redis-cli. Leaves no process behind.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3} n=${2:-2000} terms=${3:-200}
bin=${POSRELAY_BIN:-build/release/src/posrelay}
load=${LOAD_BIN:-build/release/src/tools/posrelay-terminal-load}
[ -x "$bin" ] && [ -x "$load" ] || { echo "build posrelay and posrelay-terminal-load first" >&2; exit 1; }
. bench/lib.sh
export POSRELAY_SERVER_KEY=${SERVER_KEY:-SB-Mid-server-TESTKEY}
export POSRELAY_OPERATOR_TOKEN=bench-operator-token
export POSRELAY_TERMINAL_SECRET=bench-terminal-secret
stores=10
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

metric() {  # PORT SERIES: its value (0 when absent)
  curl -fs "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s {print $2; f=1} END {if (!f) print 0}'
}
redis_figures() {  # SOCKET: cpu_seconds net_input_bytes aof_bytes calls
  redis-cli -s "$1" INFO all | tr -d '\r' | awk -F'[:,=]' '
    /^used_cpu_sys:/ {c += $2} /^used_cpu_user:/ {c += $2}
    /^total_net_input_bytes:/ {b = $2} /^aof_current_size:/ {a = $2}
    /^cmdstat_/ {k += $3}
    END {printf "%.6f %d %d %d\n", c, b, a, k}'
}

one_run() {  # RUN: prints one JSON line
  local run=$1 data=$work/data-$1 http tport
  http=$(free_port) tport=$(free_port)
  "$bin" --listen 127.0.0.1:"$http" --terminal-listen 127.0.0.1:"$tport" --data-dir "$data" \
    --confirm-paid=false --log-level warn 2>"$work/posrelay-$run.log" &
  local pid=$!
  pids+=("$pid")
  ready "http://127.0.0.1:$http/readyz" || { cat "$work/posrelay-$run.log" >&2; exit 1; }
  "$load" --connect 127.0.0.1:"$tport" --terminals "$terms" --prefix p0 --stores $stores \
    --duration 3600s --progress 0 --log-level warn >"$work/load-$run.json" 2>"$work/load-$run.log" &
  local lpid=$!
  pids+=("$lpid")
  for _ in $(seq 300); do
    [ "$(metric "$http" 'posrelay_terminal_connections{transport="tcp"}')" = "$terms" ] && break
    sleep 0.1
  done
  python3 bench/lib/activity_load.py register "$http" "$n" "$terms" "$stores" "$run"
  sleep 1  # the registrations' own marks (none) and the idle heartbeats settle
  local before after d0 d1
  d0=$(metric "$http" posrelay_terminal_events_delivered_total)
  before=$(redis_figures "$data/redis.sock")
  local senders=()
  for p in $(seq 0 $((${PARALLEL:-1} - 1))); do
    python3 bench/lib/activity_load.py notify "$http" "$n" "$terms" "$stores" "$run" "$p" "${PARALLEL:-1}" &
    senders+=($!)
  done
  for s in "${senders[@]}"; do wait "$s"; done
  for _ in $(seq 300); do
    [ "$(metric "$http" posrelay_terminal_events_delivered_total)" -ge $((d0 + n)) ] && break
    sleep 0.1
  done
  sleep 1  # the acks and their marks (flushed every 5 ms) reach Redis
  after=$(redis_figures "$data/redis.sock")
  d1=$(metric "$http" posrelay_terminal_events_delivered_total)
  local dropped
  dropped=$(metric "$http" posrelay_activity_marks_dropped_total)
  kill -INT "$lpid"; wait "$lpid" || true
  kill -TERM "$pid"; wait "$pid" || true
  python3 - "$run" "$((d1 - d0))" "$before" "$after" "$dropped" <<'PY'
import json, sys
run, events, before, after, dropped = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split(), sys.argv[5]
d = [float(a) - float(b) for a, b in zip(after, before)]
e = max(events, 1)
print(json.dumps({"run": int(run), "events": events,
                  "redis_cpu_us_per_event": round(d[0] * 1e6 / e, 1),
                  "net_in_bytes_per_event": round(d[1] / e, 1),
                  "aof_bytes_per_event": round(d[2] / e, 1),
                  "commands_per_event": round(d[3] / e, 2),
                  "marks_dropped": float(dropped)}))
PY
}

for r in $(seq "$runs"); do one_run "$r" | tee -a "$work/runs.jsonl"; done
python3 - "$work/runs.jsonl" "$bin" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = ["redis_cpu_us_per_event", "net_in_bytes_per_event", "aof_bytes_per_event", "commands_per_event"]
print(json.dumps({"bin": sys.argv[2], "runs": len(rows),
                  **{"median_" + k: statistics.median(r[k] for r in rows) for k in keys}}))
PY
