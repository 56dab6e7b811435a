# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# One kernel NFS server (knfsd + lockd + rpc.statd + rpc.mountd, NFSv3 only) in the guest's root
# namespaces, exporting an ext4 loop device, with NFS clients in network namespaces over veth
# pairs. Sourced by the guest tests in tests/vm (run inside scripts/vm: everything it creates
# vanishes at power-off); never executed. The server answers on the service IPs given to
# knfsd_start; client K is 10.77.K.2 behind veth knv K, routed to every service IP.

# shellcheck disable=SC2034  # used by the tests that source this
KNFSD_EXPORT=/srv/lfexport
# shellcheck disable=SC2034
KNFSD_SM=/var/lib/nfs/sm

knfsd_fail() { printf 'FAIL: %s\n' "$*"; exit 1; }

# rpc.nfsd, rpc.mountd and exportfs: Debian's nfs-kernel-server, installed on the host (the
# guest sees the host's root).
knfsd_tools() {
  local tool
  for tool in rpc.nfsd rpc.mountd exportfs rpcbind rpc.statd mkfs.ext4 losetup ip; do
    command -v "$tool" >/dev/null || knfsd_fail "'$tool' is missing (nfs-kernel-server: scripts/install-deps)"
  done
}

# knfsd_start IP...: the server on these service IPs (on lo), in grace for no longer than a
# few seconds, and NLM grace over before it returns.
knfsd_start() {
  knfsd_tools
  modprobe nfsd || knfsd_fail "no nfsd module"
  # lockd's grace is nlm_grace_period rounded up to nlm_timeout (both seconds; minimum 3).
  sysctl -qw fs.nfs.nlm_timeout=3 fs.nfs.nlm_grace_period=3
  mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd
  echo 10 >/proc/fs/nfsd/nfsv4gracetime
  echo 10 >/proc/fs/nfsd/nfsv4leasetime
  local ip
  for ip in "$@"; do ip addr add "$ip/32" dev lo; done
  truncate -s 64M /tmp/lfexport.img
  mkfs.ext4 -q -F /tmp/lfexport.img
  mkdir -p "$KNFSD_EXPORT"
  modprobe -a loop ext4
  mount -t ext4 "$(losetup -f --show /tmp/lfexport.img)" "$KNFSD_EXPORT"
  chmod 1777 "$KNFSD_EXPORT"
  mkdir -p /run/rpcbind /var/lib/nfs/v4recovery
  echo "$KNFSD_EXPORT *(rw,sync,no_root_squash,insecure,no_subtree_check,fsid=77)" >/etc/exports
  : >/var/lib/nfs/etab
  rpcbind -w
  rpc.statd --no-notify
  exportfs -ra
  rpc.mountd -N 4
  rpc.nfsd -N 4 4
  echo Y >/proc/fs/nfsd/v4_end_grace 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    [ -n "$(knfsd_lockd_pid)" ] && break
    sleep 0.1
  done
  [ -n "$(knfsd_lockd_pid)" ] || knfsd_fail "lockd did not start"
  sleep 4  # lockd's grace (3 s)
}

knfsd_lockd_pid() { pgrep -x lockd | head -n 1 || true; }

# knfsd_client K: network namespace lfc K (10.77.K.2) with a route to every address of the host.
knfsd_client() {
  local k=$1
  ip netns add "lfc$k"
  ip link add "knv$k" type veth peer name eth0 netns "lfc$k"
  ip addr add "10.77.$k.1/24" dev "knv$k"
  ip link set "knv$k" up
  ip -n "lfc$k" addr add "10.77.$k.2/24" dev eth0
  ip -n "lfc$k" link set eth0 up
  ip -n "lfc$k" link set lo up
  ip -n "lfc$k" route add default via "10.77.$k.1"
}

# lockd's locks in /proc/locks: "START END TYPE" per line, sorted.
knfsd_proc_locks() {
  local pid
  pid=$(knfsd_lockd_pid)
  awk -v pid="$pid" '$2 == "POSIX" && $5 == pid { print $7, $8, $4 }' /proc/locks | sort
}
