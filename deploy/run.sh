#!/usr/bin/env bash
# The one run command: installs what posrelay needs, builds it (release), and starts it in
# the foreground: HTTP on 127.0.0.1:8080, terminals on 127.0.0.1:7070, with its own
# embedded Redis in ./posrelay-data. Without configured secrets it runs in demo mode: a demo
# terminal connects, an order is registered for it, and signed Midtrans notifications for
# that order go through posrelay to the terminal, which prints them. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target posrelay posrelay-terminal

export POSRELAY_LISTEN=${POSRELAY_LISTEN:-127.0.0.1:8080}
export POSRELAY_TERMINAL_LISTEN=${POSRELAY_TERMINAL_LISTEN:-127.0.0.1:7070}
demo=""
if [ -z "${POSRELAY_SERVER_KEY:-}" ] && [ -z "${POSRELAY_SERVER_KEY_FILE:-}" ] && [ -z "${POSRELAY_CONFIG:-}" ]; then
  demo=1
  export POSRELAY_SERVER_KEY=SB-Mid-server-TESTKEY
  export POSRELAY_OPERATOR_TOKEN=${POSRELAY_OPERATOR_TOKEN:-demo-operator-token}
  export POSRELAY_TERMINAL_SECRET=${POSRELAY_TERMINAL_SECRET:-demo-terminal-secret-0123456789abcdef}
  echo "run: demo mode (no Midtrans server key configured): test key SB-Mid-server-TESTKEY,"
  echo "run: demo operator token and terminal secret. Set POSRELAY_SERVER_KEY etc. for real use."
fi
bin=build/release/src
pids=()
stop() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait; }
trap stop INT TERM EXIT

"$bin/posrelay" "$@" &
pids+=($!)
base=http://${POSRELAY_LISTEN}
for _ in $(seq 100); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$base/readyz" >/dev/null || { echo "run: posrelay did not become ready"; exit 1; }

if [ -n "$demo" ]; then
  terminal=T-DEMO-1 store=S-DEMO order=DEMO-$(date +%s)
  echo "run: demo terminal $terminal connects to $POSRELAY_TERMINAL_LISTEN and prints its events:"
  POSRELAY_TERMINAL_TOKEN=$("$bin/posrelay" token "$terminal" "$store") \
    "$bin/tools/posrelay-terminal" --connect "$POSRELAY_TERMINAL_LISTEN" --terminal "$terminal" --store "$store" \
    --state-file posrelay-data/$terminal.seq listen 2>/dev/null | sed -u 's/^/  terminal> /' &
  pids+=($!)
  curl -s -X POST "$base/v1/orders" -H "Authorization: Bearer $POSRELAY_OPERATOR_TOKEN" \
    -H 'Content-Type: application/json' \
    -d "{\"order_id\":\"$order\",\"gross_amount\":\"25000\",\"terminal_id\":\"$terminal\",\"store_id\":\"$store\"}" \
    | sed 's/^/run: register order: /'; echo
  notify() {  # status status_code: a notification signed as Midtrans signs it
    python3 - "$order" "$1" "$2" <<'PY' | curl -s -X POST "$base/v1/midtrans/notifications" \
      -H 'Content-Type: application/json' -d @- | sed "s/^/run: Midtrans $1 notification → /"; echo
import hashlib, json, sys
order, status, code = sys.argv[1:4]
key, gross = "SB-Mid-server-TESTKEY", "25000.00"
sig = hashlib.sha512((order + code + gross + key).encode()).hexdigest()
print(json.dumps({"transaction_status": status, "status_code": code, "order_id": order,
                  "gross_amount": gross, "signature_key": sig, "fraud_status": "accept",
                  "payment_type": "qris", "transaction_id": "demo-" + order, "currency": "IDR"}))
PY
  }
  sleep 1
  notify pending 201
  sleep 1
  notify settlement 200
  notify settlement 200  # Midtrans retries happen: deduplicated, the terminal sees it once
  sleep 1
  echo "run: the order as stored: $(curl -s "$base/v1/orders/$order" -H "Authorization: Bearer $POSRELAY_OPERATOR_TOKEN")"
  echo "run: metrics at $base/metrics, health at $base/healthz and $base/readyz; Ctrl-C stops posrelay"
fi
wait "${pids[0]}"
