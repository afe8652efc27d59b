#!/usr/bin/env bash
# The fan-out peer: Debian's Mosquitto at QoS 1, driven by the shared load tool
# (../shared/bench/fanout: one publisher, TERMINALS long-lived subscribers, each on its own
# terminal topic), at the same N and rate as bench/terminals_bench.sh. The tool is copied to a
# temporary directory (it writes runs/ beside itself); it starts and stops its own broker.
#   usage: bench/mosquitto_fanout.sh [RUNS] [SECONDS] [TERMINALS] [RATE]
#          (defaults 3, 20, 10000, 5000: RATE x SECONDS unicast messages, `--phases target`)
#   env:   SHARED_DIR (../shared); FANOUT_WAIT_QUIET (10) seconds the tool waits, at most,
#          for other processes to go below 15% of a core before connecting and before the
#          phase (its own default is 120/60: a shared machine would wait that long every
#          run; the figure it saw is printed as others_before_pct); FANOUT_ARGS: more options
#          for fanout_bench.py (e.g. --settle-idle 5); KEEP_DIR: copy each run's result.json
# Figures per run (from the tool's result.json, the target phase):
#   p50_ms/p99_ms/max_ms   receive time - the publisher's send time (CLOCK_MONOTONIC ns, taken
#                          just before the PUBLISH is written), over every delivered message:
#                          publisher -> broker -> subscriber, QoS 1 acks not waited for
#   broker_cpu_pct         mosquitto's utime+stime over the phase (publishing + drain) as % of
#                          one core; cpu_us_per_msg = broker CPU seconds / messages delivered
#   rss_per_conn_kib       broker VmRSS after the subscribers connected (2 s settle) - before,
#                          / connections; rss_per_idle_conn_kib the same after --settle-idle
#                          (20 s by default)
#   lost / dups            per the tool: missing seqs and repeated seqs at the subscribers
# Prints each run's JSON, and last a JSON line of the medians (lost and dups: summed).
# Needs: mosquitto, python3-uvloop (deploy/install-bench-deps.sh). Leaves no process behind.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3} secs=${2:-20} terms=${3:-10000} rate=${4:-5000}
shared=${SHARED_DIR:-../shared}
command -v mosquitto >/dev/null || command -v /usr/sbin/mosquitto >/dev/null ||
  { echo "no mosquitto: run deploy/install-bench-deps.sh" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((terms + 64)) ] ||
  { echo "open-file limit $(ulimit -n) is too low for a broker with $terms subscribers" >&2; exit 1; }
work=$(mktemp -d)
tool=""
cleanup() {
  # run.sh execs `timeout`, which passes the TERM on to the tool; the tool stops its broker.
  if [ -n "$tool" ]; then kill "$tool" 2>/dev/null || true; wait "$tool" 2>/dev/null || true; fi
  if [ -n "${KEEP_DIR:-}" ]; then mkdir -p "$KEEP_DIR" && cp "$work"/result-*.json "$KEEP_DIR"/ 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp -r "$shared/bench/fanout" "$work/fanout"
chmod -R u+w "$work/fanout"
msgs=$((rate * secs))
quiet=${FANOUT_WAIT_QUIET:-10}
echo "mosquitto_fanout: $runs runs, mosquitto-qos1, $terms subscribers, $msgs messages at $rate/s"
for run in $(seq "$runs"); do
  # shellcheck disable=SC2086  # FANOUT_ARGS: options, split on purpose
  "$work/fanout/run.sh" mosquitto-qos1 "$terms" "$msgs" "$rate" --phases target \
    --wait-quiet "$quiet" --wait-quiet-phase "$quiet" --out "$work/result-$run.json" ${FANOUT_ARGS:-} \
    >"$work/tool-$run.log" 2>&1 &
  tool=$!
  rc=0
  wait "$tool" || rc=$?
  tool=""
  if [ "$rc" != 0 ] || [ ! -s "$work/result-$run.json" ]; then
    echo "fanout tool failed (rc $rc):" >&2; tail -20 "$work/tool-$run.log" >&2; exit 1
  fi
  python3 - "$run" "$work/result-$run.json" <<'PY' | tee -a "$work/runs.jsonl"
import json, sys
run, path = sys.argv[1:]
r = json.load(open(path))
if r.get("error"):
    sys.exit(f"fanout tool error: {r['error']}")
t = r["phases"]["target"]
cpu, lat, mem = t["cpu"], t["latency_ms"], r["memory"]
broker_s = cpu["broker_pct"] / 100 * cpu["wall_s"]
print(json.dumps({
    "run": int(run), "peer": r["case"], "broker": r.get("broker_version"), "event_loop": r.get("event_loop"),
    "subscribers": r["connect"]["ok"], "connect_failed": r["connect"]["failed"],
    "rss_per_conn_kib": mem["per_conn_kib"], "rss_per_idle_conn_kib": mem["per_conn_idle_kib"],
    "published": t["published"], "publish_rate": t["publish_rate"], "expected": t["expected"],
    "delivered": t["delivered"], "delivered_per_s": t["delivered_per_s"],
    "lost": t["lost"], "dups": t["duplicates"],
    "p50_ms": lat["p50"], "p99_ms": lat["p99"], "max_ms": lat["max"],
    "broker_cpu_pct": cpu["broker_pct"], "tool_cpu_pct": cpu["tool_pct"], "phase_s": cpu["wall_s"],
    "cpu_us_per_msg": round(broker_s / t["delivered"] * 1e6, 2) if t["delivered"] else None,
    "others_before_pct": t.get("others_before_pct"), "drain_end": t["drain_end"]}))
PY
done
python3 - "$work/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
keys = ["rss_per_conn_kib", "rss_per_idle_conn_kib", "delivered_per_s", "p50_ms", "p99_ms", "max_ms",
        "broker_cpu_pct", "tool_cpu_pct", "cpu_us_per_msg"]
out = {k: statistics.median(v) if (v := [r[k] for r in runs if r[k] is not None]) else None for k in keys}
out.update(runs=len(runs), lost=sum(r["lost"] for r in runs), dups=sum(r["dups"] for r in runs))
print(json.dumps(out))
PY
