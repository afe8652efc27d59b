#!/usr/bin/env bash
# PackagingInstallTree: `cmake --install --component runtime` into a temporary DESTDIR has
# exactly the runtime: stripped binaries (the build tree's keep their debug info), no tools,
# the example config naming every option of --help, the unit, the man pages, the docs.
# usage: install_tree_test.sh BUILD_DIR
set -euo pipefail
build=$1
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
cmake --build "$build" --target posrelay_install_files >/dev/null
DESTDIR=$tree cmake --install "$build" --component runtime >/dev/null
bin=$tree$prefix/bin
for b in posrelay posrelay-terminal; do
  [ -x "$bin/$b" ] || fail "$b not installed"
  readelf -S "$bin/$b" | grep -q '\.debug_info' && fail "$b not stripped"
  readelf -S "$bin/$b" | grep -q '\.symtab' && fail "$b keeps its symbol table"
done
readelf -S "$build/src/posrelay" | grep -q '\.debug_info' || fail "the build tree's posrelay lost its debug info"
for t in midtrans-sim posrelay-terminal-load; do
  [ ! -e "$bin/$t" ] || fail "tool $t in the runtime component"
done
"$bin/posrelay" --version | grep -q "^posrelay " || fail "installed posrelay does not run"
conf=$(find "$tree" -path '*/etc/posrelay/posrelay.conf')
[ -n "$conf" ] || fail "no etc/posrelay/posrelay.conf"
n=0
while read -r name; do
  case $name in help | version | print-example-config) continue ;; esac
  var=POSRELAY_$(echo "$name" | tr 'a-z-' 'A-Z_')
  grep -q "^#$var=" "$conf" || fail "option $name ($var) missing from posrelay.conf"
  n=$((n + 1))
done < <("$bin/posrelay" --help | sed -n 's/^  --\([a-z0-9-]*\).*/\1/p')
[ "$n" -gt 40 ] || fail "only $n options found in --help"
[ -f "$tree$prefix/lib/systemd/system/posrelay.service" ] || fail "no unit"
grep -q "^ExecStart=$prefix/bin/posrelay\$" "$tree$prefix/lib/systemd/system/posrelay.service" ||
  fail "unit's ExecStart is not $prefix/bin/posrelay"
for m in posrelay posrelay-terminal; do
  page=$tree$prefix/share/man/man1/$m.1
  [ -f "$page" ] || fail "no man page $m.1"
  man -l "$page" 2>/dev/null | grep -q -- '--help' || fail "$m.1 does not render the help"
done
for d in README.md CHANGELOG.md proto-docs; do
  [ -e "$tree$prefix/share/doc/posrelay/$d" ] || fail "no doc $d"
done
for f in index.html pos.js terminal/browser.js terminal/core.js; do   # the POS page (--pos-page)
  [ -f "$tree$prefix/share/posrelay/pos/$f" ] || fail "no POS page file $f"
done
echo "PackagingInstallTree: ok ($n options; posrelay $(stat -c %s "$bin/posrelay") bytes installed)"
