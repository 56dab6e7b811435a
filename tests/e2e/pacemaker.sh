#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A real Pacemaker 2.1 + Corosync 3 cluster drives the failover: nodeA and nodeB form a two-node
# cluster (scripts/cluster/pacemaker: knet, token 1000, stonith disabled for the test) that runs
# one resource group, in this order on one node:
#   ocf:heartbeat:IPaddr2 (service IP) -> ocf:lockferry-testbed:nfs (statd + Ganesha, in grace)
#   -> ocf:lockferry:lockferry (adopt nodeA nodeB: lockferry migrate, then lockferryd)
# Clients lock through the service IP on nodeA; nodeA crashes (its corosync, pacemakerd and
# pacemakerd's children SIGKILLed, then its lockferryd and NFS daemons, and its copy of the
# service IP removed: without fencing nothing else would); Pacemaker on nodeB moves the group,
# lockferry's agent migrates nodeA's records after the IP and the NFS server are up and in grace;
# every client reclaims; nodeA rejoining does not take the group back; conflicting locks stay
# denied, the reclaim audit reports 100 %, and the group stops in reverse order.
# The CIB is the one docs/integration.md shows. Env: E2E_KEEP=1, LOCKFERRY_BUILD_DIR,
# LF_TESTBED_GRACE (Ganesha's grace period on each start, default 15 s).
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib.sh"

