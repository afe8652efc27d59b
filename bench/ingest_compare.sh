#!/usr/bin/env bash
# End-to-end ingest benchmark: a release posrelay (embedded Redis), the Node peer
# (../shared/bench/node-relay: parse, verify, Redis SET NX, answer; its own redis-server with
# AOF everysec) and the nginx ceiling (../shared/bench/nginx-ceiling.conf: `return 200`), each
# loaded by wrk in turn in every round, on loopback.
#   usage: bench/ingest_compare.sh [ROUNDS] [SECONDS] [CONNECTIONS] [-- extra posrelay flags]
#   e.g.   bench/ingest_compare.sh 3 10 64 -- --store memory     (in-memory commit)
#          bench/ingest_compare.sh 3 10 64                       (embedded Redis, the default)
#   env:   POSRELAY_BIN (build/release/src/posrelay) the posrelay to measure; SHARED_DIR
#          (../shared); NODE_RELAY_DIR (build/bench-peers/node-relay, made by
#          deploy/install-bench-deps.sh; without it the Node peer is skipped, its fields null);
#          BODIES_N (SECONDS x 25,000, at least 50,000) bodies per round; DUP_FRACTION (0.1)
#          bodies that repeat the previous one, as ../shared/bench/compare.sh sends;
#          PORT (18090) posrelay, NODE_PORT (18081), NODE_REDIS_PORT (16379), NGINX_PORT (18080)
# Every round generates its bodies with a fresh ORDER_PREFIX (gen_notifications.py), so every
# round commits new orders (replaying a round's bodies would measure duplicates instead); the
# three targets get the same bodies in a round, each its own store. Per target and round:
#   rps       wrk's Requests/sec (-t1, CONNECTIONS connections, SECONDS, bench/wrk_lines.lua)
#   p99_ms    wrk's latency percentile (done() hook): send of the request to its answer, per
#             request, at saturation (closed loop: each connection sends its next request
#             when the answer arrives, so this is queueing at full load, not at a paced rate)
#   cpu_us_per_req  utime+stime (/proc/PID/stat) of the target + its Redis over that
#             target's wrk phase only, / requests answered (10 ms clock ticks)
# Prints a line per round, the medians, posrelay's RSS and the embedded Redis's forks, and last
# one JSON line: medians of the per-round figures and of the per-round ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} secs=${2:-10} conns=${3:-64}
shift $(($# < 3 ? $# : 3))
[ "${1:-}" = "--" ] && shift
shared=${SHARED_DIR:-../shared}
bin=${POSRELAY_BIN:-build/release/src/posrelay}  # POSRELAY_BIN: another build to measure
[ -x "$bin" ] || { cmake --preset release >/dev/null && cmake --build --preset release --target posrelay; }
node_dir=${NODE_RELAY_DIR:-build/bench-peers/node-relay}
export SERVER_KEY=${SERVER_KEY:-SB-Mid-server-TESTKEY}
port=${PORT:-18090} node_port=${NODE_PORT:-18081} node_redis_port=${NODE_REDIS_PORT:-16379}
nginx_port=${NGINX_PORT:-18080}
bodies_n=${BODIES_N:-$((secs * 25000 > 50000 ? secs * 25000 : 50000))}
work=$(mktemp -d)
data=$work/posrelay-data  # the embedded Redis's directory when the store is redis
mkdir -p "$data" "$work/node-redis" "$work/nginx"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait_until() {  # SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds (bounded)
  local limit=$(($1 * 10))
  shift
  for _ in $(seq "$limit"); do "$@" && return 0; sleep 0.1; done
  return 1
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
cpu_ticks() {  # PID...: summed utime+stime ticks (fields after the ")" of the comm)
  local p t=0
  for p in "$@"; do
    [ -n "$p" ] || continue
    t=$((t + $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0)))
  done
  echo "$t"
}
for p in "$port" "$node_port" "$node_redis_port" "$nginx_port"; do
  port_free "$p" || { echo "port $p is in use (see the env variables in $0)" >&2; exit 1; }
done

# No paid confirmation (GET status to Midtrans, unreachable here: every settlement would stay
# "confirming", retried, and never reach a terminal) and no polling, unless the flags say otherwise.
bench_flags=()
case " $* " in *" --confirm-paid"*) ;; *) bench_flags+=(--confirm-paid false) ;; esac
case " $* " in *" --poll-rate"*) ;; *) bench_flags+=(--poll-rate 0) ;; esac
# posrelay
POSRELAY_SERVER_KEY=$SERVER_KEY "$bin" --listen "127.0.0.1:$port" --terminal-listen off --data-dir "$data" \
  --log-level error "${bench_flags[@]}" "$@" 2>"$work/posrelay.log" &
