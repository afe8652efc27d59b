#!/usr/bin/env bash
# Charge round-trip latency through posrelay to midtrans-sim, and its overhead over calling
# the sim directly (same machine, same run). Release build, embedded Redis, temp dirs.
#   usage: bench/charge_latency.sh [RUNS] [CHARGES]     defaults: 3 2000
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3} n=${2:-2000}
bin=build/release/src
[ -x "$bin/posrelay" ] && [ -x "$bin/sim/midtrans-sim" ] || {
  cmake --preset release >/dev/null && cmake --build --preset release --target posrelay midtrans-sim; }
. bench/lib.sh  # free_port, ready
export MIDTRANS_SIM_SERVER_KEY=SB-Mid-server-LAT POSRELAY_SERVER_KEY=SB-Mid-server-LAT
export POSRELAY_TERMINAL_SECRET=latency-bench-terminal-secret-0123
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$runs"); do
  work=$(mktemp -d) pids=()
  sim_port=$(free_port) http_port=$(free_port) term_port=$(free_port)
  "$bin/sim/midtrans-sim" --listen 127.0.0.1:$sim_port --notify-pending no --log-level error 2>"$work/sim.log" &
  pids+=($!)
  "$bin/posrelay" --listen 127.0.0.1:$http_port --terminal-listen 127.0.0.1:$term_port --data-dir "$work/data" \
    --midtrans-url http://127.0.0.1:$sim_port --public-url http://127.0.0.1:$http_port --poll-rate 0 \
    --log-level warn 2>"$work/posrelay.log" &
  pids+=($!)
  trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
  ready "http://127.0.0.1:$sim_port/sim/stats" && ready "http://127.0.0.1:$http_port/readyz"
  N=$n SIM_PORT=$sim_port TERMINAL_PORT=$term_port TOKEN=$("$bin/posrelay" token T-LAT S-LAT) \
    python3 bench/charge_latency.py || { echo "run failed; posrelay alive: $(kill -0 ${pids[1]} 2>/dev/null && echo yes || echo no)"; tail -3 "$work/posrelay.log"; }
  kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; trap - EXIT
done
