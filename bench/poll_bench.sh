#!/usr/bin/env bash
# Poll-fallback benchmark (issue: status-poll scheduler). Starts midtrans-sim dropping a share
# of the notifications, a release posrelay with its embedded Redis and a fleet poll budget,
# charges ORDERS orders through TERMINALS terminals, pays them all, and reports: the highest
# status-call rate Midtrans saw in any second (sliding window, counted by the sim), the time
# from payment to the terminal knowing for the orders whose notification was dropped (p50,
# p99), and how many never arrived. Nothing is left running.
#   usage: bench/poll_bench.sh [ORDERS] [RATE] [DROP]      defaults: 10000 50 0.3
set -euo pipefail
cd "$(dirname "$0")/.."
orders=${1:-10000} rate=${2:-50} drop=${3:-0.3}
bin=build/release/src
[ -x "$bin/posrelay" ] && [ -x "$bin/sim/midtrans-sim" ] || {
  cmake --preset release >/dev/null && cmake --build --preset release --target posrelay midtrans-sim; }
ulimit -n 20000 2>/dev/null || true
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
. bench/lib.sh  # free_port, ready

sim_port=$(free_port) http_port=$(free_port) term_port=$(free_port)
export MIDTRANS_SIM_SERVER_KEY=SB-Mid-server-BENCH POSRELAY_SERVER_KEY=SB-Mid-server-BENCH
export POSRELAY_TERMINAL_SECRET=bench-terminal-secret-0123456789
"$bin/sim/midtrans-sim" --listen 127.0.0.1:$sim_port --drop-rate "$drop" --seed 7 \
  --log-level error 2>"$work/sim.log" &
pids+=($!)
ready "http://127.0.0.1:$sim_port/sim/stats" || { echo "sim did not start"; cat "$work/sim.log"; exit 1; }
"$bin/posrelay" --listen 127.0.0.1:$http_port --terminal-listen 127.0.0.1:$term_port \
  --data-dir "$work/data" --midtrans-url "http://127.0.0.1:$sim_port" \
  --public-url "http://127.0.0.1:$http_port" --poll-rate "$rate" --log-level error \
  --terminal-max-inflight 100000 2>"$work/posrelay.log" &
pids+=($!)
relay=$!
ready "http://127.0.0.1:$http_port/readyz" || { echo "posrelay did not start"; cat "$work/posrelay.log"; exit 1; }
tokens=$(for i in $(seq 20); do printf '"T-B%02d":"%s",' "$i" "$("$bin/posrelay" token "T-B$(printf %02d "$i")" S-BENCH)"; done)
echo "bench: $orders orders, poll budget $rate/s for the fleet, ${drop} of notifications dropped (load: $(cut -d' ' -f1-3 /proc/loadavg))"
TERMINAL_HOST=127.0.0.1 TERMINAL_PORT=$term_port SIM_URL=http://127.0.0.1:$sim_port ORDERS=$orders \
  TOKENS="{${tokens%,}}" python3 bench/poll_bench.py
echo "posrelay: $(curl -s "http://127.0.0.1:$http_port/metrics" | grep -E '^posrelay_poll_(orders_unknown|resolved|lease_takeovers)_total|^posrelay_poll_calls_total' | tr '\n' ' ')"
echo "posrelay rss: $(awk '/VmRSS/ {print $2, $3}' /proc/$relay/status)"