pid=$!
pids+=("$pid")
wait_until 10 curl -fs "http://127.0.0.1:$port/readyz" -o /dev/null ||
  { echo "posrelay did not start"; cat "$work/posrelay.log"; exit 1; }
echo "posrelay pid $pid on port $port ($*)"
redis_pid=$(pgrep -P "$pid" redis-server || true)  # the embedded Redis, if any
# The embedded Redis's forks (AOF rewrites): each one stalls commits for a while on a small VM.
redis_forks() {
  if [ -z "$redis_pid" ] || ! command -v redis-cli >/dev/null; then echo "?"; return; fi
  redis-cli -s "$data/redis.sock" INFO stats 2>/dev/null | awk -F: '/^total_forks/ {print $2+0}'
}

# The Node peer and its Redis (AOF everysec, no snapshots, like posrelay's embedded one)
node_pid="" node_redis_pid=""
if [ -f "$node_dir/server.js" ] && [ -d "$node_dir/node_modules/redis" ] && command -v node >/dev/null; then
  redis-server --bind 127.0.0.1 --port "$node_redis_port" --dir "$work/node-redis" --appendonly yes \
    --appendfsync everysec --save "" --daemonize no --loglevel warning >"$work/node-redis.log" 2>&1 &
  node_redis_pid=$!
  pids+=("$node_redis_pid")
  wait_until 10 redis-cli -p "$node_redis_port" ping >/dev/null 2>&1 ||
    { echo "the Node peer's redis-server did not start" >&2; cat "$work/node-redis.log" >&2; exit 1; }
  SERVER_KEY=$SERVER_KEY PORT=$node_port REDIS_URL=redis://127.0.0.1:$node_redis_port \
    node "$node_dir/server.js" >"$work/node.log" 2>&1 &
  node_pid=$!
  pids+=("$node_pid")
  wait_until 10 curl -s "http://127.0.0.1:$node_port/" -o /dev/null ||
    { echo "the Node peer did not start" >&2; cat "$work/node.log" >&2; exit 1; }
  echo "node peer pid $node_pid on port $node_port, its redis-server pid $node_redis_pid (appendfsync everysec)"
else
  echo "warning: no Node peer in $node_dir (run deploy/install-bench-deps.sh): skipped" >&2
fi

# The nginx ceiling: the shared config on NGINX_PORT, its own prefix (pid file, temp files)
sed "s/127\.0\.0\.1:18080/127.0.0.1:$nginx_port/" "$shared/bench/nginx-ceiling.conf" >"$work/nginx/nginx.conf"
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx.log" &
nginx_pid=$!
pids+=("$nginx_pid")
wait_until 10 curl -fs "http://127.0.0.1:$nginx_port/" -o /dev/null ||
  { echo "nginx did not start" >&2; cat "$work/nginx.log" >&2; exit 1; }
echo "nginx ceiling pid $nginx_pid on port $nginx_port"

# One target's wrk phase: prints a JSON object (rps, p99, CPU per request, status codes).
measure() {  # NAME URL PATH PID...
  local name=$1 url=$2 path=$3
  shift 3
  local c0 c1 w0 w1 log=$work/wrk-$name-$round.log
  c0=$(cpu_ticks "$@"); w0=$(date +%s.%N)
  BODIES=$work/bodies.ndjson TARGET_PATH=$path wrk -t1 -c"$conns" -d"${secs}s" -s bench/wrk_lines.lua "$url" >"$log"
  c1=$(cpu_ticks "$@"); w1=$(date +%s.%N)
  python3 - "$name" "$log" "$((c1 - c0))" "$w0" "$w1" "$(getconf CLK_TCK)" "$bodies_n" <<'PY'
import json, re, sys
name, log, ticks, w0, w1, hz, bodies = sys.argv[1:]
text = open(log).read()
rps = float(re.search(r"Requests/sec:\s*([\d.]+)", text)[1])
m = re.search(r"^requests (\d+) p50_us (\d+) p99_us (\d+)", text, re.M)
n, p50, p99 = (int(x) for x in m.groups())
codes = {k: int(v) for k, v in re.findall(r"^status (\d+): (\d+)", text, re.M)}
errors = re.search(r"Socket errors: (.*)", text)
cpu_s = int(ticks) / float(hz)
print(json.dumps({"target": name, "rps": round(rps), "requests": n, "p50_ms": p50 / 1000, "p99_ms": p99 / 1000,
                  "cpu_s": cpu_s, "cpu_us_per_req": round(cpu_s / n * 1e6, 2) if n else None,
                  "cpu_pct": round(cpu_s / (float(w1) - float(w0)) * 100), "codes": codes,
                  "non_2xx": sum(v for k, v in codes.items() if not k.startswith("2")),
                  "socket_errors": errors[1].strip() if errors else "", "wrapped": n > int(bodies)}))
PY
}

