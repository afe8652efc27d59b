#!/usr/bin/env bash
# ContainerfileMatchesPackage (static; no container engine runs here): deploy/Containerfile
# installs with the same commands as the package (install-deps.sh, the server preset, the
# runtime component), is non-root, has the data volume, the admin /healthz check on an
# exposed admin port, and names runtime libraries that exist in this Debian release.
# usage: containerfile_test.sh SOURCE_DIR
set -euo pipefail
f=$1/deploy/Containerfile
fail() { echo "FAIL: $*"; exit 1; }
grep -q '^FROM debian:12-slim AS build' "$f" || fail "build stage is not debian:12-slim"
grep -q 'deploy/install-deps.sh' "$f" || fail "build stage does not use deploy/install-deps.sh"
grep -q 'cmake --preset server' "$f" || fail "not the server preset"
grep -q 'cmake --install build/server --component runtime' "$f" || fail "not the runtime component"
grep -q '^USER posrelay' "$f" || fail "runs as root"
grep -q '^VOLUME \["/var/lib/posrelay"\]' "$f" || fail "no data volume"
grep -q '^STOPSIGNAL SIGTERM' "$f" || fail "no STOPSIGNAL"
admin=$(sed -n 's/.*POSRELAY_ADMIN_LISTEN=[0-9.]*:\([0-9]*\).*/\1/p' "$f")
[ -n "$admin" ] || fail "no admin listener"
grep -q "^EXPOSE .*\\b$admin\\b" "$f" || fail "admin port $admin not exposed"
grep -q "http://127.0.0.1:$admin/healthz" "$f" || fail "HEALTHCHECK is not the admin /healthz"
# The data dir of the unit and of the image agree.
grep -q 'POSRELAY_DATA_DIR=/var/lib/posrelay' "$1/deploy/posrelay.service.in" || fail "unit data dir"
if command -v apt-cache >/dev/null; then
  for p in $(sed -n '/^FROM debian:12-slim$/,$p' "$f" | grep -o 'lib[a-z0-9.+-]*[0-9]' | sort -u); do
    apt-cache show "$p" >/dev/null 2>&1 || fail "runtime package $p unknown to apt"
  done
fi
echo "ContainerfileMatchesPackage: ok"
