#!/usr/bin/env bash
# The one run command: installs what posrelay needs, builds it (release), and starts it in
# the foreground: HTTP on 127.0.0.1:8080, terminals on 127.0.0.1:7070, with its own
# embedded Redis in ./posrelay-data.
#
# Without a configured Midtrans server key it runs the demo: midtrans-sim stands in for
# Midtrans on 127.0.0.1:8090, and simulated shop terminals charge through posrelay — one
# customer pays, one QR expires, one order is cancelled — while a store monitor terminal
# prints every event. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
# The server preset (Release, no tests/benchmarks): needs only install-deps.sh's packages.
cmake --preset server >/dev/null
cmake --build --preset server --target posrelay posrelay-terminal midtrans-sim

export POSRELAY_LISTEN=${POSRELAY_LISTEN:-127.0.0.1:8080}
export POSRELAY_TERMINAL_LISTEN=${POSRELAY_TERMINAL_LISTEN:-127.0.0.1:7070}
bin=build/server/src
pids=()
# A demo terminal runs in a subshell (its output piped through sed): its children go first,
# or a SIGTERM to this script (not a Ctrl-C, which reaches the whole group) leaves them behind.
stop() {
  for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null
}
trap stop INT TERM EXIT
ready() { for _ in $(seq 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

demo=""
if [ -z "${POSRELAY_SERVER_KEY:-}" ] && [ -z "${POSRELAY_SERVER_KEY_FILE:-}" ] && [ -z "${POSRELAY_CONFIG:-}" ]; then
  demo=1
  sim=127.0.0.1:8090
  export MIDTRANS_SIM_SERVER_KEY=SB-Mid-server-DEMO-KEY
  export POSRELAY_SERVER_KEY=$MIDTRANS_SIM_SERVER_KEY
  export POSRELAY_OPERATOR_TOKEN=${POSRELAY_OPERATOR_TOKEN:-demo-operator-token}
  export POSRELAY_TERMINAL_SECRET=${POSRELAY_TERMINAL_SECRET:-demo-terminal-secret-0123456789abcdef}
  export POSRELAY_MIDTRANS_URL=http://$sim POSRELAY_PUBLIC_URL=http://$POSRELAY_LISTEN
  echo "demo: no Midtrans server key configured: midtrans-sim plays Midtrans on $sim"
  "$bin/sim/midtrans-sim" --listen "$sim" --log-level warn &
  pids+=($!)
  ready "http://$sim/sim/stats" || { echo "demo: midtrans-sim did not start"; exit 1; }
fi

# The browser POS page (GET /pos/) from the source tree; POSRELAY_POS_PAGE=off leaves it out.
export POSRELAY_POS_PAGE=${POSRELAY_POS_PAGE:-$PWD/clients/pos}
"$bin/posrelay" --log-level "${POSRELAY_LOG_LEVEL:-warn}" "$@" &
relay=$!
pids+=($relay)
base=http://${POSRELAY_LISTEN}
ready "$base/readyz" || { echo "run: posrelay did not become ready"; exit 1; }
echo "run: posrelay ready: notifications at $base/v1/midtrans/notifications, terminals at $POSRELAY_TERMINAL_LISTEN"
if [ "$POSRELAY_POS_PAGE" != off ] && [ -n "${POSRELAY_TERMINAL_SECRET:-}" ]; then
  pos_store=${POS_STORE:-S-DEMO}
  till_token=$("$bin/posrelay" token TILL-WEB "$pos_store")
  display_token=$("$bin/posrelay" token DISPLAY-WEB "$pos_store")
  echo "run: open the browser till:        $base/pos/?terminal=TILL-WEB&store=$pos_store#token=$till_token"
  echo "run: and its customer display:     $base/pos/?terminal=DISPLAY-WEB&store=$pos_store&mode=display#token=$display_token"
  [ -n "$demo" ] && echo "run: charge there, then pay:      curl -X POST http://$sim/sim/orders/<the order id on the page>/pay"
fi

if [ -n "$demo" ]; then
  store=S-DEMO run=$(date +%H%M%S)
  term() {  # terminal_id command...: a posrelay-terminal of the demo store, output prefixed
    local t=$1; shift
    POSRELAY_TERMINAL_TOKEN=$("$bin/posrelay" token "$t" "$store") \
      "$bin/tools/posrelay-terminal" --connect "$POSRELAY_TERMINAL_LISTEN" --terminal "$t" \
      --store "$store" --log-level warn "$@" 2>&1 | sed -u "s/^/  $t> /"
  }
  sim_do() { curl -fs -X POST "http://$sim/sim/orders/$1/$2" >/dev/null && echo "demo: Midtrans: $3"; }
  echo "demo: the store monitor subscribes to every event of store $store:"
  term MONITOR --subscribe-store listen &
  pids+=($!)
  sleep 1
  echo "demo: three tills charge by QRIS/GoPay; each waits for its order to end"
  term TILL-1 charge "PAY-$run" 25000 --payment-type qris --wait &
  t1=$!
  term TILL-2 charge "EXP-$run" 12000 --payment-type gopay --wait &
  t2=$!
  term TILL-3 charge "CAN-$run" 8000 --wait &
  t3=$!
  sleep 3
  sim_do "PAY-$run" pay "the customer of PAY-$run pays in their app"
  sleep 2
  sim_do "EXP-$run" expire "the QR of EXP-$run runs out of time (expire)"
  sleep 2
  echo "demo: the manager cancels CAN-$run from another terminal of the store:"
  term MANAGER cancel "CAN-$run"
  wait $t1 $t2 $t3 || true
  echo "demo: done. Charge yourself (in another shell):"
  echo "demo:   POSRELAY_TERMINAL_TOKEN=\$(POSRELAY_TERMINAL_SECRET=$POSRELAY_TERMINAL_SECRET $bin/posrelay token TILL-9 $store) $bin/tools/posrelay-terminal --connect $POSRELAY_TERMINAL_LISTEN --terminal TILL-9 --store $store charge MY-ORDER-1 15000 --wait"
  echo "demo:   then: curl -X POST http://$sim/sim/orders/MY-ORDER-1/pay"
  echo "run: metrics at $base/metrics, health at $base/healthz and $base/readyz; Ctrl-C stops everything"
fi
wait "$relay"
