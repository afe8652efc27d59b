#!/usr/bin/env bash
# Ingest on one Redis vs a Redis Cluster of 3 primaries, same run, same load: two release
# posrelay nodes started side by side (--terminal-listen off), one on a single redis-server
# (redis://), one on a 3-primary Cluster (redis-cluster://), both AOF everysec, no replicas
# (REPLICAS=1: one replica per primary on both sides). Rounds alternate single / cluster;
# each round POSTs fresh signed notifications (new orders, 4 in 5 settlement, 10% repeated
# bodies as Midtrans retries) with wrk for SECONDS on CONNECTIONS connections.
#   usage: bench/ingest_cluster_compare.sh [ROUNDS] [SECONDS] [CONNECTIONS]   (3, 10, 64)
#   env:   POSRELAY_BIN (the release build's), BODIES_N (300000 per round), IO_THREADS
#          (posrelay's --io-threads, default 1 on both: the same share of 2 cores),
#          SELF_CHECK=1 (the "cluster" side is a second single Redis: checks the harness, the
#          ratio must come out near 1)
# Per round and side: req/s (wrk), non-200 answers, and CPU per notification in µs:
# posrelay's utime+stime plus that of EVERY redis-server of that side (/proc/PID/stat before
# and after the round) divided by the requests answered. Prints each round, the medians, and
# last the ratio cluster / single of the CPU per notification and of req/s.
# Needs: release build, wrk, python3, redis-server, redis-cli. Leaves no process behind.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib/redis_topology.sh
source bench/lib/redis_topology.sh
rounds=${1:-3} secs=${2:-10} conns=${3:-64}
bin=${POSRELAY_BIN:-build/release/src/posrelay}
[ -x "$bin" ] || { cmake --preset release >/dev/null && cmake --build --preset release -j2 --target posrelay; }
export POSRELAY_SERVER_KEY=${SERVER_KEY:-SB-Mid-server-TESTKEY}
replicas=${REPLICAS:-0}
rt_init
work=$RT_DIR/work
mkdir -p "$work"

# The single side: one redis-server (plus a replica with REPLICAS=1).
if [ "$replicas" = 1 ]; then
  rt_replicated 1
  single_port=$RT_PRIMARY single_pids="${RT_PID[$RT_PRIMARY]} ${RT_PID[${RT_REPLICAS[0]}]}"
else
  rt_single
  single_port=$RT_SINGLE single_pids=${RT_PID[$RT_SINGLE]}
fi
if [ -n "${SELF_CHECK:-}" ]; then  # the "cluster" side is a second single Redis: ratio ≈ 1
  rt_single
  cluster_pids=${RT_PID[$RT_SINGLE]} cluster_url="redis://127.0.0.1:$RT_SINGLE"
else
  rt_cluster "$replicas"
  cluster_pids="" seeds=""
  for p in "${RT_CLUSTER[@]}"; do cluster_pids+=" ${RT_PID[$p]}"; seeds+="${seeds:+,}127.0.0.1:$p"; done
  cluster_url="redis-cluster://$seeds"
fi

declare -A HTTP=() PID=()
start() {  # SIDE URL
  local side=$1 url=$2 port
  port=$(rt_free_port)
  POSRELAY_REDIS_URL=$url "$bin" --listen "127.0.0.1:$port" --terminal-listen off --data-dir "$work/data-$side" \
    --io-threads "${IO_THREADS:-1}" --confirm-paid false --poll-rate 0 --audit-log false --log-level error \
    2>"$work/posrelay-$side.log" &
  PID[$side]=$! HTTP[$side]=$port
  rt_at_exit "kill ${PID[$side]}; wait ${PID[$side]}"
  rt_wait 30 "posrelay ($side) ready or gone" \
    bash -c "! kill -0 ${PID[$side]} 2>/dev/null || curl -fs http://127.0.0.1:$port/readyz"
  kill -0 "${PID[$side]}" 2>/dev/null && curl -fs "http://127.0.0.1:$port/readyz" >/dev/null
}
start single "redis://127.0.0.1:$single_port" ||
  { echo "posrelay on a single Redis did not start:" >&2; tail -5 "$work/posrelay-single.log" >&2; exit 1; }
