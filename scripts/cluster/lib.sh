# SPDX-License-Identifier: Apache-2.0
# Shared helpers of the local NFS cluster testbed (scripts/cluster/*): names, addresses,
# namespace paths and "run inside a node". Sourced, never executed.
#
# The scripts run under pipefail, so they match on captured output (grep -q PAT <<<"$(cmd)")
# rather than `cmd | grep -q PAT`: grep -q exits at the first match, and a cmd that writes again
# afterwards (ip flushes per address) dies of SIGPIPE and fails the whole pipeline.

# Every testbed object is named from these, so `down` can find all of them again even after a
# failed `up` or with a lost state dir.
LF_TB_PREFIX=${LF_TESTBED_PREFIX:-lftb}
LF_TB_DIR=${LF_TESTBED_DIR:-/run/lockferry-testbed}
LF_TB_NET=203.0.113           # TEST-NET-3 (not the host's own 192.0.2.0/24): never routed anywhere, lives only in our namespaces
LF_TB_SERVICE_IP=$LF_TB_NET.10
LF_TB_PREFIXLEN=24
LF_TB_SWITCH=${LF_TB_PREFIX}-switch
LF_TB_GRACE=${LF_TESTBED_GRACE:-20}
LF_TB_STATD_USER=statd

tb_log() { printf '\033[1;34m[testbed]\033[0m %s\n' "$*" >&2; }
tb_die() { printf '\033[1;31m[testbed] error:\033[0m %s\n' "$*" >&2; exit 1; }

# Parses a leading --state-dir DIR out of "$@" into LF_TB_DIR; callers then use TB_ARGS.
tb_parse_state_dir() {
  TB_ARGS=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --state-dir) [ $# -ge 2 ] || tb_die "--state-dir needs a directory"; LF_TB_DIR=$2; shift 2 ;;
      --state-dir=*) LF_TB_DIR=${1#*=}; shift ;;
      *) TB_ARGS+=("$1"); shift ;;
    esac
  done
  LF_TB_DIR=$(realpath -m "$LF_TB_DIR")
}

tb_require_root() { [ "$(id -u)" -eq 0 ] || tb_die "the testbed needs root (namespaces, mounts, NFS daemons)"; }

tb_netns() { printf '%s-%s' "$LF_TB_PREFIX" "$1"; }
tb_ns_file() { printf '%s/ns/%s.%s' "$LF_TB_DIR" "$1" "$2"; }   # NODE mnt|uts
tb_node_dir() { printf '%s/nodes/%s' "$LF_TB_DIR" "$1"; }
tb_export_dir() { printf '%s/export' "$LF_TB_DIR"; }
tb_store_dir() { printf '%s/store' "$LF_TB_DIR"; }

tb_is_server() { case "$1" in nodeA | nodeB) return 0 ;; *) return 1 ;; esac; }

tb_node_ip() {
  case "$1" in
    nodeA) echo "$LF_TB_NET.11" ;;
    nodeB) echo "$LF_TB_NET.12" ;;
    client[0-9]*) echo "$LF_TB_NET.$((100 + ${1#client}))" ;;
    *) tb_die "unknown node '$1' (nodeA, nodeB, client1..N)" ;;
  esac
}

# The NFS server kind chosen by `up` (ganesha, or knfsd: the kernel's nfsd + lockd, see knfsd.sh).
tb_server() {
  local kind=""
  [ -r "$LF_TB_DIR/testbed.env" ] && kind=$(sed -n 's/^SERVER=//p' "$LF_TB_DIR/testbed.env")
  echo "${kind:-ganesha}"
}

# The client count chosen by `up`, so later commands know every node.
tb_clients() {
  local n=0
  [ -r "$LF_TB_DIR/testbed.env" ] && n=$(sed -n 's/^CLIENTS=//p' "$LF_TB_DIR/testbed.env")
  echo "${n:-0}"
}

tb_nodes() {
  local i
  echo nodeA
  echo nodeB
  for ((i = 1; i <= $(tb_clients); i++)); do echo "client$i"; done
}

tb_node_exists() {
  [ -e "/run/netns/$(tb_netns "$1")" ] && mountpoint -q "$(tb_ns_file "$1" mnt)" 2>/dev/null
}

# Runs "$@" inside NODE's network, mount and UTS namespaces.
tb_in() {
  local node=$1
  shift
  tb_node_exists "$node" || tb_die "node '$node' is not up (state dir $LF_TB_DIR); run scripts/cluster/up"
  nsenter --net="/run/netns/$(tb_netns "$node")" --mount="$(tb_ns_file "$node" mnt)" \
    --uts="$(tb_ns_file "$node" uts)" -- "$@"
}

# Pids of processes living in NODE's network namespace (by namespace identity, never by name).
tb_node_pids() {
  ip netns pids "$(tb_netns "$1")" 2>/dev/null || true
}

# Pid from NODE's pid file, if that process is alive and really inside NODE.
tb_pid_from_file() {
  local node=$1 file=$2 pid
  pid=$(cat "$(tb_node_dir "$node")/run/$file" 2>/dev/null || true)
  pid=${pid//[^0-9]/}
  [ -n "$pid" ] || return 1
  grep -qx "$pid" <<<"$(tb_node_pids "$node")" || return 1
  echo "$pid"
}

# Waits up to $2 seconds for "$3..." to succeed; prints nothing.
tb_wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  tb_log "timed out after ${secs}s waiting for $what"
  return 1
}

# Pids of processes named COMM inside NODE (scoped by namespace, so other testbeds and the host's
# own daemons are never touched).
tb_node_pids_named() {
  local node=$1 comm=$2 p
  for p in $(tb_node_pids "$node"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$comm" ] && echo "$p"
  done
  return 0
}

# NODE PROGRAM VERSION [tcp|udp]: does the service answer a NULL call on NODE? (Not just "is it
# registered": a killed Ganesha's registrations stay in rpcbind, so only a call proves it is up.)
tb_rpc_answers() {
  tb_in "$1" timeout 5 rpcinfo -T "${4:-tcp}" 127.0.0.1 "$2" "$3" >/dev/null 2>&1
}

tb_start_rpcbind() {
  local node=$1
  if [ -n "$(tb_node_pids_named "$node" rpcbind)" ]; then
    tb_log "$node: rpcbind already running"
    return 0
  fi
  tb_in "$node" mkdir -p /run/rpcbind
  tb_in "$node" rpcbind
  tb_wait_for "rpcbind on $node" 10 tb_in "$node" rpcinfo -p 127.0.0.1 || tb_die "rpcbind did not start on $node"
  tb_log "$node: rpcbind up (pid $(tb_node_pids_named "$node" rpcbind | tr '\n' ' '))"
}

# Scripts that cluster managers run inside a node (notify scripts, resource agents) drive the
# testbed from the host's mount namespace: a node's /run hides /run/netns and the namespace files.
# This process stays in the host's mount namespace (in the switch's netns, so `down` stops it) and
# lends it to them: nsenter --mount=/proc/$(cat <state dir>/host-mnt.pid)/ns/mnt.
tb_start_host_anchor() {
  local pidfile=$LF_TB_DIR/host-mnt.pid pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  [ -n "$pid" ] && [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$(readlink /proc/self/ns/mnt)" ] && return 0
  setsid nsenter --net="/run/netns/$LF_TB_SWITCH" sleep infinity </dev/null >/dev/null 2>&1 &
  echo $! >"$pidfile"
}
