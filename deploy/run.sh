#!/usr/bin/env bash
# The one run command: installs what posrelay needs, builds it (release), and starts it in
# the foreground on http://127.0.0.1:8080 (override with POSRELAY_LISTEN). Without a
# configured Midtrans server key it runs in demo mode with the public sandbox test key, and
# shows a signed notification going through. Stop it with Ctrl-C (graceful shutdown).
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target posrelay

export POSRELAY_LISTEN=${POSRELAY_LISTEN:-127.0.0.1:8080}
demo=""
if [ -z "${POSRELAY_SERVER_KEY:-}" ] && [ -z "${POSRELAY_SERVER_KEY_FILE:-}" ] && [ -z "${POSRELAY_CONFIG:-}" ]; then
  export POSRELAY_SERVER_KEY=SB-Mid-server-TESTKEY
  demo=1
  echo "run: no Midtrans server key configured: demo mode with the test key SB-Mid-server-TESTKEY"
fi

build/release/src/posrelay "$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
base=http://${POSRELAY_LISTEN}
for _ in $(seq 50); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

if [ -n "$demo" ]; then
  body=$(python3 - <<'PY'
import hashlib, json
key, order, code, gross = "SB-Mid-server-TESTKEY", "DEMO-ORDER-1", "200", "10000.00"
sig = hashlib.sha512((order + code + gross + key).encode()).hexdigest()
print(json.dumps({"transaction_status": "settlement", "status_code": code, "order_id": order,
                  "gross_amount": gross, "signature_key": sig, "fraud_status": "accept",
                  "payment_type": "qris", "transaction_id": "demo-1", "currency": "IDR"}))
PY
)
  echo "run: POST a signed settlement notification for DEMO-ORDER-1:"
  curl -s -X POST -H 'Content-Type: application/json' -d "$body" "$base/v1/midtrans/notifications"; echo
  echo "run: and one with a forged signature:"
  curl -s -X POST -H 'Content-Type: application/json' -d "${body/\"signature_key\": \"/\"signature_key\": \"0}" \
    "$base/v1/midtrans/notifications"; echo
  echo "run: metrics at $base/metrics, health at $base/healthz and $base/readyz; Ctrl-C stops posrelay"
fi
wait $pid
