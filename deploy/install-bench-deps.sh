#!/usr/bin/env bash
# Installs what bench/compare_peers.sh needs ON TOP of deploy/install-test-deps.sh (which
# brings wrk, nginx-light, redis-tools, nodejs/npm, python3): the peers posrelay is compared
# with. Idempotent; run as root (or with sudo available).
#   - Debian packages: mosquitto (the fan-out peer, MQTT QoS 1), python3-uvloop (the shared
#     fan-out load tool's event loop), redis-tools and redis-server (the Node peer's Redis),
#     nodejs and npm (the Node peer) when absent. Missing ones only; `apt-get update` only when
#     something is missing (deploy/deps-lib.sh). Debian starts the services a package ships:
#     a unit that appeared during THIS install (mosquitto.service when this script installed
#     mosquitto) is stopped and disabled; services that were there before are never touched.
#     Without systemd, `service ... stop` is tried, and failures are ignored.
#   - `npm install` of a copy of ../shared/bench/node-relay (read-only) into
#     build/bench-peers/node-relay (BENCH_PEERS_DIR), skipped when its node_modules already
#     has redis; bench/ingest_compare.sh runs the Node peer from there.
# usage: deploy/install-bench-deps.sh      (DEPS_DRY_RUN=1: print only)
#   env: SHARED_DIR (../shared), BENCH_PEERS_DIR (build/bench-peers)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
. "$here/deps-lib.sh"

bench_packages=(mosquitto python3-uvloop redis-tools redis-server)
command -v node >/dev/null 2>&1 || bench_packages+=(nodejs)
# npm: Debian's, unless the installed Node.js brings its own (see install-test-deps.sh).
command -v npm >/dev/null 2>&1 || bench_packages+=(npm)
DEPS_NAME=install-bench-deps deps_install "${bench_packages[@]}"

shared=${SHARED_DIR:-$root/../shared}
dest=${BENCH_PEERS_DIR:-$root/build/bench-peers}/node-relay
[ -f "$shared/bench/node-relay/server.js" ] || { echo "install-bench-deps: no $shared/bench/node-relay" >&2; exit 1; }
if [ "${DEPS_DRY_RUN:-}" = 1 ]; then
  echo "install-bench-deps: dry run: would npm install a copy of $shared/bench/node-relay in $dest"
  exit 0
fi
mkdir -p "$dest"
# Refresh the copy (server.js, package.json) every time; node_modules stays unless package.json changed.
if ! cmp -s "$shared/bench/node-relay/package.json" "$dest/package.json" 2>/dev/null; then
  rm -rf "$dest/node_modules" "$dest/package-lock.json"
fi
cp "$shared/bench/node-relay/server.js" "$shared/bench/node-relay/package.json" "$dest/"
chmod u+w "$dest"/*
if [ -d "$dest/node_modules/redis" ]; then
  echo "install-bench-deps: node-relay modules present in $dest"
else
  echo "install-bench-deps: npm install in $dest"
  (cd "$dest" && npm install --no-audit --no-fund --loglevel=error)
fi
echo "install-bench-deps: done"
