#!/usr/bin/env bash
# Full disk under Redis during a steady stream of settlements (issue 13, finding 6). Redis
# (appendonly, appendfsync everysec) keeps its data on a small tmpfs; posrelay commits a steady
# stream of notifications for one terminal (a Python client speaking the protocol, epoch-aware).
# Mid-stream the tmpfs is filled up: Redis answers what it cannot write to its AOF, then refuses
# writes (posrelay answers 503, so the sender retries, as Midtrans does). Redis is then killed
# (what it answered and never wrote is lost), the disk freed, Redis restarted from its AOF, the
# 503s retried and the stream goes on. Reports: notifications answered 200, those whose status
# Redis then lost (answered 200 and lost; whether the terminal had them first), registrations
# answered 201 and lost (their settlement, retried, is stored but routed nowhere), the
# terminal's resyncs, and every stored, routed settlement the terminal did not receive (must be
# none: RESULT ok). Needs root (a private mount namespace: unshare -m). Nothing is left running
# or mounted; KEEP=1 keeps the logs (posrelay, Redis, the terminal's events).
#   usage: bench/full_disk_stream.sh [SECONDS_BEFORE_FULL] [RATE]      defaults: 3 40
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${FULL_DISK_IN_NS:-}" != 1 ]; then
  exec env FULL_DISK_IN_NS=1 unshare -m --propagation private "$0" "$@"
fi
before=${1:-3} rate=${2:-40}
bin=${POSRELAY_BIN:-build/release/src}
[ -x "$bin/posrelay" ] || { echo "build posrelay first (cmake --build --preset release --target posrelay)"; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}" $(cat "$work/redis.pid" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  umount "$work/disk" 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
. bench/lib.sh  # free_port, ready

mkdir -p "$work/disk"
mount -t tmpfs -o size=16m tmpfs "$work/disk"
redis_port=$(free_port) http_port=$(free_port) term_port=$(free_port)
start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/disk" --save '' \
    --appendonly yes --appendfsync everysec --logfile "$work/redis.log" &
  redis_pid=$!
  pids+=($redis_pid)
  for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis did not start"; cat "$work/redis.log"; exit 1
}
start_redis
export POSRELAY_SERVER_KEY=SB-Mid-server-FULLDISK POSRELAY_OPERATOR_TOKEN=full-disk-operator
export POSRELAY_TERMINAL_SECRET=full-disk-terminal-secret-0123456789
POSRELAY_REDIS_URL=redis://127.0.0.1:$redis_port "$bin/posrelay" --listen 127.0.0.1:$http_port \
  --terminal-listen 127.0.0.1:$term_port --redis-command-timeout 500ms --log-level warn \
  2>"$work/posrelay.log" &
pids+=($!)
ready "http://127.0.0.1:$http_port/readyz" || { echo "posrelay did not start"; cat "$work/posrelay.log"; exit 1; }

# The driver fills the disk, kills Redis and restarts it with the same options (same port and
# directory), recording the running server's pid for the cleanup.
echo "$redis_pid" >"$work/redis.pid"
echo "full disk: ${before}s of settlements at ${rate}/s, then the disk fills (load: $(cut -d' ' -f1-3 /proc/loadavg))"
REDIS_PORT=$redis_port HTTP=http://127.0.0.1:$http_port TERM_PORT=$term_port BEFORE=$before RATE=$rate WORK=$work \
  TOKEN="$("$bin/posrelay" token T-FULL S-FULL)" python3 bench/full_disk_stream.py
echo "redis: $(grep -c 'writing to the AOF' "$work/redis.log" || true) AOF write errors logged"
echo "posrelay: $(curl -s "http://127.0.0.1:$http_port/metrics" | grep -E '^posrelay_terminal_(resyncs|epoch_rotations)_total' | tr '\n' ' ')"
