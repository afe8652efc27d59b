#!/usr/bin/env bash
# Size of what a package list installs on a bare Debian 12: the Depends/Pre-Depends closure
# (no Recommends, like deploy/deps-lib.sh) by apt-cache, its Installed-Size summed. The
# closure includes the base system packages it reaches (libc6, ...) in every list alike.
# usage: bench/deps_size.sh PACKAGE...      prints "N packages, M MB"
#        bench/deps_size.sh --runtime | --test   the lists of deploy/install-deps.sh (runtime)
#                                               or install-deps + install-test-deps (test)
set -euo pipefail
here=$(dirname "$0")/../deploy
list() { sed -n "/^$1=(/,/^)/p" "$2" | sed '1d;$d;s/#.*//' | tr -s ' \n' '\n' | grep -v '^$'; }
case ${1:-} in
  --runtime) set -- $(list runtime_packages "$here/install-deps.sh") ;;
  --test) set -- $(list runtime_packages "$here/install-deps.sh") \
                 $(list test_packages "$here/install-test-deps.sh") ;;
esac
apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "$@" 2>/dev/null |
  grep -v '^ ' | grep -v '^<' | sort -u >/tmp/deps_size.$$
n=$(wc -l </tmp/deps_size.$$)
kb=$(xargs apt-cache show --no-all-versions </tmp/deps_size.$$ 2>/dev/null |
     awk '/^Installed-Size:/ {s += $2} END {print s + 0}')
rm -f /tmp/deps_size.$$
echo "$n packages, $((kb / 1024)) MB"
