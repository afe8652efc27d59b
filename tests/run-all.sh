#!/usr/bin/env bash
# The one test command: installs what it needs, builds, and runs every test.
#   1. Debian packages (deploy/install-deps.sh + install-test-deps.sh, idempotent), and
#      tests/browser's npm packages (npm ci)
#   2. formatting check (clang-format, .clang-format)
#   3. release build (-Werror) + every GoogleTest suite (ctest)
#   4. ASan+UBSan build + every suite again
#   5. libFuzzer build + a short bounded fuzz run of each parser
# Integration tests start their own posrelay (and redis-server) processes on loopback,
# in temporary directories, and stop them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
fuzz_seconds=${FUZZ_SECONDS:-30}

deploy/install-deps.sh
deploy/install-test-deps.sh
# The browser test's tooling (playwright-core; Chromium itself is Debian's): exactly the lock.
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
# Tests open ~2,000 sockets at once.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== format"
tests/check-format.sh

for preset in release asan; do
  echo "== $preset: build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "== $preset: test"
  ctest --preset "$preset" -j "$jobs"
done

echo "== fuzz (${fuzz_seconds}s per target)"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs" --target fuzz_targets
for target in build/fuzz/tests/fuzz/*_fuzz; do
  name=$(basename "$target" _fuzz)             # notification_parser, terminal_frame
  corpus=tests/fuzz/corpus/$name
  [ -d "$corpus" ] || corpus=tests/fuzz/corpus/${name%_parser}
  dict=tests/fuzz/${name%_parser}.dict
  work=$(mktemp -d)
  cp -r "$corpus"/. "$work"/
  # The seed corpus is read-only input; new inputs go to the scratch copy.
  "$target" -max_total_time="$fuzz_seconds" -timeout=5 -rss_limit_mb=2048 \
    $([ -f "$dict" ] && echo "-dict=$dict") "$work" 2>&1 | tail -n 3
  rm -rf "$work"
done
echo "== all tests passed"
