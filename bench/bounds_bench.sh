#!/usr/bin/env bash
# Resource bounds of posrelay (issue 13, finding 8): its memory during a ping flood from
# terminals that never read, and its descriptors after many connect+close before hello.
# A fresh release posrelay (embedded Redis, default limits) for each measurement.
#   usage: bench/bounds_bench.sh [SECONDS] [TERMINALS] [CONNECTIONS]
#          (defaults 30 s, 10 terminals, 5000 connect+close)
#   env:   POSRELAY_BIN (the release build) the binary to measure, e.g. the parent commit's
#          to compare before/after; KEEP_DIR: copy posrelay's logs there
# Figures (bench/bounds_bench.py prints them, one JSON line per measurement):
#   flood  rss_before/peak/end (VmRSS, sampled every 0.25 s), growth at the peak and after
#          10 s, pings sent, connections made, and how many were cut (each flooding terminal
#          reconnects and floods again until the time is up)
#   churn  posrelay's open descriptors before, at the peak, 0.1/1/5/10/30 s after the last
#          close, and when they were back to the count before (null: not within 60 s)
# Needs: release build, python3, curl. Leaves no process behind (trap).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30} terms=${2:-10} conns=${3:-5000}
bin=${POSRELAY_BIN:-build/release/src/posrelay}
[ -x "$bin" ] || cmake --build --preset release -j2 --target posrelay
# 5,000 descriptors held at once by the unfixed build: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((conns + 200)) ] || { echo "open-file limit $(ulimit -n) < $((conns + 200))" >&2; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  if [ -n "${KEEP_DIR:-}" ]; then mkdir -p "$KEEP_DIR" && cp "$work"/*.log "$KEEP_DIR"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export POSRELAY_TERMINAL_SECRET=bench-terminal-secret
http=${PORT:-18191} tport=${TERMINAL_PORT:-17171}

start() {  # NAME: a fresh posrelay, waits until ready
  rm -rf "$work/data"
  "$bin" --listen "127.0.0.1:$http" --terminal-listen "127.0.0.1:$tport" \
    --data-dir "$work/data" --log-level warn >"$work/$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "posrelay not ready: $(cat "$work/$1.log")" >&2
  exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
metric() { curl -fs "http://127.0.0.1:$http/metrics" | awk -v s="$1" '$1 == s {print $2; f=1} END {if (!f) print 0}'; }

echo "binary: $bin ($("$bin" --version 2>/dev/null | head -1))"
start flood
python3 bench/bounds_bench.py flood "$pid" "127.0.0.1:$tport" "$secs" "$terms" "$POSRELAY_TERMINAL_SECRET" |
  sed 's/^/flood: /'
echo "flood: slow_consumer_disconnects=$(metric posrelay_terminal_slow_consumer_disconnects_total)" \
  "reads_paused=$(metric posrelay_terminal_reads_paused_total)"
stop
start churn
python3 bench/bounds_bench.py churn "$pid" "127.0.0.1:$tport" "$conns" | sed 's/^/churn: /'
stop
