#!/usr/bin/env bash
# End-to-end ingest benchmark: starts a release posrelay, then runs
# ../shared/bench/compare.sh (wrk with signed notification bodies, 10% duplicates)
# against it and the nginx ceiling in the same run.
#   usage: bench/ingest_compare.sh [ROUNDS] [SECONDS] [CONNECTIONS] [-- extra posrelay flags]
# Prints compare.sh's rounds and median ratio, posrelay's CPU time, and its RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} secs=${2:-10} conns=${3:-64}
shift $(( $# < 3 ? $# : 3 ))
[ "${1:-}" = "--" ] && shift
shared=${SHARED_DIR:-../shared}
bin=build/release/src/posrelay
[ -x "$bin" ] || { cmake --preset release >/dev/null && cmake --build --preset release --target posrelay; }
export SERVER_KEY=${SERVER_KEY:-SB-Mid-server-TESTKEY}
log=$(mktemp)
port=${PORT:-18090}
POSRELAY_SERVER_KEY=$SERVER_KEY "$bin" --listen 127.0.0.1:$port --log-level error "$@" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "posrelay did not start"; cat "$log"; exit 1; }
echo "posrelay pid $pid on port $port ($*)"
t0=$(awk '{print $14+$15}' /proc/$pid/stat)
"$shared/bench/compare.sh" "http://127.0.0.1:$port/v1/midtrans/notifications" "$rounds" "$secs" "$conns"
t1=$(awk '{print $14+$15}' /proc/$pid/stat)
echo "posrelay cpu seconds during the run: $(( (t1 - t0) / $(getconf CLK_TCK) ))"
echo "posrelay rss: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
