#!/usr/bin/env bash
# deploy/deps-lib.sh with fake dpkg-query, apt-get, systemctl and service on PATH: a run
# that installs a package shipping a new unit stops/disables only that unit, never one that
# was there before (the host's nginx); nothing missing means no apt-get at all.
set -euo pipefail
lib=$(cd "$(dirname "$0")/../../deploy" && pwd)/deps-lib.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/units"
touch "$work/units/nginx.service" "$work/units/redis-server.service"
log=$work/calls
cat >"$work/bin/dpkg-query" <<'X'
#!/bin/sh
# installed: everything but "newpkg" (until the fake apt-get installs it)
[ "$3" = newpkg ] && [ ! -e "$FAKE_DIR/newpkg" ] && exit 1
echo "install ok installed"
X
cat >"$work/bin/apt-get" <<'X'
#!/bin/sh
echo "apt-get $*" >>"$FAKE_DIR/calls"
case "$*" in *install*newpkg*) touch "$FAKE_DIR/newpkg" "$FAKE_DIR/units/newpkg.service" ;; esac
X
printf '#!/bin/sh\necho "systemctl $*" >>"$FAKE_DIR/calls"\n' >"$work/bin/systemctl"
printf '#!/bin/sh\necho "service $*" >>"$FAKE_DIR/calls"\n' >"$work/bin/service"
printf '#!/bin/sh\nexit 0\n' >"$work/bin/sudo"
chmod +x "$work/bin/"*
export PATH=$work/bin:$PATH FAKE_DIR=$work DEPS_UNIT_DIRS=$work/units
fail() { echo "FAIL: $*"; cat "$log" 2>/dev/null; exit 1; }

# 1. nothing missing: no apt-get, no systemctl
( . "$lib"; deps_install nginx-light redis-server ) >/dev/null
[ ! -e "$log" ] || fail "apt-get or systemctl called with nothing missing"

# 2. one missing package shipping newpkg.service
( . "$lib"; deps_install nginx-light newpkg ) >/dev/null
grep -q '^apt-get update' "$log" || fail "no apt-get update"
[ "$(grep -n '^apt-get' "$log" | head -1 | grep -c update)" = 1 ] || fail "update not first"
grep -q '^apt-get .*install .*newpkg' "$log" || fail "newpkg not installed"
grep -q 'install.*nginx-light' "$log" && fail "an installed package was installed again"
grep -q '^systemctl disable --now newpkg.service' "$log" || fail "new unit not stopped"
grep -Eq 'nginx|redis' <(grep -E '^(systemctl|service)' "$log") && fail "a pre-existing service was touched"

# 3. dry run changes nothing
rm -f "$log" "$work/newpkg" "$work/units/newpkg.service"
( . "$lib"; DEPS_DRY_RUN=1 deps_install newpkg ) | grep -q 'would install newpkg' || fail "dry run"
grep -q '^apt-get -s install' "$log" || fail "dry run did not simulate"
grep -Eq '^(systemctl|apt-get (update|.*-y))' "$log" && fail "dry run changed something"
echo "deps_lib_test: ok"
