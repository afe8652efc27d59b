#!/usr/bin/env bash
# What the embedded Redis's append-only file grows by, per operation: for sizing disks and
# for understanding AOF rewrites (Redis rewrites when the AOF has grown by 100% of what the
# last rewrite wrote, so bytes per event set how often that happens at a given rate).
# Starts a release posrelay with its embedded Redis in a temporary directory, registers N
# orders routed to 500 terminals (POST /v1/orders), then POSTs one signed settlement
# notification per order, one request at a time; prints the growth of the AOF's incremental
# file per registration and per routed settlement (each settlement is one event).
#   usage: bench/aof_bytes.sh [N]            (default 2000)
#   env:   POSRELAY_BIN (the release build) the posrelay binary to measure
# Needs: release build, python3, curl. Leaves no process behind (trap).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
bin=${POSRELAY_BIN:-build/release/src/posrelay}
[ -x "$bin" ] || { cmake --preset release >/dev/null && cmake --build --preset release -j2 --target posrelay; }
export POSRELAY_SERVER_KEY=${SERVER_KEY:-SB-Mid-server-TESTKEY}
export POSRELAY_OPERATOR_TOKEN=bench-operator-token
port=${PORT:-18391}
data=$(mktemp -d)
"$bin" --listen 127.0.0.1:"$port" --terminal-listen off --data-dir "$data" --log-level warn \
  2>"$data/posrelay.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" -o /dev/null && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$port/readyz" -o /dev/null || { echo "posrelay did not start" >&2; cat "$data/posrelay.log" >&2; exit 1; }

python3 - "$n" "$port" "$data" "$POSRELAY_SERVER_KEY" "$POSRELAY_OPERATOR_TOKEN" <<'PY'
import glob, hashlib, json, os, sys, time, urllib.request
n, port, data, key, token = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]

def aof_bytes():
    # Redis write()s the AOF before it answers, except that with appendfsync everysec it may
    # hold the write back for up to 2 s while an fsync is slow: read until the size settles.
    size = lambda: sum(os.path.getsize(f) for f in glob.glob(data + "/appendonlydir/*.incr.aof"))
    last, deadline = size(), time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = size()
        if now == last:
            break
        last = now
    return last

def post(path, body, auth=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    if auth:
        req.add_header("Authorization", "Bearer " + auth)
    with urllib.request.urlopen(req) as r:
        if r.status not in (200, 201):
            sys.exit(f"{path}: HTTP {r.status}")

s0 = aof_bytes()
for i in range(n):
    post("/v1/orders", {"order_id": f"AOF-{i}", "gross_amount": "10000",
                        "terminal_id": f"T-{i % 500}", "store_id": f"S-{i % 10}"}, token)
s1 = aof_bytes()
for i in range(n):
    order, gross, code = f"AOF-{i}", "10000.00", "200"
    post("/v1/midtrans/notifications", {
        "transaction_time": "2026-11-24 10:00:00", "transaction_status": "settlement",
        "transaction_id": f"{i:08x}-2a48-47a9-8cb1-fb36060b88f3", "status_code": code,
        "status_message": "midtrans payment notification",
        "signature_key": hashlib.sha512((order + code + gross + key).encode()).hexdigest(),
        "payment_type": "qris", "order_id": order, "merchant_id": "G000000001",
        "gross_amount": gross, "fraud_status": "accept", "currency": "IDR"})
s2 = aof_bytes()
print(json.dumps({"orders": n, "aof_bytes_per_registration": round((s1 - s0) / n, 1),
                  "aof_bytes_per_routed_settlement": round((s2 - s1) / n, 1)}))
PY
