#!/usr/bin/env bash
# posrelay against its peers in one run (issue 18), on this machine, on loopback:
#   ingest   bench/ingest_compare.sh RUNS rounds: posrelay (embedded Redis), the Node peer
#            (node + its Redis, AOF everysec) and the nginx ceiling, fresh orders every round
#   fan-out  TERMINALS terminals at RATE and at LOW_RATE events/s: bench/terminals_bench.sh
#            (posrelay + its Redis) and bench/mosquitto_fanout.sh (Mosquitto QoS 1), one run
#            of each in turn, RUNS times per rate, so each pair of runs sees the same machine
#   usage: bench/compare_peers.sh [RUNS] [TERMINALS] [RATE] [LOW_RATE]   (defaults 3, 10000, 5000, 1000)
#   e.g.   bench/compare_peers.sh 1 500 300 100    (a check of the harness, not a measurement)
#   env:   INGEST_SECS (10), INGEST_CONNS (64): each ingest target's wrk phase per round;
#          FANOUT_SECS (20): each fan-out run's paced phase; POSRELAY_BIN, LOAD_BIN, SHARED_DIR,
#          FANOUT_WAIT_QUIET, FANOUT_ARGS, LOAD_PROCS, LOAD_NICE: passed on to the scripts above;
#          KEEP_DIR: keep every script's full output there
# Output: each script's output as it runs, then a block of ratio lines (medians of the RUNS
# per-run or per-pair figures), and last one JSON line with every figure and, per target of
# issue 18, its value and pass (true/false; null where the issue sets no bound).
# Setup: deploy/install-test-deps.sh, deploy/install-bench-deps.sh, a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3} terms=${2:-10000} rate=${3:-5000} low_rate=${4:-1000}
ingest_secs=${INGEST_SECS:-10} ingest_conns=${INGEST_CONNS:-64} fanout_secs=${FANOUT_SECS:-20}

# The open-file limit: posrelay (and Mosquitto) hold TERMINALS sockets plus their own files; the
# load tools split theirs across processes (LOAD_PROCS, the fan-out tool's 2 workers).
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((terms + 200)) ]; then
  echo "open-file limit $(ulimit -n) (hard) is too low for $terms terminals: need $((terms + 200))" >&2
  exit 1
fi
for tool in wrk nginx node redis-server redis-cli mosquitto python3 curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run deploy/install-test-deps.sh and deploy/install-bench-deps.sh" >&2; exit 1; }
done
# The fan-out tool runs on Debian's python (its run.sh: PYTHON, default /usr/bin/python3).
"${PYTHON:-/usr/bin/python3}" -c 'import uvloop' 2>/dev/null ||
  echo "warning: no python3-uvloop: the fan-out tool runs on asyncio (deploy/install-bench-deps.sh)" >&2

