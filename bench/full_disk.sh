#!/usr/bin/env bash
# A full disk under the embedded Redis during a steady stream of payments, then a crash of
# that Redis (posrelay restarts it from an AOF that lacks what it could not write). Checks that
# every order midtrans-sim settled reaches the terminal as paid (bench/full_disk.py), and prints
# what posrelay detected: new epochs, 503 answers, polls that found lost settlements.
# Needs root (a small tmpfs is mounted as the data directory). Release build, loopback only.
#   usage: bench/full_disk.sh [RUNS] [SECONDS] [RATE]      defaults: 3 20 20
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3} seconds=${2:-20} rate=${3:-20}
bin=${POSRELAY_BIN_DIR:-build/release/src}
[ "$(id -u)" -eq 0 ] || { echo "full_disk.sh: needs root (mounts a tmpfs)"; exit 2; }
[ -x "$bin/posrelay" ] && [ -x "$bin/sim/midtrans-sim" ] || {
  cmake --preset release >/dev/null && cmake --build --preset release --target posrelay midtrans-sim; }
. bench/lib.sh  # free_port, ready
metric() { curl -fs "http://127.0.0.1:$1/metrics" | awk -v m="$2" 'index($0, m) == 1 {s += $NF} END {print s + 0}'; }
export MIDTRANS_SIM_SERVER_KEY=SB-Mid-server-FD POSRELAY_SERVER_KEY=SB-Mid-server-FD
export POSRELAY_TERMINAL_SECRET=full-disk-bench-terminal-secret-0123
status=0
for r in $(seq "$runs"); do
  work=$(mktemp -d) pids=()
  mkdir "$work/data" && mount -t tmpfs -o size=${TMPFS_SIZE:-24m} tmpfs "$work/data"
  cleanup() { [ -n "${KEEP_DIR:-}" ] && cp -r "$work"/*.log "$KEEP_DIR"/ 2>/dev/null; kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; umount "$work/data" 2>/dev/null; rm -rf "$work"; }
  trap cleanup EXIT
  sim_port=$(free_port) http_port=$(free_port) term_port=$(free_port)
  "$bin/sim/midtrans-sim" --listen 127.0.0.1:$sim_port --time-scale 600 --log-level error \
    --notification-url http://127.0.0.1:$http_port/v1/midtrans/notifications 2>"$work/sim.log" &
  pids+=($!)
  "$bin/posrelay" --listen 127.0.0.1:$http_port --terminal-listen 127.0.0.1:$term_port \
    --data-dir "$work/data" --midtrans-url http://127.0.0.1:$sim_port \
    --public-url http://127.0.0.1:$http_port --poll-first-delay 2s --poll-max-interval 4s \
    --log-level warn ${POSRELAY_ARGS:-} 2>"$work/posrelay.log" &
  pids+=($!)
  ready "http://127.0.0.1:$sim_port/sim/stats" && ready "http://127.0.0.1:$http_port/readyz"
  out=$(SIM_PORT=$sim_port TERMINAL_PORT=$term_port DATA_DIR="$work/data" FILLER="$work/data/filler" \
        SECONDS=$seconds RATE=$rate TOKEN=$("$bin/posrelay" token T-FD S-FD) \
        python3 bench/full_disk.py | tail -n 1) || status=1
  echo "$out" | python3 -c '
import json, sys
d = json.loads(sys.stdin.read()); extra = dict(a.split("=", 1) for a in sys.argv[1:])
d.update({k: float(v) for k, v in extra.items()}); print(json.dumps(d))' \
    "notifications_503=$(metric $http_port 'posrelay_notifications_rejected_total{reason="store_unavailable"}')" \
    "epoch_rotations=$(metric $http_port posrelay_terminal_epoch_rotations_total)" "resyncs_sent=$(metric $http_port posrelay_terminal_resyncs_total)" \
    "redis_restarts=$(metric $http_port posrelay_embedded_redis_restarts_total)" \
    "poll_resolved=$(metric $http_port posrelay_poll_resolved_total)" \
    "charges_restored=$(metric $http_port posrelay_charges_restored_total)"
  cleanup; trap - EXIT
done
exit $status