if ! start cluster "$cluster_url"; then
  echo "UNSUPPORTED: this posrelay build refused redis-cluster:// (the Cluster client is not in it):" >&2
  tail -c 400 "$work/posrelay-cluster.log" >&2
  exit 1
fi

ticks() {  # PID...: utime + stime of each, summed (clock ticks)
  local p s=0
  for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$s"
}
# PID...: read(2)/write(2)-family calls of each (/proc/PID/io syscr + syscw), summed: redis-server
# reads and writes its sockets with them (posrelay's recvmsg/sendmsg are not counted there).
syscalls() {
  local p s=0
  for p in "$@"; do
    s=$((s + $(awk '/^sysc[rw]:/ {t += $2} END {print t + 0}' "/proc/$p/io" 2>/dev/null || echo 0)))
  done
  echo "$s"
}
round() {  # SIDE ROUND: one wrk run; appends a JSON line to $work/rounds.jsonl
  local side=$1 r=$2 pids rpids c0 c1 p0 p1 s0 s1 rs0 rs1
  rpids=$([ "$side" = single ] && echo "$single_pids" || echo "$cluster_pids")
  pids="${PID[$side]} $rpids"
  python3 bench/fault_suite.py bodies "$work/bodies.ndjson" "${BODIES_N:-300000}" "I$side$r-" 0.1
  # shellcheck disable=SC2086
  c0=$(ticks $pids) p0=$(ticks "${PID[$side]}") s0=$(syscalls "${PID[$side]}") rs0=$(syscalls $rpids)
  BODIES=$work/bodies.ndjson TARGET_PATH=/v1/midtrans/notifications \
    wrk -t1 -c"$conns" -d"${secs}s" -s bench/wrk_lines.lua "http://127.0.0.1:${HTTP[$side]}" >"$work/wrk-$side-$r.log"
  # shellcheck disable=SC2086
  c1=$(ticks $pids) p1=$(ticks "${PID[$side]}") s1=$(syscalls "${PID[$side]}") rs1=$(syscalls $rpids)
  python3 - "$side" "$r" "$work/wrk-$side-$r.log" "$((c1 - c0))" "$(getconf CLK_TCK)" "$secs" \
    "$((p1 - p0))" "$((s1 - s0))" "$((rs1 - rs0))" >>"$work/rounds.jsonl" <<'PY'
import json, re, sys
side, r, log, ticks, hz, secs, pticks, _psys, rsys = sys.argv[1:]
text = open(log).read()
codes = {int(k): int(v) for k, v in re.findall(r"status (\d+): (\d+)", text)}
reqs = sum(codes.values())
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
cpu_s = int(ticks) / float(hz)
print(json.dumps({"side": side, "round": int(r), "req_per_s": round(rps), "requests": reqs,
                  "non_200": reqs - codes.get(200, 0),
                  "cpu_us_per_notification": round(cpu_s * 1e6 / max(reqs, 1), 1),
                  "posrelay_cpu_us": round(int(pticks) / float(hz) * 1e6 / max(reqs, 1), 1),
                  "redis_syscalls_per_notification": round(int(rsys) / max(reqs, 1), 2),
                  "cpu_cores": round(cpu_s / float(secs), 2)}))
PY
  tail -1 "$work/rounds.jsonl"
}

echo "ingest_cluster_compare: $rounds rounds x ${secs}s, $conns connections, replicas per primary: $replicas"
for r in $(seq "$rounds"); do
  round single "$r"
  round cluster "$r"
done
python3 - "$work/rounds.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {}
for side in ("single", "cluster"):
    rs = [r for r in rows if r["side"] == side]
    med[side] = {k: statistics.median(r[k] for r in rs)
                 for k in ("req_per_s", "cpu_us_per_notification", "posrelay_cpu_us",
                           "redis_syscalls_per_notification")}
    med[side]["non_200"] = sum(r["non_200"] for r in rs)
    print(f"median {side}: " + json.dumps(med[side]))
print(json.dumps({"cpu_per_notification_ratio_cluster_over_single":
                  round(med["cluster"]["cpu_us_per_notification"] / med["single"]["cpu_us_per_notification"], 3),
                  "req_per_s_ratio_cluster_over_single":
                  round(med["cluster"]["req_per_s"] / med["single"]["req_per_s"], 3)}))
PY
