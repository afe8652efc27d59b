#!/usr/bin/env bash
# What confirming paid with Midtrans costs (--confirm-paid): time from a payment at
# midtrans-sim to the terminal's paid event, with confirmation on and off, same run, same
# machine; and GET status calls per paid order. Release build, embedded Redis, temp dirs.
#   usage: bench/paid_latency.sh [RUNS] [ORDERS]     defaults: 3 300
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3} n=${2:-300}
bin=${POSRELAY_BIN_DIR:-build/release/src}
[ -x "$bin/posrelay" ] && [ -x "$bin/sim/midtrans-sim" ] || {
  cmake --preset release >/dev/null && cmake --build --preset release --target posrelay midtrans-sim; }
. bench/lib.sh  # free_port, ready
export MIDTRANS_SIM_SERVER_KEY=SB-Mid-server-PAID POSRELAY_SERVER_KEY=SB-Mid-server-PAID
export POSRELAY_TERMINAL_SECRET=paid-bench-terminal-secret-0123456789abcdef
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$runs"); do
  for confirm in true false; do
    work=$(mktemp -d) pids=()
    sim_port=$(free_port) http_port=$(free_port) term_port=$(free_port)
    "$bin/sim/midtrans-sim" --listen 127.0.0.1:$sim_port --notify-pending no --log-level error 2>"$work/sim.log" &
    pids+=($!)
    # Polling off: every status call the sim counts is a confirmation.
    "$bin/posrelay" --listen 127.0.0.1:$http_port --terminal-listen 127.0.0.1:$term_port --data-dir "$work/data" \
      --midtrans-url http://127.0.0.1:$sim_port --public-url http://127.0.0.1:$http_port --poll-rate 0 \
      --confirm-paid $confirm --log-level warn 2>"$work/posrelay.log" &
    pids+=($!)
    trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
    ready "http://127.0.0.1:$sim_port/sim/stats" && ready "http://127.0.0.1:$http_port/readyz"
    N=$n CONFIRM=$confirm SIM_PORT=$sim_port TERMINAL_PORT=$term_port \
      TOKEN=$("$bin/posrelay" token T-PAID S-PAID) python3 bench/paid_latency.py ||
      { echo "run failed"; tail -3 "$work/posrelay.log"; }
    kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; trap - EXIT
  done
done
