#!/usr/bin/env bash
# SIGHUP under load: a release posrelay with its embedded Redis, TERMINALS plain-TCP terminals
# (posrelay-terminal-load), signed settlement notifications at RATE/s for SECONDS
# (bench/reload_under_load.py, 4 keep-alive connections), and a SIGHUP every INTERVAL seconds;
# before the 3rd reload merchant M-NEW is added to --merchant-keys-file. Repeated RUNS times (a
# fresh posrelay each run); prints each run and the medians.
#   usage: bench/reload_under_load.sh [RUNS] [SECONDS] [TERMINALS] [RATE] [INTERVAL]
#   e.g.   bench/reload_under_load.sh            (3 runs, 20 s, 1000 terminals, 200/s, every 2 s)
# Figures per run:
#   sent / non_2xx / conn_errors   notifications sent, answered other than 2xx, failed to connect
#                                  or read (the sender's own count); max_ms the slowest answer
#   reloads_success / _failure     posrelay_config_reloads_total during the run
#   new_merchant_before / _after   HTTP status of M-NEW's notification before (401) and after
#                                  (200) the reload that added its key
#   disconnects                    posrelay_terminal_disconnects_total (every reason) after
#                                  minus before the notification phase; load_disconnects and
#                                  load_reconnects: what the load tool counted
#   still_connected                posrelay_terminal_connections{transport="tcp"} at the end
#   embedded_redis_restarts        posrelay_embedded_redis_restarts_total during the run, and
#   same_redis_pid                 1 when the embedded redis-server is the same process after
# Needs: release build, python3, curl. Leaves no process behind (trap).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
runs=${1:-3} secs=${2:-20} terms=${3:-1000} rate=${4:-200} every=${5:-2}
bin=${POSRELAY_BIN:-build/release/src/posrelay}
load=build/release/src/tools/posrelay-terminal-load
[ -x "$bin" ] && [ -x "$load" ] || {
  cmake --preset release >/dev/null && cmake --build --preset release -j2 --target posrelay posrelay-terminal-load
}
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP_DIR:-}" ] && mkdir -p "$KEEP_DIR" && cp "$work"/*.log "$work"/*.json "$KEEP_DIR"/ 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export POSRELAY_SERVER_KEY=${SERVER_KEY:-SB-Mid-server-TESTKEY}
export POSRELAY_TERMINAL_SECRET=bench-terminal-secret
metric() {  # PORT SERIES: its value (0 when absent)
  curl -fs "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s {print $2; f=1} END {if (!f) print 0}'
}
disconnects() {  # PORT: every posrelay_terminal_disconnects_total sample summed
  curl -fs "http://127.0.0.1:$1/metrics" | awk '$1 ~ /^posrelay_terminal_disconnects_total/ {s += $2} END {print s + 0}'
}

one_run() {  # RUN
  local run=$1 http tport data=$work/data-$1 keys=$work/merchants-$1
  http=$(free_port) tport=$(free_port)
  printf '# merchant_id server_key\nG000000002 SB-Mid-server-OTHER\n' >"$keys"
  "$bin" --listen 127.0.0.1:"$http" --terminal-listen 127.0.0.1:"$tport" --data-dir "$data" \
    --merchant-keys-file "$keys" --confirm-paid false --poll-rate 0 --log-level info \
    2>"$work/posrelay-$run.log" &
  local pid=$!
  pids+=("$pid")
  ready "http://127.0.0.1:$http/readyz" || { echo "posrelay did not start" >&2; cat "$work/posrelay-$run.log" >&2; exit 1; }
  "$load" --connect 127.0.0.1:"$tport" --terminals "$terms" --prefix "r$run" --stores 10 \
    --duration 3600s --connect-rate 2500 --progress 0 --log-level warn \
    >"$work/load-$run.json" 2>"$work/load-$run.log" &
  local lpid=$!
  pids+=("$lpid")
  for _ in $(seq 600); do
    [ "$(metric "$http" 'posrelay_terminal_connections{transport="tcp"}')" = "$terms" ] && break
    sleep 0.1
  done
  [ "$(metric "$http" 'posrelay_terminal_connections{transport="tcp"}')" = "$terms" ] ||
    { echo "not every terminal connected" >&2; exit 1; }
  local d0 d1 conn1 rr0 rr1 redis_pid
  d0=$(disconnects "$http")
  rr0=$(metric "$http" posrelay_embedded_redis_restarts_total)
  redis_pid=$(pgrep -P "$pid" redis-server || true)
  python3 bench/reload_under_load.py "$http" "$pid" "$keys" "$POSRELAY_SERVER_KEY" "$secs" \
    "$rate" "$every" 3 "$run" >"$work/sender-$run.json"
  d1=$(disconnects "$http")
  conn1=$(metric "$http" 'posrelay_terminal_connections{transport="tcp"}')
  rr1=$(metric "$http" posrelay_embedded_redis_restarts_total)
  local same_redis=0
  [ -n "$redis_pid" ] && [ "$(pgrep -P "$pid" redis-server || true)" = "$redis_pid" ] && same_redis=1
  kill -INT "$lpid"; wait "$lpid" || true
  kill -TERM "$pid"; wait "$pid" || true
  python3 - "$run" "$((d1 - d0))" "$conn1" "$work/sender-$run.json" "$work/load-$run.json" \
    "$work/posrelay-$run.log" "$((rr1 - rr0))" "$same_redis" <<'PY' | tee -a "$work/runs.jsonl"
import json, sys
run, disc, conn, sender, load, log, redis_restarts, same_redis = sys.argv[1:]
r = {"run": int(run)}
r.update(json.loads(open(sender).read().strip().splitlines()[-1]))
lt = json.loads(open(load).read().strip().splitlines()[-1])
r.update(disconnects=int(disc), still_connected=int(float(conn)),
         load_disconnects=lt.get("disconnects"), load_reconnects=lt.get("reconnects"),
         reload_log_lines=sum('"config reloaded"' in l for l in open(log)),
         embedded_redis_restarts=int(float(redis_restarts)), same_redis_pid=int(same_redis))
print(json.dumps(r))
PY
}

for run in $(seq "$runs"); do one_run "$run"; done
python3 - "$work/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
keys = [k for k in runs[0] if k != "run" and isinstance(runs[0][k], (int, float))]
print("median:", json.dumps({k: statistics.median(r[k] for r in runs) for k in keys}))
PY
