#!/usr/bin/env bash
# Installs what the tests and benchmarks need ON TOP of deploy/install-deps.sh (which it
# runs first): GoogleTest/Benchmark, clang for the fuzz build, clang-format, the tools the
# integration tests and bench/ scripts call, and the packaging tests' tools. Idempotent.
# usage: deploy/install-test-deps.sh       (DEPS_DRY_RUN=1: print only)
set -euo pipefail
here=$(dirname "$0")
"$here/install-deps.sh"
. "$here/deps-lib.sh"

test_packages=(
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev clang-format           # fuzz build, tests/check-format.sh
  python3 procps iproute2 openssl                 # integration tests and bench/ scripts
  redis-tools                                     # redis-cli: the Redis Cluster test fixture
  wrk nginx-light                                 # bench/ load and proxy comparisons
  prometheus                                      # promtool (metrics exposition check)
  systemd                                         # systemd-analyze (systemd_verify)
  dpkg-dev fakeroot binutils file                 # cpack DEB, PackagingDeb, strip checks
  nodejs chromium                                 # clients/js tests, tests/browser (playwright-core)
)
# npm: Debian's package, unless the installed Node.js brings its own (nodesource's does; Debian's
# npm would then conflict with it).
command -v npm >/dev/null 2>&1 || test_packages+=(npm)
DEPS_NAME=install-test-deps deps_install "${test_packages[@]}"
