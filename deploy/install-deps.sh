#!/usr/bin/env bash
# Installs every Debian 12 package posrelay needs to build, test and benchmark.
# Idempotent: packages already present are left as they are; safe to run again.
# usage: deploy/install-deps.sh            (as root, or with sudo available)
set -euo pipefail

packages=(
  # build
  g++ cmake ninja-build pkg-config
  # libraries (see README "Dependencies" for why each one)
  libboost1.81-dev libboost-program-options1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsimdjson-dev libssl-dev libhiredis-dev libqrencode-dev libpng-dev
  # runtime: embedded Redis
  redis-server
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev clang-format
  wrk nginx-light prometheus python3 curl procps openssl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# --no-install-recommends keeps prometheus from pulling in its web console stack.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts redis-server and nginx as system services on install; posrelay runs its own.
for svc in redis-server nginx prometheus; do
  (command -v systemctl >/dev/null && $sudo systemctl disable --now "$svc" >/dev/null 2>&1) || true
  $sudo service "$svc" stop >/dev/null 2>&1 || true
done
echo "install-deps: done"