build=${LOCKFERRY_BUILD_DIR:-$E2E_REPO/build}
[ $# -eq 0 ] || e2e_fatal "usage: pacemaker.sh (no arguments)"
e2e_require_root
for tool in jq corosync pacemakerd crm_mon cibadmin crm_attribute crm_resource; do
  command -v "$tool" >/dev/null || e2e_fatal "'$tool' is missing: run scripts/install-deps"
done
[ -x /usr/lib/ocf/resource.d/heartbeat/IPaddr2 ] || e2e_fatal "IPaddr2 is missing: run scripts/install-deps (resource-agents)"
client_bin=$build/tests/tools/lf-nlm-client
lfd_bin=$build/userspace/lockferryd
lf_bin=$build/userspace/lockferry
for b in "$client_bin" "$lfd_bin" "$lf_bin"; do
  [ -x "$b" ] || e2e_fatal "$b is not built: make -C $build lf-nlm-client lockferryd lockferry"
done

svc=203.0.113.10
state=$LF_TESTBED_DIR
export_dir=$state/export
store_url="dir://$state/store"
grace=${LF_TESTBED_GRACE:-15}
clients=3
name="e2e_pacemaker_failover"
e2e_trap_cleanup

wait_until() {   # SECONDS CMD...: by the clock (some CMDs here take a good part of a second)
  local end=$(($(date +%s%N) / 1000000 + $1 * 1000))
  shift
  until "$@"; do
    [ "$(($(date +%s%N) / 1000000))" -lt "$end" ] || return 1
    sleep 0.1
  done
}
on_node() { tb_exec "$@"; }
group_on() {   # NODE: every member of g_nfs runs there (the group is "running" once its first one does)
  local r
  for r in ip_nfs nfs_server lockferry; do
    [ "$(on_node nodeB crm_resource --locate --resource "$r" 2>/dev/null)" = "resource $r is running on: $1" ] || return 1
  done
}
not_in_grace() { ! tb nfs "$1" grace; }

# ---------------------------------------------------------------------------------------------
e2e_step "bring up nodeA, nodeB and $clients clients; no service anywhere (Pacemaker places it)"
tb down >/dev/null 2>&1
tb up --clients "$clients" --no-service
for ((k = 1; k <= clients; k++)); do : >"$export_dir/file$k.dat"; done
: >"$export_dir/shared.dat"
e2e_check "the service IP is on no node" bash -c "! ip -n $LF_TESTBED_PREFIX-nodeA -4 addr | grep -q ' $svc/' && ! ip -n $LF_TESTBED_PREFIX-nodeB -4 addr | grep -q ' $svc/'"

e2e_step "form the cluster: corosync (knet, token 1000, two_node) + pacemakerd on nodeA and nodeB"
t0=$(now_ms)
tb pacemaker start
e2e_ok "two-node cluster online in $(secs $(($(now_ms) - t0)))"

# One lockferry configuration for both nodes: `node` defaults to the host name (nodeA, nodeB in
# their UTS namespaces); /var/lib/nfs and /run are each node's own.
conf=$state/lockferry-pacemaker.toml
cat >"$conf" <<EOF
store = "$store_url"
[capture]
monitor_dirs = ["/var/lib/nfs/sm"]
pin_dir = ""
[control]
socket = "/run/lockferry/lockferryd.sock"
[failover]
statmon_dir = "/var/lib/nfs/sm"
service_ip = "$svc"
recognize = "sm-notify"
recognize_timeout_s = 20
EOF

e2e_step "configure the CIB: stonith off, stickiness, group ip_nfs -> nfs_server -> lockferry preferring nodeA"
cib=$state/cib-configuration.xml
cat >"$cib" <<EOF
<configuration>
  <resources>
    <group id="g_nfs">
      <primitive id="ip_nfs" class="ocf" provider="heartbeat" type="IPaddr2">
        <instance_attributes id="ip_nfs-params">
          <nvpair id="ip_nfs-ip" name="ip" value="$svc"/>
          <nvpair id="ip_nfs-cidr_netmask" name="cidr_netmask" value="24"/>
          <nvpair id="ip_nfs-nic" name="nic" value="eth0"/>
        </instance_attributes>
        <operations>
          <op id="ip_nfs-monitor" name="monitor" interval="5s" timeout="20s"/>
        </operations>
      </primitive>
      <primitive id="nfs_server" class="ocf" provider="lockferry-testbed" type="nfs">
        <instance_attributes id="nfs_server-params">
          <nvpair id="nfs_server-state_dir" name="state_dir" value="$state"/>
          <nvpair id="nfs_server-prefix" name="prefix" value="$LF_TESTBED_PREFIX"/>
          <nvpair id="nfs_server-grace" name="grace" value="$grace"/>
        </instance_attributes>
        <operations>
          <op id="nfs_server-start" name="start" interval="0s" timeout="60s"/>
          <op id="nfs_server-stop" name="stop" interval="0s" timeout="60s"/>
          <op id="nfs_server-monitor" name="monitor" interval="10s" timeout="20s"/>
        </operations>
      </primitive>
      <primitive id="lockferry" class="ocf" provider="lockferry" type="lockferry">
        <instance_attributes id="lockferry-params">
          <nvpair id="lockferry-config" name="config" value="$conf"/>
          <nvpair id="lockferry-adopt" name="adopt" value="nodeA nodeB"/>
          <nvpair id="lockferry-lockferryd" name="lockferryd" value="$lfd_bin"/>
          <nvpair id="lockferry-lockferry" name="lockferry" value="$lf_bin"/>
          <nvpair id="lockferry-logfile" name="logfile" value="/run/lockferry/lockferryd.log"/>
        </instance_attributes>
        <operations>
          <op id="lockferry-start" name="start" interval="0s" timeout="120s"/>
          <op id="lockferry-stop" name="stop" interval="0s" timeout="60s"/>
          <op id="lockferry-monitor" name="monitor" interval="20s" timeout="30s"/>
        </operations>
      </primitive>
    </group>
  </resources>
  <constraints>
    <rsc_location id="g_nfs-prefers-nodeA" rsc="g_nfs" node="nodeA" score="50"/>
  </constraints>
</configuration>
EOF
on_node nodeA crm_attribute --type crm_config --name stonith-enabled --update false
on_node nodeA crm_attribute --type rsc_defaults --name resource-stickiness --update 100
on_node nodeA cibadmin --modify --scope configuration --xml-file "$cib"
e2e_check "the CIB validates (crm_verify -L)" on_node nodeA crm_verify -L
if wait_until 90 group_on nodeA; then
  e2e_ok "Pacemaker started g_nfs on nodeA"
else
  tb pacemaker status || true
  e2e_fatal "g_nfs did not start on nodeA"
fi
wait_until 30 lf_on nodeA status >/dev/null 2>&1 || e2e_fatal "lockferryd (started by the agent) does not answer on nodeA"
e2e_check "the service IP is on nodeA only" bash -c "ip -n $LF_TESTBED_PREFIX-nodeA -4 addr | grep -q ' $svc/' && ! ip -n $LF_TESTBED_PREFIX-nodeB -4 addr | grep -q ' $svc/'"
tb pacemaker status | sed 's/^/    /'

e2e_step "wait for nodeA's grace period to end"
wait_until $((grace + 20)) not_in_grace nodeA || e2e_fatal "nodeA stayed in grace"

e2e_clients_hold_locks
locks_ok() {
  [ "$("$lf_bin" --store "$store_url" --json locks --node nodeA 2>/dev/null |
    jq --arg e "$export_dir/" '[.[] | select(.path | startswith($e))] | length')" -ge $((clients * 2)) ]
}
wait_until 15 locks_ok && e2e_ok "nodeA's lock table in the store holds the $((clients * 2)) locks" ||
  e2e_bad "nodeA's lock table did not reach the store"

# ---------------------------------------------------------------------------------------------
e2e_step "CRASH nodeA: SIGKILL its cluster stack, then lockferryd, Ganesha and statd; drop its service IP"
t_kill=$(now_ms)
tb pacemaker kill nodeA
# lockferryd before Ganesha: it would otherwise store the table Ganesha's death empties.
lfd_a=$(cat "$state/nodes/nodeA/run/lockferry/ocf-lockferry.pid" 2>/dev/null || true)
[ -n "$lfd_a" ] && [ "$(cat "/proc/$lfd_a/comm" 2>/dev/null)" = lockferryd ] && kill -KILL "$lfd_a"
tb nfs nodeA kill
# A crashed machine answers nothing; nodeA's namespace would keep the address (no fencing here).
ip -n "$LF_TESTBED_PREFIX-nodeA" addr del "$svc/24" dev eth0

all_reclaimed() {
  local k
  for ((k = 1; k <= clients; k++)); do [ "$(count_status "$state/client$k.json" reclaimed)" -eq 2 ] || return 1; done
}
if wait_until 90 all_reclaimed; then
  t_done=$(now_ms)
  e2e_ok "every client reclaimed both locks on nodeB"
else
  t_done=$(now_ms)
  e2e_bad "not every client reclaimed within 90 s"
  tb pacemaker status || true
fi
wait_until 60 group_on nodeB && e2e_ok "Pacemaker moved g_nfs to nodeB" || e2e_bad "g_nfs is not running on nodeB"
e2e_check "the service IP is on nodeB only" bash -c "ip -n $LF_TESTBED_PREFIX-nodeB -4 addr | grep -q ' $svc/' && ! ip -n $LF_TESTBED_PREFIX-nodeA -4 addr | grep -q ' $svc/'"
tb pacemaker status | sed 's/^/    /' || true

e2e_step "the order on nodeB: IP up, then the NFS server up (in grace), then lockferry's migrate"
pm_log=$state/nodes/nodeB/cluster/log-pacemaker/pacemaker.log
grep -E "Result of start operation for (ip_nfs|nfs_server|lockferry) on nodeB|lockferry\(lockferry\)" "$pm_log" |
  cut -c1-220 | sed 's/^/    /' || true
started_line() { grep -n -m 1 "Result of start operation for $1 on nodeB: ok" "$pm_log" | cut -d: -f1 || true; }
# The clients reclaim during the agent's start (sm-notify); the start ends once lockferryd answers.
wait_until 30 grep -q "Result of start operation for lockferry on nodeB" "$pm_log" || true
l_ip=$(started_line ip_nfs) l_nfs=$(started_line nfs_server) l_lf=$(started_line lockferry)
e2e_check "IPaddr2 started before the NFS server, the NFS server before lockferry (log lines ${l_ip:-?} < ${l_nfs:-?} < ${l_lf:-?})" \
  test "${l_ip:-0}" -gt 0 -a "${l_ip:-0}" -lt "${l_nfs:-0}" -a "${l_nfs:-0}" -lt "${l_lf:-0}"
e2e_check "nodeB's Ganesha is still in the grace period it started with (so migrate ran within it)" tb nfs nodeB grace
migrations=$("$lf_bin" --store "$store_url" --json migrations)
jq -c '.[] | {from_node, to_node, epoch, result}' <<<"$migrations" | sed 's/^/    /'
e2e_check "exactly one migration of nodeA, by nodeB, at epoch 1, result ok" \
  test "$(jq '[.[] | select(.from_node == "nodeA" and .to_node == "nodeB" and .epoch == 1 and .result == "ok")] | length' <<<"$migrations")" -eq 1
for ((k = 1; k <= clients; k++)); do
  e2e_check "client$k notified from $svc" jq -e --arg s "$svc" 'any(.notifications[]; .mon_name == $s)' "$state/client$k.json"
done
ms=$((t_done - t_kill))
printf '\n\033[1mMEASURED: kill of nodeA'"'"'s cluster stack -> last reclaim on nodeB: %s (polled every 100 ms)\033[0m\n' "$(secs "$ms")"

e2e_step "nodeA comes back (corosync + pacemakerd restarted): the group stays on nodeB"
tb pacemaker start
# Pacemaker probes nodeA's resources when it joins; give a wrong decision time to show.
sleep 5
e2e_check "g_nfs still runs on nodeB (resource-stickiness 100 > nodeA's preference 50)" group_on nodeB
e2e_check "the service IP is on nodeB only" bash -c "ip -n $LF_TESTBED_PREFIX-nodeB -4 addr | grep -q ' $svc/' && ! ip -n $LF_TESTBED_PREFIX-nodeA -4 addr | grep -q ' $svc/'"
e2e_check "still exactly one migration of nodeA, none of nodeB" \
  test "$("$lf_bin" --store "$store_url" --json migrations | jq 'length')" -eq 1

e2e_step "the locks survived: after nodeB's grace period, other clients' conflicting locks are denied"
wait_until $((grace + 20)) not_in_grace nodeB || e2e_bad "nodeB never left grace"
denied=0
for ((k = 1; k <= clients; k++)); do
  o=$((k % clients + 1))
  nlm "$o" lock "file$k.dat:0:4096:exclusive" >/dev/null 2>&1 || denied=$((denied + 1))
done
e2e_check "$denied/$clients conflicting locks denied" test "$denied" -eq "$clients"

e2e_step "the reclaim audit on nodeB"
audit_ok() {
  lf_on nodeB --json audit --from nodeA >"$state/audit.json" 2>"$state/audit.err" &&
    jq -e --arg e "$export_dir/" '[.locks[] | select(.path | startswith($e))] | length == '$((clients * 2))' and all(.status == "reclaimed")' \
      "$state/audit.json" >/dev/null
}
wait_until 30 audit_ok || true
lf_on nodeB audit --from nodeA | sed 's/^/    /' || true
e2e_check "the audit reports 100 % reclaimed ($((clients * 2)) of $((clients * 2)) locks of the export)" audit_ok

e2e_step "Pacemaker stops the group cleanly on nodeB (lockferry, then the NFS server, then the IP)"
on_node nodeB crm_resource --resource g_nfs --meta --set-parameter target-role --parameter-value Stopped >/dev/null
group_stopped() { grep -q "resource g_nfs is NOT running" <<<"$(on_node nodeB crm_resource --locate --resource g_nfs 2>&1)"; }
if wait_until 90 group_stopped; then
  e2e_ok "g_nfs stopped"
else
  e2e_bad "g_nfs did not stop"
  tb pacemaker status | sed 's/^/    /' || true
fi
e2e_check "lockferryd is gone on nodeB" test -z "$(ip netns pids "$LF_TESTBED_PREFIX-nodeB" | while read -r p; do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = lockferryd ] && echo "$p"; done)"
e2e_check "the service IP left nodeB" bash -c "! ip -n $LF_TESTBED_PREFIX-nodeB -4 addr | grep -q ' $svc/'"
# The reverse order on stop is what keeps this: lockferryd is gone before Ganesha releases them.
e2e_check "nodeB's lock table in the store still holds the $((clients * 2)) reclaimed locks after the stop" \
  test "$("$lf_bin" --store "$store_url" --json locks --node nodeB | jq --arg e "$export_dir/" '[.[] | select(.path | startswith($e))] | length')" -eq $((clients * 2))

e2e_finish "$name"