echo "ingest_compare: $rounds rounds of ${secs}s per target, $conns connections, $bodies_n fresh bodies per round" \
  "(${DUP_FRACTION:-0.1} repeats)${*:+, posrelay flags: $*}"
f0=$(redis_forks)
stamp=$(date +%s)
for round in $(seq "$rounds"); do
  ORDER_PREFIX="IC$stamp-$round-" python3 "$shared/bench/gen_notifications.py" "$bodies_n" "$SERVER_KEY" \
    "$work/bodies.ndjson" "${DUP_FRACTION:-0.1}"
  {
    measure posrelay "http://127.0.0.1:$port" /v1/midtrans/notifications "$pid" "$redis_pid"
    [ -z "$node_pid" ] || measure node "http://127.0.0.1:$node_port" / "$node_pid" "$node_redis_pid"
    measure nginx "http://127.0.0.1:$nginx_port" / "$nginx_pid" "$(pgrep -P "$nginx_pid" nginx || true)"
  } >"$work/round-$round.jsonl"
  python3 - "$round" "$work/round-$round.jsonl" <<'PY' | tee -a "$work/rounds.txt"
import json, sys
rs = {r["target"]: r for r in map(json.loads, open(sys.argv[2]))}
parts = []
for name, r in rs.items():
    parts.append(f'{name} {r["rps"]} req/s p99 {r["p99_ms"]:.2f} ms cpu {r["cpu_us_per_req"]} us/req ({r["cpu_pct"]}% of a core)'
                 + (f' codes {r["codes"]}' if r["non_2xx"] or name != "nginx" else "")
                 + (f' socket errors: {r["socket_errors"]}' if r["socket_errors"] else "")
                 + (" WRAPPED (bodies sent twice: raise BODIES_N)" if r["wrapped"] and name != "nginx" else ""))
print(f"round {sys.argv[1]}: " + " | ".join(parts))
PY
  cat "$work/round-$round.jsonl" >>"$work/all.jsonl"
done
echo "posrelay rss: $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"
f1=$(redis_forks)
[ "$f0" != "?" ] && [ "$f1" != "?" ] && echo "embedded redis forks (AOF rewrites) during the run: $((f1 - f0))"
echo "posrelay commits by outcome:$(curl -fs "http://127.0.0.1:$port/metrics" |
  sed -n 's/^posrelay_commits_total{outcome="\([a-z]*\)"} \(.*\)/ \1 \2/p' | tr -d '\n')"
python3 - "$work/all.jsonl" "$rounds" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rounds = int(sys.argv[2])
def col(t, k):
    return [r[k] for r in rows if r["target"] == t and r[k] is not None]
def med(xs, nd=3):
    return round(statistics.median(xs), nd) if xs else None
def ratio(t1, k1, t2, k2):  # per-round ratios (same round), then their median
    a, b = col(t1, k1), col(t2, k2)
    return med([x / y for x, y in zip(a, b) if y], 3) if a and b and len(a) == len(b) else None
out = {
    "rounds": rounds,
    "posrelay_rps": med(col("posrelay", "rps"), 0), "node_rps": med(col("node", "rps"), 0),
    "nginx_rps": med(col("nginx", "rps"), 0),
    "rps_vs_node": ratio("posrelay", "rps", "node", "rps"),
    "rps_vs_nginx": ratio("posrelay", "rps", "nginx", "rps"),
    "cpu_us_per_req": med(col("posrelay", "cpu_us_per_req"), 2),
    "node_cpu_us_per_req": med(col("node", "cpu_us_per_req"), 2),
    "cpu_vs_node": ratio("posrelay", "cpu_us_per_req", "node", "cpu_us_per_req"),
    "p99_ms": med(col("posrelay", "p99_ms"), 3), "node_p99_ms": med(col("node", "p99_ms"), 3),
    "nginx_p99_ms": med(col("nginx", "p99_ms"), 3),
    "non_2xx": {t: sum(col(t, "non_2xx")) for t in ("posrelay", "node", "nginx")},
}
print(f'median of {rounds} rounds: posrelay {out["posrelay_rps"]} req/s, node {out["node_rps"]}, nginx {out["nginx_rps"]};'
      f' posrelay/node {out["rps_vs_node"]}, posrelay/nginx {out["rps_vs_nginx"]};'
      f' cpu {out["cpu_us_per_req"]} vs {out["node_cpu_us_per_req"]} us/req ({out["cpu_vs_node"]});'
      f' p99 {out["p99_ms"]} vs {out["node_p99_ms"]} ms')
print(json.dumps(out))
PY
