#!/usr/bin/env bash
# PackagingDeb: cpack builds posrelay_VERSION_amd64.deb; dpkg -i installs it on this machine
# (root only), /usr/bin/posrelay --version runs from it, the posrelay user and the conffile
# exist; dpkg --purge removes it and the user. Skipped (77) when not root, without dpkg, or
# when a posrelay package or a /usr/bin/posrelay is already there (never clobbered).
# usage: deb_test.sh BUILD_DIR VERSION
set -euo pipefail
build=$1 version=$2
[ "$(id -u)" -eq 0 ] || { echo "not root: skipped"; exit 77; }
command -v dpkg >/dev/null && command -v dpkg-shlibdeps >/dev/null || { echo "no dpkg/dpkg-dev: skipped"; exit 77; }
if dpkg-query -W posrelay >/dev/null 2>&1 || [ -e /usr/bin/posrelay ]; then
  echo "posrelay already installed on this machine: skipped"; exit 77
fi
out=$(mktemp -d)
installed=""
data_was_there=""
[ ! -e /var/lib/posrelay ] || data_was_there=1
cleanup() {
  [ -z "$installed" ] || dpkg --purge posrelay >/dev/null 2>&1 || true
  # purge keeps the data directory (order data); this test's own is removed.
  [ -n "$data_was_there" ] || rm -rf /var/lib/posrelay
  rm -rf "$out"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
cmake --build "$build" --target posrelay_install_files >/dev/null
(cd "$out" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$out" >cpack.log 2>&1) ||
  { cat "$out/cpack.log"; fail "cpack"; }
deb=$out/posrelay_${version}_amd64.deb
[ -f "$deb" ] || { ls "$out"; fail "no $deb"; }
info=$(dpkg-deb -f "$deb" Depends Recommends)
grep -q 'libc6' <<<"$info" || fail "Depends lacks the shared libraries: $info"
grep -q 'Recommends: redis-server' <<<"$info" || fail "no Recommends redis-server: $info"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/posrelay/posrelay.conf ||
  fail "posrelay.conf is not a conffile"
installed=1
dpkg -i "$deb" >"$out/dpkg.log" 2>&1 || { cat "$out/dpkg.log"; fail "dpkg -i"; }
# A clean install says nothing alarming (adduser warned about a missing home directory once).
if grep -i "warning" "$out/dpkg.log"; then fail "dpkg -i printed a warning"; fi
/usr/bin/posrelay --version | grep -q "^posrelay $version " || fail "/usr/bin/posrelay --version"
getent passwd posrelay >/dev/null || fail "no posrelay user after install"
[ "$(stat -c '%U %a' /var/lib/posrelay)" = "posrelay 750" ] ||
  fail "/var/lib/posrelay is $(stat -c '%U %a' /var/lib/posrelay), not posrelay 750"
[ -f /etc/posrelay/posrelay.conf ] || fail "no /etc/posrelay/posrelay.conf"
[ "$(stat -c %a /etc/posrelay/credentials)" = 700 ] || fail "credentials directory not 0700"
size=$(stat -c %s /usr/bin/posrelay)
dpkg --purge posrelay >"$out/dpkg.log" 2>&1 || { cat "$out/dpkg.log"; fail "dpkg --purge"; }
installed=""
[ ! -e /usr/bin/posrelay ] || fail "/usr/bin/posrelay left after purge"
[ ! -e /etc/posrelay ] || fail "/etc/posrelay left after purge"
! getent passwd posrelay >/dev/null || fail "posrelay user left after purge"
echo "PackagingDeb: ok ($(stat -c %s "$deb") byte .deb, /usr/bin/posrelay $size bytes)"
