#!/usr/bin/env bash
# Terminal fan-out benchmark: a release posrelay with its embedded Redis, TERMINALS plain-TCP
# terminals (posrelay-terminal-load, split over LOAD_PROCS processes), then signed settlement
# notifications POSTed by wrk at RATE/s for SECONDS, each for a registered order of a random
# terminal. Repeated RUNS times (a fresh posrelay each run); prints each run and the medians.
#   usage: bench/terminals_bench.sh [RUNS] [SECONDS] [TERMINALS] [RATE] [-- extra posrelay flags]
#   env:   LOAD_PROCS (2) load processes; DELAY_MS (100) pause of each wrk connection between
#          notifications (connections = RATE x (DELAY_MS + 2 ms) / 1 s); POSRELAY_BIN (the
#          release build) the posrelay binary to measure; LOAD_BIN (the release build's
#          src/tools/posrelay-terminal-load) the load tool; KEEP_DIR: copy the logs, wrk
#          output and final metrics of each run there; LOAD_NICE (0) niceness of the load
#          tools and wrk: e.g. 10 lets posrelay and Redis run first, as if the load came from
#          other machines (report which one you used)
#   e.g.   bench/terminals_bench.sh                  (3 runs, 20 s, 10000 terminals, 5000/s)
#          bench/terminals_bench.sh 1 5 1000 500     (a quick look)
# Figures per run:
#   rss_per_idle_conn_kib  (VmRSS with TERMINALS idle connected terminals - VmRSS before) /
#                          TERMINALS, both read from /proc after the connection count settled
#   latency p50/p99 (ms)   at the load tool: receive time - event_time_ms, where event_time_ms
#                          is posrelay's wall clock read just before the commit (EVALSHA) of
#                          the notification; same machine clock, 1 ms resolution; the worst
#                          of the load processes. server_p50/p99: posrelay's own histogram
#                          (commit -> frame written to the socket), interpolated in buckets
#   expected / received    new commits (posrelay_commits_total{outcome="new"}) vs events the
#                          terminals received; lost = expected - received + gaps' missing
#                          seqs; dups = events whose seq was not above the last seen
#   cpu                    posrelay, redis-server and load tools during the notification phase
#                          (wrk's SECONDS and the drain after it: phase_s), as % of one core;
#                          posrelay_cpu_s/redis_cpu_s the same in seconds, cpu_us_per_event
#                          their sum / events received (CPU per delivered event; the HTTP
#                          ingest of each notification included)
#   runq_wait              time posrelay's and Redis's threads were runnable but waited for a
#                          CPU (/proc/PID/task/*/schedstat), as % of the phase: above a few %,
#                          the machine's cores, not posrelay, set the tail latency
#   redis_forks            the embedded Redis's forks (AOF rewrites) in the notification phase:
#                          each stalls commits (fork, copy-on-write) and takes a core meanwhile
# Needs: release build, wrk, python3, curl. Leaves no process behind (trap).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3} secs=${2:-20} terms=${3:-10000} rate=${4:-5000}
shift $(($# < 4 ? $# : 4))
[ "${1:-}" = "--" ] && shift
procs=${LOAD_PROCS:-2}
delay_ms=${DELAY_MS:-100}
bin=${POSRELAY_BIN:-build/release/src/posrelay}
load=${LOAD_BIN:-build/release/src/tools/posrelay-terminal-load}
[ -x "$bin" ] && [ -x "$load" ] || {
  cmake --preset release >/dev/null && cmake --build --preset release -j2 --target posrelay posrelay-terminal-load
}
# Each side holds TERMINALS sockets (plus Redis, HTTP, files): raise the soft limit to the hard.
ulimit -n "$(ulimit -Hn)"
per_proc=$(((terms + procs - 1) / procs))
if [ "$(ulimit -n)" -lt $((terms + 200)) ] || [ "$(ulimit -n)" -lt $((per_proc + 100)) ]; then
  echo "open-file limit $(ulimit -n) is too low for $terms terminals (raise it or LOAD_PROCS)" >&2
  exit 1
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_DIR:-}" ]; then mkdir -p "$KEEP_DIR" && cp "$work"/*.log "$work"/*.txt "$work"/*.json* "$KEEP_DIR"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export POSRELAY_SERVER_KEY=${SERVER_KEY:-SB-Mid-server-TESTKEY}
export POSRELAY_OPERATOR_TOKEN=bench-operator-token
export POSRELAY_TERMINAL_SECRET=bench-terminal-secret
http=${PORT:-18190} tport=${TERMINAL_PORT:-17170}
orders=$((rate * secs * 12 / 10 + 1000))  # more bodies than wrk can send: none sent twice
stores=10

# Bodies: order registrations (POST /v1/orders) and their signed settlement notifications,
# each order routed to a random terminal (ids and stores as posrelay-terminal-load makes them).
gen_bodies() {  # RUN_TAG
  python3 - "$1" "$orders" "$terms" "$procs" "$per_proc" "$stores" "$POSRELAY_SERVER_KEY" \
    "$work/register.ndjson" "$work/notify.ndjson" <<'PY'
import hashlib, json, random, sys
tag, n, terms, procs, per_proc, stores, key, reg, note = sys.argv[1:]
n, terms, procs, per_proc, stores = map(int, (n, terms, procs, per_proc, stores))
rnd = random.Random(tag)
with open(reg, "w") as r, open(note, "w") as f:
    for i in range(n):
        t = rnd.randrange(terms)
        p, k = divmod(t, per_proc)
        order = f"B{tag}-{i:08d}"
        r.write(json.dumps({"order_id": order, "gross_amount": "10000",
                            "terminal_id": f"T-p{p}-{k}", "store_id": f"S-{k % stores}"},
                           separators=(",", ":")) + "\n")
        gross, code = "10000.00", "200"
        sig = hashlib.sha512((order + code + gross + key).encode()).hexdigest()
        f.write(json.dumps({
            "transaction_time": "2026-11-24 10:00:00", "transaction_status": "settlement",
            "transaction_id": f"{i:08x}-2a48-47a9-8cb1-fb36060b88f3", "status_code": code,
            "status_message": "midtrans payment notification", "signature_key": sig,
            "payment_type": "qris", "order_id": order, "merchant_id": "G000000001",
            "gross_amount": gross, "fraud_status": "accept", "currency": "IDR"},
            separators=(",", ":")) + "\n")
PY
}

metrics() { curl -fs "http://127.0.0.1:$http/metrics"; }
metric() {  # SERIES: its value (0 when absent)
  metrics | awk -v s="$1" '$1 == s {print $2; found=1} END {if (!found) print 0}'
}
redis_forks() {  # DATA_DIR: the embedded Redis's forks so far (AOF rewrites), 0 if unknown
  redis-cli -s "$1/redis.sock" INFO stats 2>/dev/null | awk -F: '/^total_forks/ {n = $2 + 0} END {print n + 0}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
runq_ns() {  # PID: nanoseconds its threads spent runnable, waiting for a CPU (0 if unknown)
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{n += $2} END {printf "%.0f\n", n}'
}
nice_load=()
[ "${LOAD_NICE:-0}" != 0 ] && nice_load=(nice -n "$LOAD_NICE")
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
wait_until() {  # SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds (bounded)
  local limit=$(($1 * 10))
  shift
  for _ in $(seq "$limit"); do "$@" && return 0; sleep 0.1; done
  return 1
}
connected() { [ "$(metric 'posrelay_terminal_connections{transport="tcp"}')" = "$terms" ]; }
drained() {
  [ "$(metric posrelay_terminal_events_delivered_total)" = "$(metric 'posrelay_commits_total{outcome="new"}')" ]
}

# No paid confirmation (GET status to Midtrans, unreachable here: every settlement would stay
# "confirming", retried, and never reach a terminal) and no polling, unless the flags say otherwise.
bench_flags=()
case " $* " in *" --confirm-paid"*) ;; *) bench_flags+=(--confirm-paid false) ;; esac
case " $* " in *" --poll-rate"*) ;; *) bench_flags+=(--poll-rate 0) ;; esac
one_run() {  # RUN
  local run=$1 data=$work/data-$1
  shift
  gen_bodies "$run"
  "$bin" --listen 127.0.0.1:$http --terminal-listen 127.0.0.1:$tport --data-dir "$data" \
    --terminal-max-connections $((terms + 1000)) --log-level warn "${bench_flags[@]}" "$@" 2>"$work/posrelay-$run.log" &
  local pid=$!
  pids+=("$pid")
  wait_until 15 curl -fs "http://127.0.0.1:$http/readyz" -o /dev/null ||
    { echo "posrelay did not start" >&2; cat "$work/posrelay-$run.log" >&2; exit 1; }
  local redis_pid
  redis_pid=$(pgrep -P "$pid" redis-server || true)

  # Orders first (no event yet: no status), unpaced.
  BODIES=$work/register.ndjson TARGET_PATH=/v1/orders AUTH=$POSRELAY_OPERATOR_TOKEN \
    wrk -t1 -c32 -d600s -s bench/wrk_lines.lua "http://127.0.0.1:$http" >"$work/register-$run.log" &
  local wrk_pid=$!
  pids+=("$wrk_pid")
  wait_until 600 bash -c "[ \"\$(curl -fs http://127.0.0.1:$http/metrics |
    awk '\$1 ~ /^posrelay_http_requests_total/ && /orders/ && /code=\"201\"/ {s += \$2} END {print s + 0}')\" -ge $orders ]" ||
    { echo "order registration did not finish" >&2; exit 1; }
  kill -INT "$wrk_pid"; wait "$wrk_pid" || true

  local rss0 rss1
  rss0=$(rss_kib "$pid")
  local loads=()
  for p in $(seq 0 $((procs - 1))); do
    local n=$((p == procs - 1 ? terms - p * per_proc : per_proc))
    "${nice_load[@]}" "$load" --connect 127.0.0.1:$tport --terminals "$n" --prefix "p$p" --stores $stores \
      --duration 3600s --connect-rate 2500 --progress 0 --log-level warn \
      >"$work/load-$run-$p.json" 2>"$work/load-$run-$p.log" &
    loads+=($!)
    pids+=($!)
  done
  wait_until 60 connected || { echo "not every terminal connected" >&2; tail -3 "$work"/load-"$run"-*.log >&2; exit 1; }
  sleep 2  # let the last handshakes' temporary buffers go before reading RSS
  connected || { echo "terminals disconnected while idle" >&2; exit 1; }
  rss1=$(rss_kib "$pid")

  # Notifications, paced: each wrk connection sends one, waits for the answer, then DELAY_MS.
  # Many connections with a long pause keep the rate near RATE even when answers slow down.
  local conns=$(((rate * (delay_ms + 2) + 999) / 1000))
  local new0 c0 r0 l0=0 w0 new1 c1 r1 l1=0 w1
  new0=$(metric 'posrelay_commits_total{outcome="new"}')
  c0=$(cpu_ticks "$pid"); r0=$([ -n "$redis_pid" ] && cpu_ticks "$redis_pid" || echo 0)
  local q0 q1 rq0 rq1
  q0=$(runq_ns "$pid"); rq0=$([ -n "$redis_pid" ] && runq_ns "$redis_pid" || echo 0)
  for l in "${loads[@]}"; do l0=$((l0 + $(cpu_ticks "$l"))); done
  local f0 f1
  redis-cli -s "$data/redis.sock" CONFIG RESETSTAT >/dev/null 2>&1 || true  # commandstats of this phase
  f0=$(redis_forks "$data")
  w0=$(date +%s.%N)
  BODIES=$work/notify.ndjson TARGET_PATH=/v1/midtrans/notifications DELAY_MS=$delay_ms \
    "${nice_load[@]}" wrk -t1 -c"$conns" -d"${secs}s" -s bench/wrk_lines.lua "http://127.0.0.1:$http" >"$work/notify-$run.log"
  wait_until 30 drained || echo "warning: not every committed event was written within 30 s" >&2
  w1=$(date +%s.%N)
  c1=$(cpu_ticks "$pid"); r1=$([ -n "$redis_pid" ] && cpu_ticks "$redis_pid" || echo 0)
  q1=$(runq_ns "$pid"); rq1=$([ -n "$redis_pid" ] && runq_ns "$redis_pid" || echo 0)
  for l in "${loads[@]}"; do l1=$((l1 + $(cpu_ticks "$l"))); done
  new1=$(metric 'posrelay_commits_total{outcome="new"}')
  f1=$(redis_forks "$data")
  metrics >"$work/metrics-$run.txt"
  redis-cli -s "$data/redis.sock" INFO commandstats >"$work/commandstats-$run.txt" 2>/dev/null || true
  sleep 1  # the last events are on the loopback: let the load tools read them
  for l in "${loads[@]}"; do kill -INT "$l"; done
  for l in "${loads[@]}"; do wait "$l" || true; done
  kill -TERM "$pid"; wait "$pid" || true

  python3 - "$run" "$terms" "$rss0" "$rss1" "$((new1 - new0))" "$c0" "$c1" "$r0" "$r1" "$l0" "$l1" \
    "$w0" "$w1" "$(getconf CLK_TCK)" "$secs" "$work/notify-$run.log" "$work/metrics-$run.txt" "$((f1 - f0))" \
    "$((q1 - q0))" "$((rq1 - rq0))" "$work"/load-"$run"-*.json >>"$work/runs.jsonl" <<'PY'
