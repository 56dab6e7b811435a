# SPDX-License-Identifier: Apache-2.0
# The kernel NFS server (nfsd + lockd) as the testbed's server kind "knfsd" (`up --server knfsd`):
# start, crash and grace of one server node. Sourced by scripts/cluster/nfs after lib.sh; never
# executed. Needs a kernel with nfsd and lockd (the Debian 6.1 guest of scripts/vm: the tests run
# there; rpc.nfsd, rpc.mountd and exportfs come from nfs-kernel-server, which scripts/install-deps
# installs on the host).
#
# What makes two knfsd servers in one kernel: nfsd and lockd keep their state per network
# namespace (threads, sockets, exports cache, grace, NLM hosts), the nfsd file system is per
# network namespace (mounted from inside the node), and rpcbind, statd and mountd run per node
# with the node's /run and /var/lib/nfs. Global to the kernel: the lockd thread itself and the
# sysctls fs.nfs.nlm_grace_period / nlm_timeout (lockd's grace, set at every start).

# lockd's grace is roundup(nlm_grace_period, nlm_timeout) seconds (nlm_timeout >= 3). nfsd's
# NFSv4 grace (nfsv4gracetime, >= 10 s) holds lockd in grace too, even with v4 off: locks_in_grace
# asks every lock manager of the network namespace (and v4_end_grace fails with EIO in a network
# namespace, where nfsd has no client tracking). The node is in grace for the longer of the two.
knfsd_nlm_timeout=3
knfsd_v4_grace_s() { echo $((LF_TB_GRACE > 10 ? LF_TB_GRACE : 10)); }
knfsd_grace_s() {
  local nlm=$(((LF_TB_GRACE + knfsd_nlm_timeout - 1) / knfsd_nlm_timeout * knfsd_nlm_timeout))
  local v4
  v4=$(knfsd_v4_grace_s)
  echo $((nlm > v4 ? nlm : v4))
}

knfsd_mountd_pids() { tb_node_pids_named "$node" rpc.mountd; }
knfsd_threads() { tb_in "$node" cat /proc/fs/nfsd/threads 2>/dev/null || echo 0; }

# lockd tells nobody when its grace ends: `start` notes when it will (a kernel timer from the
# start of the node's lockd), `grace` compares.
knfsd_grace_file() { echo "$dir/run/knfsd-grace-until"; }
knfsd_in_grace() {
  local until
  until=$(cat "$(knfsd_grace_file)" 2>/dev/null) || return 1
  [ "$(knfsd_threads)" -gt 0 ] && [ "$(date +%s%N)" -lt "$until" ]
}

knfsd_start() {
  local export t0 grace
  export=$(tb_export_dir)
  grace=$(knfsd_grace_s)
  for tool in rpc.nfsd rpc.mountd exportfs; do
    command -v "$tool" >/dev/null || tb_die "'$tool' not found (nfs-kernel-server: scripts/install-deps)"
  done
  modprobe nfsd || tb_die "no nfsd module in this kernel ($(uname -r))"
  tb_start_rpcbind "$node"
  if [ -z "$(statd_pids)" ]; then
    tb_in "$node" rpc.statd --no-notify
    tb_wait_for "rpc.statd on $node" 10 tb_rpc_answers "$node" 100024 1 udp || tb_die "rpc.statd did not register on $node"
  fi
  if [ "$(knfsd_threads)" -gt 0 ]; then
    tb_log "$node: knfsd already running"
    return 0
  fi
  t0=$(($(date +%s%N) / 1000000))
  sysctl -q -w fs.nfs.nlm_timeout=$knfsd_nlm_timeout fs.nfs.nlm_grace_period="$LF_TB_GRACE"
  # Mounted from inside the node: the nfsd file system shows the mounting network namespace's nfsd.
  tb_in "$node" mountpoint -q /proc/fs/nfsd || tb_in "$node" mount -t nfsd nfsd /proc/fs/nfsd
  # Both nodes export the one tmpfs with the same fsid: the file handles clients hold stay valid.
  tb_in "$node" touch /var/lib/nfs/etab /var/lib/nfs/rmtab
  tb_in "$node" exportfs -i -o rw,sync,no_root_squash,no_subtree_check,insecure,fsid=1 "*:$export"
  [ -n "$(knfsd_mountd_pids)" ] || tb_in "$node" rpc.mountd -N 4
  tb_in "$node" sh -c "echo $(knfsd_v4_grace_s) >/proc/fs/nfsd/nfsv4gracetime && echo 10 >/proc/fs/nfsd/nfsv4leasetime"
  # NFSv3 only (lockferry keeps NLM locks; v4 clients reclaim by their own protocol).
  tb_in "$node" rpc.nfsd -N 4 4
  echo $(($(date +%s%N) + grace * 1000000000)) >"$(knfsd_grace_file)"
  tb_wait_for "knfsd on $node (NLM answering)" 20 tb_rpc_answers "$node" 100021 4 ||
    tb_die "lockd does not answer on $node"
  tb_rpc_answers "$node" 100003 3 || tb_die "nfsd on $node answers NLM but not NFS"
  tb_log "$node: knfsd up in $(($(date +%s%N) / 1000000 - t0))ms ($(knfsd_threads) nfsd threads, rpc.statd $(statd_pids | tr '\n' ' '), lockd IN GRACE ${grace}s)"
}

# SIGNAL: the node's NFS service goes away. The node's lockd drops every lock its clients hold
# (unlock_ip: the cluster failover hook; then nfsd stops for this network namespace), statd and
# mountd get SIGNAL. With SIGKILL this is the crash: nobody tells the clients.
knfsd_stop() {
  local sig=$1 pids
  if [ "$(knfsd_threads)" -gt 0 ]; then
    tb_in "$node" sh -c "echo $LF_TB_SERVICE_IP >/proc/fs/nfsd/unlock_ip" 2>/dev/null || true
    tb_in "$node" rpc.nfsd 0
    tb_in "$node" exportfs -ua 2>/dev/null || true
  fi
  rm -f "$(knfsd_grace_file)"
  pids=$(echo $(statd_pids) $(knfsd_mountd_pids))
  [ -n "$pids" ] && kill -"$sig" $pids 2>/dev/null
  no_knfsd_daemons() { [ -z "$(statd_pids)$(knfsd_mountd_pids)" ]; }
  tb_wait_for "rpc.statd/rpc.mountd on $node to exit" 10 no_knfsd_daemons ||
    tb_die "$node: rpc.statd/rpc.mountd still running after SIG$sig"
  tb_log "$node: knfsd stopped (nfsd threads $(knfsd_threads)), SIG$sig to rpc.statd + rpc.mountd (${pids:-none})"
}

knfsd_status() {
  echo "$node: rpcbind $(tb_node_pids_named "$node" rpcbind | tr '\n' ' ')| rpc.statd $(statd_pids | tr '\n' ' ')| rpc.mountd $(knfsd_mountd_pids | tr '\n' ' ')| nfsd threads $(knfsd_threads)"
  knfsd_in_grace && echo "$node: lockd IN GRACE" || echo "$node: lockd not in grace (or not running)"
}
