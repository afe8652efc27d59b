#!/usr/bin/env bash
# Installs the Debian 12 packages needed to BUILD and RUN posrelay (the server preset:
# posrelay, posrelay-terminal, midtrans-sim for the demo) — nothing for tests or benchmarks
# (deploy/install-test-deps.sh adds those). Idempotent; see deploy/deps-lib.sh.
# usage: deploy/install-deps.sh            (as root, or with sudo available)
#        DEPS_DRY_RUN=1 deploy/install-deps.sh   (print what would be installed)
set -euo pipefail
. "$(dirname "$0")/deps-lib.sh"

runtime_packages=(
  # build
  g++ cmake ninja-build pkg-config
  # libraries (see README "Dependencies" for why each one)
  libboost1.81-dev libboost-program-options1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsimdjson-dev libssl-dev libhiredis-dev libqrencode-dev libpng-dev
  # runtime: the embedded Redis; curl: deploy/run.sh waits on /readyz
  redis-server curl
)
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  DEPS_NAME=install-deps deps_install "${runtime_packages[@]}"
fi
