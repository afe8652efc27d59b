#!/usr/bin/env bash
# Checks bench/lib/redis_topology.sh against real redis-server processes: each topology comes
# up, each fault does what it says (data written before it is where it should be, the
# failover happens, the lagging copy is older), and no process outlives the script.
#   usage: bench/lib/redis_topology_test.sh [single|sentinel|cluster|lag|reshard|cleanup]...
#          (default: all). Exit 0 when every check passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lib/redis_topology.sh
source bench/lib/redis_topology.sh
failures=0
check() {  # DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; failures=$((failures + 1)); fi
}
eq() { [ "$1" = "$2" ] || { echo "     expected '$2', got '$1'" >&2; return 1; }; }

t_single() {
  rt_single
  rt_cli "$RT_SINGLE" SET k v >/dev/null
  check "single: SET/GET" eq "$(rt_cli "$RT_SINGLE" GET k)" v
}

t_sentinel() {
  rt_replicated 1
  rt_sentinels mymaster
  check "sentinel: three sentinels agree on the primary" rt_sentinels_ready mymaster
  rt_cli "$RT_PRIMARY" SET before-kill 1 >/dev/null
  rt_cli "$RT_PRIMARY" WAIT 1 2000 >/dev/null
  local old=$RT_PRIMARY
  check "sentinel: failover after SIGKILL" rt_sentinel_kill_primary mymaster
  check "sentinel: new primary differs" test "$RT_PRIMARY" != "$old"
  check "sentinel: acked write survived" eq "$(rt_cli "$RT_PRIMARY" GET before-kill)" 1
  rt_restart "$old"
  check "sentinel: old primary rejoins as replica" rt_wait 60 "old primary a replica" rt_sentinel_rejoined "$old"
}

t_cluster() {
  rt_cluster
  check "cluster: 3 primaries" eq "$(rt_cluster_primaries | wc -l)" 3
  local i
  for i in $(seq 100); do "$RT_REDIS_CLI" -c -p "${RT_CLUSTER[0]}" SET "k$i" "$i" >/dev/null; done
  local victim
  victim=$(rt_cluster_primaries | head -1)
  rt_cli "$victim" WAIT 1 2000 >/dev/null
  check "cluster: failover after SIGKILL" rt_cluster_kill_primary "$victim"
  check "cluster: promoted replica is a primary" eq "$(rt_info "$RT_PROMOTED" replication role)" master
  local n=0
  for i in $(seq 100); do [ "$("$RT_REDIS_CLI" -c -p "$RT_PROMOTED" GET "k$i")" = "$i" ] && n=$((n + 1)); done
  check "cluster: every key readable after the failover" eq "$n" 100
  rt_restart "$RT_KILLED"
  check "cluster: killed primary rejoins as replica" rt_wait 60 "rejoined" rt_cluster_rejoined "$RT_KILLED"
}

t_reshard() {
  [ "${#RT_CLUSTER[@]}" -gt 0 ] || rt_cluster
  local before_from before_to i p
  mapfile -t p < <(rt_cluster_primaries)
  before_from=$(rt_slots_of "${p[0]}") before_to=$(rt_slots_of "${p[1]}")
  for i in $(seq 200); do "$RT_REDIS_CLI" -c -p "${RT_CLUSTER[0]}" SET "r$i" "$i" >/dev/null; done
  check "reshard: 500 slots moved" rt_cluster_reshard 500
  check "reshard: source lost 500 slots" eq "$(rt_slots_of "$RT_RESHARD_FROM")" $((before_from - 500))
  check "reshard: target gained 500 slots" eq "$(rt_slots_of "$RT_RESHARD_TO")" $((before_to + 500))
  local n=0
  for i in $(seq 200); do [ "$("$RT_REDIS_CLI" -c -p "${RT_CLUSTER[0]}" GET "r$i")" = "$i" ] && n=$((n + 1)); done
  check "reshard: every key readable after" eq "$n" 200
}

t_lag() {
  rt_replicated 1
  local r=${RT_REPLICAS[0]}
  rt_cli "$RT_PRIMARY" SET old 1 >/dev/null
  # The replica has the old write before it is cut off (WAIT alone may time out under load).
  check "lag: replica has the old write before the cut" rt_wait "$RT_DEADLINE" "replica $r has the old write" \
    bash -c "[ \"\$($RT_REDIS_CLI -p $r GET old)\" = 1 ]"
  rt_lag_cut "$r"
  rt_cli "$RT_PRIMARY" SET new 1 >/dev/null
  check "lag: replica does not get later writes" eq "$(rt_cli "$r" EXISTS new)" 0
  check "lag: promoted" rt_lag_promote "$RT_PRIMARY" "$r"
  check "lag: primary's address has the old write" eq "$(rt_cli "$RT_PRIMARY" GET old)" 1
  check "lag: ...and not the later one" eq "$(rt_cli "$RT_PRIMARY" EXISTS new)" 0
  check "lag: AOF on after promotion" eq "$(rt_info "$RT_PRIMARY" persistence aof_enabled)" 1
}

# cleanup: a child script starts a cluster and sentinels, then is killed with SIGTERM; no
# redis-server of its temp dir may remain.
t_cleanup() {
  local out pid dir pids
  out=$(mktemp)
  bash -c 'source bench/lib/redis_topology.sh; rt_init; rt_replicated 1; rt_sentinels m; rt_cluster;
           echo "$RT_DIR"; rt_pids; echo ready; while :; do sleep 1; done' >"$out" 2>/dev/null &
  pid=$!
  rt_wait 90 "child topology up" grep -qx ready "$out"
  dir=$(sed -n 1p "$out") pids=$(sed -n 2p "$out")
  check "cleanup: child started 11 servers" eq "$(wc -w <<<"$pids")" 11
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  check "cleanup: no redis-server of the child left" rt_wait 10 "children gone" none_alive $pids
  check "cleanup: temp dir removed" test ! -d "$dir"
  rm -f "$out"
}
none_alive() { local p; for p in "$@"; do ! kill -0 "$p" 2>/dev/null || return 1; done; }

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(single sentinel cluster reshard lag cleanup)
for c in "${cases[@]}"; do
  rt_init
  "t_$c"
  rt_cleanup
done
[ "$failures" = 0 ] && echo "all redis_topology checks passed" || { echo "$failures check(s) failed"; exit 1; }
