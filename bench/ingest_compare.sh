#!/usr/bin/env bash
# End-to-end ingest benchmark: starts a release posrelay, then runs
# ../shared/bench/compare.sh (wrk with signed notification bodies, 10% duplicates)
# against it and the nginx ceiling in the same run.
#   usage: bench/ingest_compare.sh [ROUNDS] [SECONDS] [CONNECTIONS] [-- extra posrelay flags]
#   e.g.   bench/ingest_compare.sh 3 10 64 -- --store memory     (in-memory commit)
#          bench/ingest_compare.sh 3 10 64                       (embedded Redis, the default)
# Prints compare.sh's rounds and median ratio, posrelay's CPU time, and its RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} secs=${2:-10} conns=${3:-64}
shift $(( $# < 3 ? $# : 3 ))
[ "${1:-}" = "--" ] && shift
shared=${SHARED_DIR:-../shared}
bin=${POSRELAY_BIN:-build/release/src/posrelay}  # POSRELAY_BIN: another build to measure
[ -x "$bin" ] || { cmake --preset release >/dev/null && cmake --build --preset release --target posrelay; }
export SERVER_KEY=${SERVER_KEY:-SB-Mid-server-TESTKEY}
log=$(mktemp)
port=${PORT:-18090}
data=$(mktemp -d)  # the embedded Redis's directory when the store is redis
POSRELAY_SERVER_KEY=$SERVER_KEY "$bin" --listen 127.0.0.1:$port --terminal-listen off --data-dir "$data" \
  --log-level error "$@" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$log" "$data"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "posrelay did not start"; cat "$log"; exit 1; }
echo "posrelay pid $pid on port $port ($*)"
cpu() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
redis_pid=$(pgrep -P "$pid" redis-server || true)  # the embedded Redis, if any
# The embedded Redis's forks (AOF rewrites): each one stalls commits for a while on a small VM.
redis_forks() {
  [ -n "$redis_pid" ] && command -v redis-cli >/dev/null || { echo "?"; return; }
  redis-cli -s "$data/redis.sock" INFO stats 2>/dev/null | awk -F: '/^total_forks/ {print $2+0}'
}
f0=$(redis_forks)
t0=$(cpu $pid); r0=$([ -n "$redis_pid" ] && cpu "$redis_pid" || echo 0); w0=$(date +%s.%N)
"$shared/bench/compare.sh" "http://127.0.0.1:$port/v1/midtrans/notifications" "$rounds" "$secs" "$conns"
t1=$(cpu $pid); r1=$([ -n "$redis_pid" ] && cpu "$redis_pid" || echo 0); w1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
python3 - "$t0" "$t1" "$r0" "$r1" "$w0" "$w1" "$hz" <<'PY'
import sys
t0, t1, r0, r1, w0, w1, hz = map(float, sys.argv[1:])
wall = w1 - w0
print(f"posrelay cpu: {(t1 - t0) / hz:.1f} s over {wall:.0f} s wall ({(t1 - t0) / hz / wall * 100:.0f}% of one core, "
      "both targets' rounds included)")
if r1 > 0:
    print(f"redis-server cpu: {(r1 - r0) / hz:.1f} s ({(r1 - r0) / hz / wall * 100:.0f}% of one core)")
PY
echo "posrelay rss: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
f1=$(redis_forks)
[ "$f0" != "?" ] && [ "$f1" != "?" ] && echo "embedded redis forks (AOF rewrites) during the run: $((f1 - f0))"