import json, re, sys
(run, terms, rss0, rss1, expected, c0, c1, r0, r1, l0, l1, w0, w1, hz, secs, wrk_log,
 metrics_file, forks, runq, redis_runq, *loads) = sys.argv[1:]
terms, expected, hz, secs = int(terms), int(expected), float(hz), float(secs)
wall = float(w1) - float(w0)
s = [json.loads(open(p).read().strip().splitlines()[-1]) for p in loads]
wrk = open(wrk_log).read()
codes = dict(re.findall(r"status (\d+): (\d+)", wrk))
# posrelay's histogram: cumulative buckets -> quantile by linear interpolation.
buckets = []
for line in open(metrics_file):
    m = re.match(r'posrelay_terminal_delivery_latency_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
    if m:
        buckets.append((float("inf") if m[1] == "+Inf" else float(m[1]), float(m[2])))
def quantile(q):
    total = buckets[-1][1] if buckets else 0
    if total == 0: return 0.0
    rank, lo, below = q * total, 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"): return lo * 1000
            return (lo + (le - lo) * (rank - below) / max(c - below, 1e-9)) * 1000
        lo, below = le, c
    return lo * 1000
received = sum(x["events"] for x in s)
missing = sum(x["missing"] for x in s)
out = {
    "run": int(run), "terminals_connected": sum(x["connected"] for x in s),
    "rss_before_kib": int(rss0), "rss_connected_kib": int(rss1),
    "rss_per_idle_conn_kib": round((int(rss1) - int(rss0)) / terms, 2),
    "notifications_200": int(codes.get("200", 0)), "non_200": sum(int(v) for k, v in codes.items() if k != "200"),
    "expected": expected, "received": received, "events_per_sec": round(expected / secs),
    "lost": max(expected - received, 0) + missing, "dups": sum(x["dups"] for x in s),
    "p50_ms": max(x["latency_p50_ms"] for x in s), "p99_ms": max(x["latency_p99_ms"] for x in s),
    "max_ms": max(x["latency_max_ms"] for x in s),
    "server_p50_ms": round(quantile(0.5), 2), "server_p99_ms": round(quantile(0.99), 2),
    "posrelay_cpu_pct": round((float(c1) - float(c0)) / hz / wall * 100),
    "redis_cpu_pct": round((float(r1) - float(r0)) / hz / wall * 100),
    "load_tools_cpu_pct": round((float(l1) - float(l0)) / hz / wall * 100),
    "posrelay_runq_wait_pct": round(int(runq) / 1e9 / wall * 100, 1),
    "redis_runq_wait_pct": round(int(redis_runq) / 1e9 / wall * 100, 1),
    "redis_forks": int(forks),
    "phase_s": round(wall, 2), "posrelay_cpu_s": round((float(c1) - float(c0)) / hz, 2),
    "redis_cpu_s": round((float(r1) - float(r0)) / hz, 2),
    "cpu_us_per_event": round((float(c1) - float(c0) + float(r1) - float(r0)) / hz / received * 1e6, 2)
    if received else None,
}
print(json.dumps(out))
PY
  tail -1 "$work/runs.jsonl"
}

echo "terminals_bench: $runs runs, $terms terminals in $procs load processes, $rate notifications/s for ${secs}s${LOAD_NICE:+, load tools at nice $LOAD_NICE}${*:+, posrelay flags: $*}"
for run in $(seq "$runs"); do
  echo "load before run $run: $(cut -d' ' -f1-3 /proc/loadavg)"
  one_run "$run" "$@"
done
python3 - "$work/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
keys = ["rss_per_idle_conn_kib", "events_per_sec", "p50_ms", "p99_ms", "max_ms", "server_p50_ms",
        "server_p99_ms", "posrelay_cpu_pct", "redis_cpu_pct", "load_tools_cpu_pct",
        "posrelay_runq_wait_pct", "redis_runq_wait_pct", "redis_forks", "cpu_us_per_event"]
med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
print("median of", len(runs), "runs:", json.dumps({k: med([r[k] for r in runs if r[k] is not None]) for k in keys}))
print("all runs: lost", sum(r["lost"] for r in runs), "dups", sum(r["dups"] for r in runs),
      "non-200 answers", sum(r["non_200"] for r in runs))
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
