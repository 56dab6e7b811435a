#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Proves the namespace NFS cluster itself: isolation, NFS on the service IP, failover of the IP and
# the NFS service to nodeB (in grace), SM_NOTIFY from the service IP reaching a client's statd,
# idempotent up, and a down that leaves nothing behind.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib.sh"
e2e_require_root
e2e_trap_cleanup
svc=203.0.113.10

e2e_step "clean slate, then bring up nodeA, nodeB and 2 clients"
tb down >/dev/null 2>&1
tb up --clients 2

e2e_step "the testbed is isolated from the host"
e2e_check "no testbed address or interface in the host's namespace" \
  bash -c '! ip -4 addr show | grep -qE " 192\.0\.2\.(10|11|12|10[0-9])/" && ! ip link show | grep -qE ": (v-(node|client)|br0)"'
e2e_check "nodes have their own hostnames" test "$(tb_exec nodeB hostname)" = nodeB
tb_exec nodeA touch /var/lib/nfs/sm.bak/isolation-probe
e2e_check "nodeA's /var/lib/nfs is not nodeB's" bash -c "! '$E2E_CLUSTER/exec' nodeB test -e /var/lib/nfs/sm.bak/isolation-probe"
tb_exec nodeA rm /var/lib/nfs/sm.bak/isolation-probe
e2e_check "both nodes see the same export" bash -c "'$E2E_CLUSTER/exec' nodeA touch $LF_TESTBED_DIR/export/shared-probe && '$E2E_CLUSTER/exec' nodeB test -e $LF_TESTBED_DIR/export/shared-probe"

e2e_step "clients reach NFS, MOUNT and NLM on the service IP (nodeA)"
e2e_check "client1: rpcinfo -p $svc lists nlockmgr" bash -c "'$E2E_CLUSTER/exec' client1 rpcinfo -p $svc | grep -q nlockmgr"
e2e_check "client2: showmount -e $svc lists the export" bash -c "'$E2E_CLUSTER/exec' client2 showmount -e $svc | grep -q '$LF_TESTBED_DIR/export'"
e2e_check "up is idempotent" tb up --clients 2

e2e_step "crash nodeA, move the service IP, start NFS on nodeB"
tb nfs nodeA kill
e2e_check "nothing answers on the service IP after the crash" bash -c "! timeout 10 '$E2E_CLUSTER/exec' client1 rpcinfo -T tcp $svc 100003 3"
tb move-ip nodeA nodeB
tb nfs nodeB start
e2e_check "nodeB's Ganesha is in grace" tb nfs nodeB grace
e2e_check "client1 reaches NFS on $svc (now nodeB)" tb_exec client1 rpcinfo -T tcp $svc 100003 3
e2e_check "the service IP is on nodeB only" bash -c "ip -n $LF_TESTBED_PREFIX-nodeB -4 addr | grep -q ' $svc/' && ! ip -n $LF_TESTBED_PREFIX-nodeA -4 addr | grep -q ' $svc/'"

e2e_step "sm-notify on nodeB reaches a client's statd from the service IP"
log=$LF_TESTBED_DIR/client1-statd.log
tb_exec client1 -- timeout 60 rpc.statd -F -d --no-notify >"$log" 2>&1 &
for _ in $(seq 50); do grep -q status <<<"$(tb_exec client1 rpcinfo -p 127.0.0.1 2>/dev/null)" && break; sleep 0.2; done
rec=$LF_TESTBED_DIR/nodes/nodeB/nfs/sm/203.0.113.101
# A monitor record as rpc.statd writes it: addr (in-memory hex), NLM prog/vers/proc, priv, mon_name, my_name.
echo "650071cb 000186b5 00000004 00000010 00112233445566778899aabbccddeeff 203.0.113.101 nodeA" >"$rec"
chown statd:nogroup "$rec"
chmod 0600 "$rec"
e2e_check "sm-notify -f -v $svc exits 0" tb_exec nodeB timeout 30 sm-notify -d -f -m 1 -v $svc -P /var/lib/nfs
e2e_check "client1's statd got SM_NOTIFY from $svc" grep -q "Received SM_NOTIFY from $svc" "$log"
e2e_check "sm-notify consumed the record" test ! -e "$rec"

e2e_step "down leaves nothing behind (and runs twice)"
tb down
e2e_check "no testbed network namespace left" bash -c "! ip netns list | grep -q '^$LF_TESTBED_PREFIX-'"
e2e_check "no mount left under $LF_TESTBED_DIR" bash -c "! findmnt -rn -o TARGET | grep -q '^$LF_TESTBED_DIR'"
e2e_check "state dir removed" test ! -e "$LF_TESTBED_DIR"
e2e_check "a second down succeeds" tb down

e2e_finish e2e_testbed