work=$(mktemp -d)
child="" shown=""
cleanup() {
  # Each script traps its own processes; a child still running gets a TERM and is waited for.
  if [ -n "$child" ]; then kill "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  if [ -n "$shown" ]; then wait "$shown" 2>/dev/null || true; fi
  if [ -n "${KEEP_DIR:-}" ]; then mkdir -p "$KEEP_DIR" && cp "$work"/*.log "$KEEP_DIR"/ 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
step() {  # LOG COMMAND...: runs COMMAND (in the background, so a signal reaches the trap),
  local log=$work/$1 rc=0  # its output kept in LOG and shown as it comes (tail ends with it)
  shift
  echo "== $*"
  "$@" >"$log" 2>&1 &
  child=$!
  tail -n +1 -f --pid="$child" "$log" &
  shown=$!
  wait "$child" || rc=$?
  child=""
  wait "$shown" || true
  shown=""
  [ "$rc" = 0 ] || { echo "failed (rc $rc): $*" >&2; exit 1; }
}

echo "compare_peers: $runs runs; ingest ${ingest_secs}s x 3 targets per round, $ingest_conns connections;" \
  "fan-out $terms terminals at $rate and $low_rate events/s, ${fanout_secs}s; load $(cut -d' ' -f1-3 /proc/loadavg)"
step ingest.log bench/ingest_compare.sh "$runs" "$ingest_secs" "$ingest_conns"
for r in "$rate" "$low_rate"; do
  for run in $(seq "$runs"); do
    step "posrelay-$r-$run.log" bench/terminals_bench.sh 1 "$fanout_secs" "$terms" "$r"
    step "mosquitto-$r-$run.log" bench/mosquitto_fanout.sh 1 "$fanout_secs" "$terms" "$r"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$work" "$runs" "$terms" "$rate" "$low_rate" <<'PY'
import glob, json, os, statistics, sys
work, runs, terms, rate, low = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def last_json(path, prefix="{"):
    lines = [l for l in open(path) if l.startswith(prefix)]
    return json.loads(lines[-1])
def med(xs, nd=3):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), nd) if xs else None
ingest = last_json(os.path.join(work, "ingest.log"))
fan = {}
for r in (rate, low):
    pos = [last_json(os.path.join(work, f"posrelay-{r}-{i}.log"), '{"run"') for i in range(1, runs + 1)]
    mos = [last_json(os.path.join(work, f"mosquitto-{r}-{i}.log"), '{"run"') for i in range(1, runs + 1)]
    pairs = list(zip(pos, mos))
    fan[r] = dict(
        cpu_us_per_event=med([p["cpu_us_per_event"] for p in pos], 2),
        mosquitto_cpu_us_per_msg=med([m["cpu_us_per_msg"] for m in mos], 2),
        cpu_vs_mosquitto=med([p["cpu_us_per_event"] / m["cpu_us_per_msg"] for p, m in pairs
                              if p["cpu_us_per_event"] and m["cpu_us_per_msg"]]),
        p99_ms=med([p["p99_ms"] for p in pos]), mosquitto_p99_ms=med([m["p99_ms"] for m in mos]),
        p99_vs_mosquitto=med([p["p99_ms"] / m["p99_ms"] for p, m in pairs if m["p99_ms"]]),
        p50_ms=med([p["p50_ms"] for p in pos]), mosquitto_p50_ms=med([m["p50_ms"] for m in mos]),
        server_p99_ms=med([p["server_p99_ms"] for p in pos]),
        rss_per_idle_conn_kib=med([p["rss_per_idle_conn_kib"] for p in pos], 2),
        mosquitto_rss_per_conn_kib=med([m["rss_per_conn_kib"] for m in mos], 2),
        events_per_sec=med([p["events_per_sec"] for p in pos], 0),
        mosquitto_delivered_per_s=med([m["delivered_per_s"] for m in mos], 0),
        lost=sum(p["lost"] for p in pos), dups=sum(p["dups"] for p in pos),
        mosquitto_lost=sum(m["lost"] for m in mos), mosquitto_dups=sum(m["dups"] for m in mos),
        non_200=sum(p["non_200"] for p in pos),
    )
hi, lo = fan[rate], fan[low]
def target(value, op, bound):
    if value is None: return {"value": None, "target": f"{op} {bound}", "pass": False}
    if op is None: return {"value": value, "target": None, "pass": None}
    return {"value": value, "target": f"{op} {bound}", "pass": value <= bound if op == "<=" else value >= bound}
rss = med([hi["rss_per_idle_conn_kib"], lo["rss_per_idle_conn_kib"]], 2)
targets = {
    "ingest_cpu_vs_node": target(ingest.get("cpu_vs_node"), "<=", 0.6),
    "ingest_rps_vs_node": target(ingest.get("rps_vs_node"), ">=", 1.5),
    "ingest_rps_vs_nginx": target(ingest.get("rps_vs_nginx"), ">=", 0.7),
    "ingest_p99_ms": target(ingest.get("p99_ms"), "<=", 5),
    f"fanout_cpu_vs_mosquitto_at_{rate}": target(hi["cpu_vs_mosquitto"], "<=", 1.5),
    f"fanout_p99_ms_at_{rate}": target(hi["p99_ms"], "<=", 10),
    f"fanout_p99_vs_mosquitto_at_{low}": target(lo["p99_vs_mosquitto"], None, None),
    "fanout_rss_per_idle_conn_kib": target(rss, "<=", 4),
    "fanout_lost_dups": target(hi["lost"] + hi["dups"] + lo["lost"] + lo["dups"], "<=", 0),
}
w = lambda x: "-" if x is None else x  # noqa: E731
print(f"== compare_peers: medians of {runs} runs, {terms} terminals")
print(f"ingest   req/s posrelay {w(ingest.get('posrelay_rps'))}, node {w(ingest.get('node_rps'))}, nginx {w(ingest.get('nginx_rps'))}:"
      f" vs node {w(ingest.get('rps_vs_node'))} (>= 1.5), vs nginx {w(ingest.get('rps_vs_nginx'))} (>= 0.7)")
print(f"ingest   cpu/request posrelay+redis {w(ingest.get('cpu_us_per_req'))} us, node+redis {w(ingest.get('node_cpu_us_per_req'))} us:"
      f" {w(ingest.get('cpu_vs_node'))} (<= 0.6)")
print(f"ingest   p99 posrelay {w(ingest.get('p99_ms'))} ms (<= 5), node {w(ingest.get('node_p99_ms'))} ms")
for r, f in ((rate, hi), (low, lo)):
    print(f"fan-out  {r}/s: cpu/event posrelay+redis {w(f['cpu_us_per_event'])} us, mosquitto broker {w(f['mosquitto_cpu_us_per_msg'])} us/msg:"
          f" {w(f['cpu_vs_mosquitto'])}" + (" (<= 1.5)" if r == rate else ""))
    print(f"fan-out  {r}/s: p99 posrelay {w(f['p99_ms'])} ms" + (" (<= 10)" if r == rate else "")
          + f", mosquitto {w(f['mosquitto_p99_ms'])} ms: {w(f['p99_vs_mosquitto'])}; p50 {w(f['p50_ms'])} vs {w(f['mosquitto_p50_ms'])} ms")
    print(f"fan-out  {r}/s: lost/dup posrelay {f['lost']}/{f['dups']}, mosquitto {f['mosquitto_lost']}/{f['mosquitto_dups']};"
          f" rss/idle conn posrelay {w(f['rss_per_idle_conn_kib'])} KiB, mosquitto {w(f['mosquitto_rss_per_conn_kib'])} KiB")
failed = [k for k, t in targets.items() if t["pass"] is False]
print("targets: " + ("all met" if not failed else "not met: " + ", ".join(failed)))
print(json.dumps({"runs": runs, "terminals": terms, "rate": int(rate), "low_rate": int(low), "ingest": ingest,
                  "fanout": {rate: hi, low: lo}, "targets": targets}))
PY
