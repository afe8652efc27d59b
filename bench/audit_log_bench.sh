#!/usr/bin/env bash
# The audit line's cost: ingest req/s of two posrelay nodes, --audit-log true and false, both at
# --log-level info with stderr to a file (as a service's journal or log file would take it),
# rounds alternating on/off in the same run; prints each round, the medians and their ratio.
#   usage: bench/audit_log_bench.sh [ROUNDS] [SECONDS] [CONNECTIONS] [-- extra posrelay flags]
#   e.g.   bench/audit_log_bench.sh 3 10 64                  (in-memory commit: the worst case)
#          bench/audit_log_bench.sh 3 10 64 -- --store redis (embedded Redis)
# Needs wrk and python3; bodies from ../shared/bench/gen_notifications.py (10% duplicates).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
rounds=${1:-3} secs=${2:-10} conns=${3:-64}
shift $(( $# < 3 ? $# : 3 ))
[ "${1:-}" = "--" ] && shift
extra=("$@")
[ ${#extra[@]} -gt 0 ] || extra=(--store memory)
shared=${SHARED_DIR:-../shared}
bin=${POSRELAY_BIN:-build/release/src/posrelay}
[ -x "$bin" ] || { cmake --preset release >/dev/null && cmake --build --preset release --target posrelay; }
key=${SERVER_KEY:-SB-Mid-server-TESTKEY}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
python3 "$shared/bench/gen_notifications.py" "${BODIES_N:-200000}" "$key" "$work/bodies.ndjson" 0.1
declare -A port
for audit in true false; do
  port[$audit]=$(free_port)
  POSRELAY_SERVER_KEY=$key "$bin" --listen "127.0.0.1:${port[$audit]}" --terminal-listen off \
    --data-dir "$work/data-$audit" --log-level info --audit-log "$audit" "${extra[@]}" \
    2>"$work/log-$audit" &
  pids+=($!)
  ready "http://127.0.0.1:${port[$audit]}/readyz" || { echo "posrelay did not start"; cat "$work/log-$audit"; exit 1; }
done
rate() { BODIES=$work/bodies.ndjson TARGET_PATH=/v1/midtrans/notifications \
  wrk -t1 -c"$conns" -d"${secs}s" -s "$shared/bench/wrk_post.lua" "http://127.0.0.1:$1/" \
  | awk '/Requests\/sec/ {print $2}'; }
on=() off=()
for r in $(seq "$rounds"); do
  a=$(rate "${port[true]}"); b=$(rate "${port[false]}")
  echo "round $r: audit on ${a} req/s, audit off ${b} req/s"
  on+=("$a"); off+=("$b")
done
echo "audit lines written: $(grep -c '"msg":"notification"' "$work/log-true") (on), $(grep -c '"msg":"notification"' "$work/log-false" || true) (off)"
python3 - "${on[*]}" "${off[*]}" <<'PY'
import statistics, sys
on = statistics.median(map(float, sys.argv[1].split()))
off = statistics.median(map(float, sys.argv[2].split()))
print(f"median audit on {on:.0f} req/s, off {off:.0f} req/s, ratio on/off {on / off:.3f}")
PY
