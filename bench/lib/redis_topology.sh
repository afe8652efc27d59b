# shellcheck shell=bash disable=SC2034  # RT_* variables are the callers'
# Redis topologies on loopback for the fault benchmarks (sourced, not run): a single
# redis-server, a primary with replicas, three sentinels, a Cluster of 3 primaries + 3
# replicas, and the faults: SIGKILL of a primary and the wait for its failover, a replica
# promoted while behind, slots resharded. Every server runs in $RT_DIR (a temp dir) on a free
# port; rt_cleanup (run by the EXIT trap rt_init installs) stops every process started here
# and everything registered with rt_at_exit, then removes $RT_DIR. Nothing waits by sleeping:
# rt_wait polls a condition every 50 ms until a deadline.
#
#   source bench/lib/redis_topology.sh
#   rt_init                              temp dir + EXIT/INT/TERM traps
#   rt_at_exit 'kill $pid'               run at exit (before the servers stop), newest first
#   rt_single                            -> RT_SINGLE (port)
#   rt_replicated N                      -> RT_PRIMARY, RT_REPLICAS (array of ports)
#   rt_sentinels NAME                    -> RT_SENTINELS (3 ports; quorum 2) watching RT_PRIMARY
#   rt_cluster [R]                       -> RT_CLUSTER (3 + 3R ports; R replicas per primary,
#                                        default 1), cluster_state:ok everywhere
#   rt_cluster_kill_primary              SIGKILL a primary holding slots, wait for the failover
#   rt_sentinel_kill_primary NAME        SIGKILL RT_PRIMARY, wait until the sentinels and the
#                                        promoted replica agree; RT_PRIMARY becomes it
#   rt_restart PORT                      start a killed server again (same dir, config, port)
#   rt_lag_cut PORT / rt_lag_promote OLD NEW_SRC   a replica cut off, then the primary's port
#                                        served from that replica's older copy
#   rt_cluster_reshard N                 move N slots between two primaries (redis-cli)
# Variables: RT_DEADLINE (s, default 30) for every wait; RT_REDIS_SERVER / RT_REDIS_CLI.

RT_REDIS_SERVER=${RT_REDIS_SERVER:-redis-server}
RT_REDIS_CLI=${RT_REDIS_CLI:-redis-cli}
RT_DEADLINE=${RT_DEADLINE:-30}
RT_DIR=""
declare -A RT_PID=()   # port -> pid of the server started there (killed ones removed)
declare -A RT_ARGS=()  # port -> its redis-server arguments (for rt_restart)
RT_EXIT_CMDS=()
RT_SINGLE="" RT_PRIMARY="" RT_REPLICAS=() RT_SENTINELS=() RT_CLUSTER=()

rt_log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S.%N | cut -c1-12)" "$*" >&2; }

rt_init() {
  RT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/redis-topology.XXXXXX")
  trap 'rt_cleanup; eval "${RT_ON_EXIT:-}"' EXIT  # RT_ON_EXIT: the caller's own last words
  trap 'exit 130' INT TERM
}

rt_at_exit() { RT_EXIT_CMDS+=("$1"); }

