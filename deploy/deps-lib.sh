#!/usr/bin/env bash
# Shared by deploy/install-deps.sh and deploy/install-test-deps.sh (sourced, not run).
# deps_install PACKAGE...: installs the Debian packages that are missing, idempotently:
#   - packages already installed are left alone; nothing missing: no apt-get at all;
#   - `apt-get update` runs first (before the install), then one `apt-get install`;
#   - Debian starts the services a package ships; posrelay and its tests run their own
#     redis-server, nginx and prometheus, so every service unit that APPEARED during this
#     install is stopped and disabled. Services that were installed before (the host's own
#     nginx or redis-server) are never touched.
# Environment:
#   DEPS_DRY_RUN=1   print what would be installed (apt-get -s) and change nothing
#   DEPS_UNIT_DIRS   where unit files are looked for (tests point it elsewhere)
set -euo pipefail

DEPS_UNIT_DIRS=${DEPS_UNIT_DIRS:-/lib/systemd/system /usr/lib/systemd/system /etc/init.d}

deps_missing() {  # PACKAGE...: prints the ones not installed
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"
  done
}

deps_units() {  # the service units (and SysV scripts) present now, one name a line, sorted
  local d f
  for d in $DEPS_UNIT_DIRS; do
    [ -d "$d" ] || continue
    for f in "$d"/*; do
      [ -e "$f" ] || continue
      f=${f##*/}
      case $d in */init.d) echo "$f.service" ;; *) case $f in *.service) echo "$f" ;; esac ;; esac
    done
  done | sort -u
}

deps_new_units() {  # BEFORE AFTER (files of deps_units output): units only in AFTER
  comm -13 "$1" "$2"
}

deps_stop_units() {  # UNIT...: stop and disable (only units this run installed)
  local u
  for u in "$@"; do
    echo "${DEPS_NAME:-deps}: stopping and disabling $u (installed just now)"
    (command -v systemctl >/dev/null && $DEPS_SUDO systemctl disable --now "$u" >/dev/null 2>&1) || true
    $DEPS_SUDO service "${u%.service}" stop >/dev/null 2>&1 || true
  done
}

deps_install() {
  local name=${DEPS_NAME:-deps}
  local missing
  mapfile -t missing < <(deps_missing "$@")
  if [ ${#missing[@]} -eq 0 ]; then
    echo "$name: all $# packages present"
    return 0
  fi
  DEPS_SUDO=""
  [ "$(id -u)" -eq 0 ] || DEPS_SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if [ "${DEPS_DRY_RUN:-}" = 1 ]; then
    echo "$name: dry run: would install ${missing[*]}"
    apt-get -s install --no-install-recommends "${missing[@]}" | grep '^Inst ' || true
    return 0
  fi
  echo "$name: installing ${missing[*]}"
  local before after
  before=$(mktemp) after=$(mktemp)
  deps_units >"$before"
  $DEPS_SUDO apt-get update -qq
  # --no-install-recommends keeps prometheus from pulling in its web console stack.
  $DEPS_SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  deps_units >"$after"
  local new
  mapfile -t new < <(deps_new_units "$before" "$after")
  rm -f "$before" "$after"
  [ ${#new[@]} -eq 0 ] || deps_stop_units "${new[@]}"
  echo "$name: done"
}
