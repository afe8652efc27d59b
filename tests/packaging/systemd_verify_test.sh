#!/usr/bin/env bash
# systemd_verify: `systemd-analyze verify` of the installed unit, with its ExecStart pointed at
# the installed binary of a temporary tree and man: links resolved in that tree; any output
# (a warning) fails.
# usage: systemd_verify_test.sh BUILD_DIR
set -euo pipefail
build=$1
command -v systemd-analyze >/dev/null || { echo "no systemd-analyze: skipped"; exit 77; }
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
cmake --build "$build" --target posrelay_install_files >/dev/null
DESTDIR=$tree cmake --install "$build" --component runtime >/dev/null
mkdir "$tree/units"
sed "s|^ExecStart=.*|ExecStart=$tree$prefix/bin/posrelay|" \
  "$tree$prefix/lib/systemd/system/posrelay.service" >"$tree/units/posrelay.service"
out=$(MANPATH=$tree$prefix/share/man systemd-analyze verify "$tree/units/posrelay.service" 2>&1) ||
  { echo "FAIL: systemd-analyze verify failed:"; echo "$out"; exit 1; }
[ -z "$out" ] || { echo "FAIL: systemd-analyze verify warned:"; echo "$out"; exit 1; }
echo "systemd_verify: clean"