# Stops what rt_at_exit registered (newest first), then every server (SIGKILL: nothing
# of theirs is kept), waits for each, and removes the temp dir. Idempotent.
rt_cleanup() {
  local i p
  for ((i = ${#RT_EXIT_CMDS[@]} - 1; i >= 0; i--)); do eval "${RT_EXIT_CMDS[i]}" 2>/dev/null || true; done
  RT_EXIT_CMDS=()
  for p in "${RT_PID[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${RT_PID[@]}"; do wait "$p" 2>/dev/null || true; done
  RT_PID=() RT_ARGS=()
  RT_SINGLE="" RT_PRIMARY="" RT_REPLICAS=() RT_SENTINELS=() RT_CLUSTER=() RT_RESHARD_KEYS=""
  [ -n "$RT_DIR" ] && [ -z "${RT_KEEP:-}" ] && rm -rf "$RT_DIR"
  RT_DIR=""
}

rt_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# rt_wait SECONDS DESCRIPTION COMMAND...: runs COMMAND every 50 ms until it succeeds; after
# SECONDS, logs DESCRIPTION and fails.
rt_wait() {
  local secs=$1 what=$2
  shift 2
  local end=$(($(date +%s%N) + secs * 1000000000))
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(date +%s%N)" -ge "$end" ] && { rt_log "timed out after ${secs}s waiting for: $what"; return 1; }
    sleep 0.05
  done
}

rt_cli() { local port=$1; shift; "$RT_REDIS_CLI" -h 127.0.0.1 -p "$port" "$@"; }
rt_info() { rt_cli "$1" INFO "$2" 2>/dev/null | tr -d '\r' | awk -F: -v k="$3" '$1 == k {print $2}'; }
rt_pong() { [ "$(rt_cli "$1" PING 2>/dev/null)" = PONG ]; }

# rt_server PORT [redis-server args...]: starts one server in $RT_DIR/PORT (its log there).
rt_server() {
  local port=$1
  shift
  local dir=$RT_DIR/$port
  mkdir -p "$dir"
  RT_ARGS[$port]="$*"
  "$RT_REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no \
    --save '' --repl-diskless-sync-delay 0 --logfile "$dir/redis.log" "$@" >/dev/null 2>&1 &
  RT_PID[$port]=$!
  rt_wait "$RT_DEADLINE" "redis on $port answering" rt_pong "$port"
}

# rt_restart PORT: the server that ran on PORT again, with its arguments and its directory
# (its AOF or nodes.conf), e.g. a killed primary coming back (it rejoins as a replica).
rt_restart() {
  local port=$1 dir=$RT_DIR/$1
  # shellcheck disable=SC2086
  "$RT_REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no \
    --save '' --repl-diskless-sync-delay 0 --logfile "$dir/redis.log" ${RT_ARGS[$port]} >/dev/null 2>&1 &
  RT_PID[$port]=$!
  rt_wait "$RT_DEADLINE" "redis on $port answering again" rt_pong "$port"
}

rt_kill() {  # PORT: SIGKILL its server and reap it
  local port=$1 pid=${RT_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "RT_PID[$port]"
}

rt_pids() { echo "${RT_PID[@]}"; }  # every live server's pid (CPU accounting)

rt_single() {
  RT_SINGLE=$(rt_free_port)
  rt_server "$RT_SINGLE" --appendonly yes --appendfsync everysec
}

# REPLICA follows PRIMARY and is done syncing: its link is up, no sync in progress, and the
# primary lists it online. (Offsets are not compared: under writes they rarely meet.)
rt_replica_synced() {
  local replica=$1 primary=$2
  [ "$(rt_info "$replica" replication master_link_status)" = up ] || return 1
  [ "$(rt_info "$replica" replication master_port)" = "$primary" ] || return 1
  [ "$(rt_info "$replica" replication master_sync_in_progress)" = 0 ] || return 1
  rt_cli "$primary" INFO replication 2>/dev/null | tr -d '\r' | grep -q "^slave[0-9]*:ip=127.0.0.1,port=$replica,state=online"
}

rt_replicated() {  # N: a primary and N replicas, each in sync
  local n=${1:-1} p
  RT_PRIMARY=$(rt_free_port)
  RT_REPLICAS=()
  rt_server "$RT_PRIMARY" --appendonly yes --appendfsync everysec
  for _ in $(seq "$n"); do
    p=$(rt_free_port)
    rt_server "$p" --appendonly yes --appendfsync everysec --replicaof 127.0.0.1 "$RT_PRIMARY"
    RT_REPLICAS+=("$p")
  done
  for p in "${RT_REPLICAS[@]}"; do
    rt_wait "$RT_DEADLINE" "replica $p in sync with $RT_PRIMARY" rt_replica_synced "$p" "$RT_PRIMARY" || return 1
  done
}

# Sentinel's view of master NAME, field FIELD (SENTINEL MASTER's flat key/value list).
rt_sentinel_field() {
  rt_cli "$1" SENTINEL MASTER "$2" 2>/dev/null | tr -d '\r' | awk -v f="$3" 'p {print; exit} $0 == f {p = 1}'
}
rt_sentinel_master_port() { rt_cli "$1" SENTINEL GET-MASTER-ADDR-BY-NAME "$2" 2>/dev/null | tr -d '\r' | sed -n 2p; }
rt_sentinels_ready() {  # NAME: each sentinel sees the master, its replicas and the 2 others
  local s
  for s in "${RT_SENTINELS[@]}"; do
    [ "$(rt_sentinel_master_port "$s" "$1")" = "$RT_PRIMARY" ] || return 1
    [ "$(rt_sentinel_field "$s" "$1" num-other-sentinels)" = 2 ] || return 1
    [ "$(rt_sentinel_field "$s" "$1" num-slaves)" = "${#RT_REPLICAS[@]}" ] || return 1
    [ "$(rt_sentinel_field "$s" "$1" flags)" = master ] || return 1
  done
}

# rt_sentinels NAME: three sentinels (quorum 2) watching RT_PRIMARY; down after 1 s.
rt_sentinels() {
  local name=$1 p conf
  RT_SENTINELS=()
  for _ in 1 2 3; do
    p=$(rt_free_port)
    mkdir -p "$RT_DIR/$p"
    conf=$RT_DIR/$p/sentinel.conf
    cat >"$conf" <<EOF
port $p
bind 127.0.0.1
dir $RT_DIR/$p
logfile $RT_DIR/$p/sentinel.log
sentinel resolve-hostnames no
sentinel monitor $name 127.0.0.1 $RT_PRIMARY 2
sentinel down-after-milliseconds $name 1000
sentinel failover-timeout $name 5000
sentinel parallel-syncs $name 1
EOF
    "$RT_REDIS_SERVER" "$conf" --sentinel >/dev/null 2>&1 &
    RT_PID[$p]=$!
    RT_SENTINELS+=("$p")
  done
  for p in "${RT_SENTINELS[@]}"; do rt_wait "$RT_DEADLINE" "sentinel $p answering" rt_pong "$p" || return 1; done
  rt_wait "$((RT_DEADLINE * 2))" "sentinels agreeing on $name" rt_sentinels_ready "$name"
}

# The sentinels name NEW (not OLD) as master NAME, NEW says role:master, and every live
# replica follows NEW.
rt_sentinel_failed_over() {
  local name=$1 old=$2 s new
  new=$(rt_sentinel_master_port "${RT_SENTINELS[0]}" "$name")
  [ -n "$new" ] && [ "$new" != "$old" ] || return 1
  for s in "${RT_SENTINELS[@]}"; do [ "$(rt_sentinel_master_port "$s" "$name")" = "$new" ] || return 1; done
  [ "$(rt_info "$new" replication role)" = master ]
}

# rt_sentinel_kill_primary NAME: SIGKILL RT_PRIMARY, wait for the sentinels' failover;
# RT_PRIMARY becomes the promoted replica, RT_REPLICAS the others plus the killed one
# (restart it with rt_restart: the sentinels turn it into a replica of the new primary).
rt_sentinel_kill_primary() {
  local name=$1 old=$RT_PRIMARY r rest=()
  rt_log "SIGKILL sentinel primary $old"
  rt_kill "$old"
  rt_wait "$((RT_DEADLINE * 2))" "sentinel failover of $name" rt_sentinel_failed_over "$name" "$old" || return 1
  RT_PRIMARY=$(rt_sentinel_master_port "${RT_SENTINELS[0]}" "$name")
  for r in "${RT_REPLICAS[@]}"; do [ "$r" != "$RT_PRIMARY" ] && rest+=("$r"); done
  RT_REPLICAS=("${rest[@]}" "$old")
  rt_log "sentinel failover done: primary now $RT_PRIMARY"
}

# rt_sentinel_rejoined PORT: the restarted old primary replicates the new one, in sync.
rt_sentinel_rejoined() { rt_replica_synced "$1" "$RT_PRIMARY"; }

rt_cluster_ok() {  # every live cluster node: cluster_state ok and all 16384 slots served
  local p
  for p in "${RT_CLUSTER[@]}"; do
    [ -n "${RT_PID[$p]:-}" ] || continue
    rt_cli "$p" CLUSTER INFO 2>/dev/null | tr -d '\r' | grep -qx 'cluster_state:ok' || return 1
    rt_cli "$p" CLUSTER INFO 2>/dev/null | tr -d '\r' | grep -qx 'cluster_slots_ok:16384' || return 1
  done
}

rt_cluster() {  # [REPLICAS_PER_PRIMARY (1)]: 3 primaries (+ 3 replicas); node timeout 1 s
  local per=${1:-1} p hosts=()
  RT_CLUSTER=()
  RT_CLUSTER_REPLICAS=$((3 * per))
  for _ in $(seq $((3 + RT_CLUSTER_REPLICAS))); do
    p=$(rt_free_port)
    # The cluster bus is port + 10000: it must be free too.
    while [ "$p" -gt 55535 ] || ! python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',$p+10000))" 2>/dev/null; do
      p=$(rt_free_port)
    done
    rt_server "$p" --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1000 \
      --appendonly yes --appendfsync everysec || return 1
    RT_CLUSTER+=("$p")
    hosts+=("127.0.0.1:$p")
  done
  "$RT_REDIS_CLI" --cluster create "${hosts[@]}" --cluster-replicas "$per" --cluster-yes >"$RT_DIR/cluster-create.log" 2>&1 ||
    { rt_log "redis-cli --cluster create failed"; cat "$RT_DIR/cluster-create.log" >&2; return 1; }
  rt_wait "$((RT_DEADLINE * 2))" "cluster_state:ok on every node" rt_cluster_ok || return 1
  # A replica that never finished its first sync cannot be promoted: wait for all three.
  rt_wait "$((RT_DEADLINE * 2))" "every cluster replica in sync" rt_cluster_replicas_synced
}

rt_cluster_replicas_synced() {
  local p n=0
  for p in "${RT_CLUSTER[@]}"; do
    [ "$(rt_info "$p" replication role)" = slave ] || continue
    rt_replica_synced "$p" "$(rt_info "$p" replication master_port)" || return 1
    n=$((n + 1))
  done
  [ "$n" = "$RT_CLUSTER_REPLICAS" ]
}

# CLUSTER NODES of a live node, as "id port flags master_id slots..." lines.
rt_cluster_nodes() {
  local p
  for p in "${RT_CLUSTER[@]}"; do
    [ -n "${RT_PID[$p]:-}" ] || continue
    rt_cli "$p" CLUSTER NODES 2>/dev/null | tr -d '\r' |
      awk '{split($2, a, "[:@]"); printf "%s %s %s %s", $1, a[2], $3, $4; for (i = 9; i <= NF; i++) printf " %s", $i; print ""}'
    return 0
  done
}
rt_cluster_primaries() { rt_cluster_nodes | awk '$3 ~ /master/ && $3 !~ /fail/ && NF > 4 {print $2}'; }
rt_cluster_id() { rt_cli "$1" CLUSTER MYID | tr -d '\r'; }

# The replica REPLICA now serves slots as a master and the cluster is whole again.
rt_cluster_promoted() {
  [ "$(rt_info "$1" replication role)" = master ] && rt_cluster_ok
}

# rt_cluster_kill_primary [PORT]: SIGKILL a primary (default: the first one holding slots),
# wait until its replica is promoted and every live node reports cluster_state:ok.
# Sets RT_KILLED (the port killed) and RT_PROMOTED (its former replica).
rt_cluster_kill_primary() {
  local victim=${1:-$(rt_cluster_primaries | head -1)} id
  id=$(rt_cluster_id "$victim")
  RT_PROMOTED=$(rt_cluster_nodes | awk -v m="$id" '$4 == m {print $2; exit}')
  [ -n "$RT_PROMOTED" ] || { rt_log "primary $victim has no replica"; return 1; }
  rt_log "SIGKILL cluster primary $victim (replica $RT_PROMOTED)"
  rt_kill "$victim"
  RT_KILLED=$victim
  rt_wait "$((RT_DEADLINE * 2))" "cluster failover to $RT_PROMOTED" rt_cluster_promoted "$RT_PROMOTED" || return 1
  rt_log "cluster failover done: $RT_PROMOTED serves the slots of $victim"
}

# The restarted node PORT is a replica again, in sync with its primary.
rt_cluster_rejoined() {
  [ "$(rt_info "$1" replication role)" = slave ] || return 1
  rt_replica_synced "$1" "$(rt_info "$1" replication master_port)" && rt_cluster_ok
}

# rt_cluster_reshard N: move N slots from the first primary to the second with redis-cli
# (MIGRATE of their keys, then the slot's new owner announced); waits for the cluster to be
# whole. Sets RT_RESHARD_FROM / RT_RESHARD_TO (ports) and RT_RESHARD_KEYS (keys now in the
# moved slots).
rt_cluster_reshard() {
  local n=$1 primaries from to
  mapfile -t primaries < <(rt_cluster_primaries)
  RT_RESHARD_FROM=${primaries[0]} RT_RESHARD_TO=${primaries[1]}
  from=$(rt_cluster_id "$RT_RESHARD_FROM") to=$(rt_cluster_id "$RT_RESHARD_TO")
  rt_log "resharding $n slots $RT_RESHARD_FROM -> $RT_RESHARD_TO"
  "$RT_REDIS_CLI" --cluster reshard "127.0.0.1:$RT_RESHARD_FROM" --cluster-from "$from" --cluster-to "$to" \
    --cluster-slots "$n" --cluster-yes --cluster-pipeline 100 >"$RT_DIR/reshard.log" 2>&1 ||
    { rt_log "redis-cli --cluster reshard failed"; tail -5 "$RT_DIR/reshard.log" >&2; return 1; }
  rt_wait "$RT_DEADLINE" "cluster whole after the reshard" rt_cluster_ok || return 1
  # The keys that moved: what the moved slots hold now, at their new owner.
  RT_RESHARD_KEYS=$(sed -n 's/^Moving slot \([0-9]*\) from.*/CLUSTER COUNTKEYSINSLOT \1/p' "$RT_DIR/reshard.log" |
    sort -u | "$RT_REDIS_CLI" -p "$RT_RESHARD_TO" | awk '{s += $1} END {print s + 0}')
  rt_log "reshard done: $RT_RESHARD_KEYS keys in the moved slots"
}

# rt_slots_of PORT: the number of slots the node serves.
rt_slots_of() {
  local id
  id=$(rt_cluster_id "$1")
  rt_cluster_nodes | awk -v id="$id" '$1 == id {n = 0; for (i = 5; i <= NF; i++) {
    if ($i ~ /^\[/) continue; split($i, r, "-"); n += (r[2] == "" ? 1 : r[2] - r[1] + 1) } print n}'
}

# --- a replica promoted while behind -----------------------------------------------------
# rt_lag_cut REPLICA: the replica stops following its primary (REPLICAOF NO ONE): from now
# on it holds an ever older copy of the data (nothing writes to it). Returns its key count.
rt_lag_cut() {
  local r=$1
  rt_cli "$r" REPLICAOF NO ONE >/dev/null
  rt_wait "$RT_DEADLINE" "replica $r cut off" bash -c "[ \"\$($RT_REDIS_CLI -p $r INFO replication | tr -d '\r' | grep -c '^role:master')\" = 1 ]"
  rt_log "replica $r cut off its primary ($(rt_cli "$r" DBSIZE) keys)"
}

# rt_lag_promote PRIMARY REPLICA: the primary dies (SIGKILL) and its address is served from
# the cut-off replica's copy (saved to RDB, loaded by a new server on PRIMARY's port, AOF
# switched on): a lagging replica promoted behind a virtual address, as a failover to a
# replica that was behind does. The replica's own server stops.
rt_lag_promote() {
  local primary=$1 replica=$2 dir
  dir=$RT_DIR/$primary-promoted
  mkdir -p "$dir"
  # (dir is a protected config in Redis 7: save where the replica is, copy the file over)
  rt_cli "$replica" SAVE >/dev/null || { rt_log "SAVE on $replica failed"; return 1; }
  cp "$RT_DIR/$replica/dump.rdb" "$dir/dump.rdb"
  rt_log "SIGKILL primary $primary; its address now served from $replica's older copy"
  rt_kill "$primary"
  rt_kill "$replica"
  "$RT_REDIS_SERVER" --port "$primary" --bind 127.0.0.1 --dir "$dir" --dbfilename dump.rdb --daemonize no \
    --save '' --appendonly no --logfile "$dir/redis.log" >/dev/null 2>&1 &
  RT_PID[$primary]=$!
  RT_ARGS[$primary]="--appendonly yes --appendfsync everysec"
  rt_wait "$RT_DEADLINE" "promoted copy answering on $primary" rt_pong "$primary" || return 1
  rt_wait "$RT_DEADLINE" "promoted copy loaded" bash -c "[ \"\$($RT_REDIS_CLI -p $primary INFO persistence | tr -d '\r' | grep -c '^loading:0')\" = 1 ]" || return 1
  rt_cli "$primary" CONFIG SET appendonly yes >/dev/null
  rt_log "promoted copy serves $primary ($(rt_cli "$primary" DBSIZE) keys)"
}
