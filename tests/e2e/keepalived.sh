#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# keepalived drives a failover on the namespace NFS cluster: real keepalived (VRRP over the
# testbed's bridge) on nodeA and nodeB owns the service IP; its notify scripts start the NFS
# server (statd + Ganesha, in grace) on MASTER, stop it on BACKUP/FAULT/STOP, and call
# scripts/keepalived/lockferry-notify as docs/integration.md shows. lockferryd runs on both nodes;
# nobody runs `lockferry migrate` by hand.
#
#   --scenario kill       nodeA crashes: keepalived, Ganesha, statd and lockferryd SIGKILLed (the
#                         address keepalived left on eth0 goes with the machine)
#   --scenario partition  nodeA's link goes down while nodeA stays up: its keepalived goes FAULT
#                         and stops its NFS server; its lockferryd keeps running
#
# Then nodeB becomes MASTER, lockferry-notify adopts nodeA, every client reclaims, the audit
# reports 100 %. nodeA comes back (kill: lockferryd and keepalived restarted; partition: link up)
# and must not take anything back: "wrongly" would be nodeA preempting nodeB (the address moving
# back, which is a second failover for every client), nodeA starting its NFS server, or nodeA
# adopting nodeB's records. The test asserts nodeA stays BACKUP (nopreempt), the address and the
# NFS server stay on nodeB, there is no migration of nodeB, and the clients keep their locks.
# Env: E2E_KEEP=1, LOCKFERRY_BUILD_DIR, E2E_KA_PREEMPT=1 (drop nopreempt: the rejoin checks fail).
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib.sh"

scenario=kill
build=${LOCKFERRY_BUILD_DIR:-$E2E_REPO/build}
while [ $# -gt 0 ]; do
  case "$1" in
    --scenario) scenario=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    *) e2e_fatal "unknown argument '$1' (--scenario kill|partition, --build-dir DIR)" ;;
  esac
done
case "$scenario" in kill | partition) ;; *) e2e_fatal "--scenario must be kill or partition" ;; esac
e2e_require_root
command -v jq >/dev/null || e2e_fatal "jq is missing: run scripts/install-deps"
command -v keepalived >/dev/null || e2e_fatal "keepalived is missing: run scripts/install-deps"
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
grace_b=15
clients=3
name="e2e_keepalived ($scenario)"
e2e_trap_cleanup

ka_state() { tb keepalived state "$1"; }
ka_is() { [ "$(ka_state "$1")" = "$2" ]; }
has_svc() { grep -q " $svc/" <<<"$(ip -n "$LF_TESTBED_PREFIX-$1" -4 addr show dev eth0 2>/dev/null)"; }
nfs_answers() { tb_exec "$1" timeout 5 rpcinfo -T tcp 127.0.0.1 100021 4 >/dev/null 2>&1; }
runs_in() {   # NODE COMM: a process named COMM runs in NODE's network namespace
  local p
  for p in $(ip netns pids "$LF_TESTBED_PREFIX-$1" 2>/dev/null); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && return 0
  done
  return 1
}
only_on() { has_svc "$1" && ! has_svc "$2"; }   # NODE OTHER: the service IP is on NODE only
not_in_grace() { ! tb nfs "$1" grace; }
notify_log() { echo "$state/nodes/$1/log/lockferry-notify.log"; }
migrations_of() { "$lf_bin" --store "$store_url" --json migrations | jq --arg n "$1" '[.[] | select(.from_node == $n)] | length'; }

write_lockferryd_conf() {   # NODE
  local node=$1 conf=$state/nodes/$1/lockferryd.toml
  cat >"$conf" <<EOF
node = "$node"
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
recognize_timeout_s = 30
EOF
}

# The configuration docs/integration.md shows, with the testbed's paths: the same on both nodes
# but priority, the peer named in --from, and the grace period the testbed's NFS start uses.
write_keepalived_conf() {   # NODE PEER PRIORITY GRACE
  local node=$1 peer=$2 prio=$3 grace=$4 nd=$state/nodes/$1 preempt=nopreempt
  [ "${E2E_KA_PREEMPT:-0}" = 1 ] && preempt="# nopreempt dropped (E2E_KA_PREEMPT=1)"
  # keepalived drops a notify script's output; keep lockferry-notify's for the checks below.
  cat >"$nd/notify-logged" <<EOF
#!/bin/sh
exec "\$@" >>"$(notify_log "$node")" 2>&1
EOF
  chmod 755 "$nd/notify-logged"
  # The per-state notify: lockferryd and the NFS server run on the MASTER only. Entering MASTER:
  # lockferryd first (it must see statd's records and Ganesha's locks from the start), then NFS.
  # Leaving it: lockferryd stops first, so the store keeps this node's records and lock table as
  # they were while it served (a lockferryd outliving its NFS server stores the released locks
  # before the peer fences this node), then the NFS server is killed.
  cat >"$nd/server-notify" <<EOF
#!/bin/sh
state=\$1
lfd_pid() { p=\$(cat /run/lockferry/lockferryd.pid 2>/dev/null) && [ "\$(cat /proc/\$p/comm 2>/dev/null)" = lockferryd ] && echo "\$p"; }
case "\$state" in
MASTER)
  if [ -z "\$(lfd_pid)" ]; then
    setsid $lfd_bin --config $nd/lockferryd.toml </dev/null >>$nd/log/lockferryd.log 2>&1 &
    echo \$! >/run/lockferry/lockferryd.pid
    i=0
    until $lf_bin --socket /run/lockferry/lockferryd.sock status >/dev/null 2>&1 || [ \$i -ge 150 ]; do sleep 0.2; i=\$((i + 1)); done
  fi ;;
BACKUP | FAULT | STOP)
  if p=\$(lfd_pid); then
    kill -TERM "\$p"
    i=0
    while [ -e /proc/\$p ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
  fi ;;
esac
exec /usr/bin/env LF_TESTBED_PREFIX=$LF_TESTBED_PREFIX LF_TESTBED_GRACE=$grace $E2E_CLUSTER/keepalived --state-dir $state notify-nfs INSTANCE VI_NFS "\$state"
EOF
  chmod 755 "$nd/server-notify"
  local nfs_notify="$nd/server-notify"
  cat >"$nd/keepalived.conf" <<EOF
global_defs {
    router_id $node
    enable_script_security
    script_user root
}

vrrp_instance VI_NFS {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority $prio
    advert_int 1
    $preempt
    virtual_ipaddress {
        $svc/24 dev eth0
    }
    # lockferryd + the NFS server: started on MASTER (NFS in grace), stopped when leaving it.
    notify_master "$nfs_notify MASTER"
    notify_backup "$nfs_notify BACKUP"
    notify_fault "$nfs_notify FAULT"
    notify_stop "$nfs_notify STOP"
    # lockferry: on MASTER, wait for NFS on the service IP, then adopt the peer.
    notify "$nd/notify-logged /usr/bin/env LOCKFERRY_BIN=$lf_bin LOCKFERRYD_BIN=$lfd_bin LOCKFERRY_NOTIFY_SYSLOG=0 $E2E_REPO/scripts/keepalived/lockferry-notify --from $peer --service-ip $svc --store $store_url --config $nd/lockferryd.toml"
}
EOF
}

# ---------------------------------------------------------------------------------------------
e2e_step "bring up the cluster without a service: nodeA, nodeB (no service IP, no NFS), $clients clients"
tb down >/dev/null 2>&1
tb up --no-service --clients "$clients"
for ((k = 1; k <= clients; k++)); do : >"$export_dir/file$k.dat"; done
: >"$export_dir/shared.dat"
nowhere() { ! has_svc nodeA && ! has_svc nodeB; }
e2e_check "the testbed put the service IP nowhere (up --no-service)" nowhere

write_lockferryd_conf nodeA
write_lockferryd_conf nodeB

e2e_step "keepalived on nodeA (priority 150), then nodeB (priority 100); both 'state BACKUP' + nopreempt"
write_keepalived_conf nodeA nodeB 150 5
write_keepalived_conf nodeB nodeA 100 "$grace_b"
sed 's/^/    /' "$state/nodes/nodeB/keepalived.conf"
tb keepalived start nodeA "$state/nodes/nodeA/keepalived.conf"
wait_until 20 ka_is nodeA MASTER && e2e_ok "nodeA is MASTER" || e2e_fatal "nodeA did not become MASTER: $(tail -n 5 "$state/nodes/nodeA/log/keepalived.log")"
wait_until 30 nfs_answers nodeA && e2e_ok "the MASTER notify started NFS on nodeA" || e2e_fatal "no NFS on nodeA"
e2e_check "... after lockferryd" grep -q "capture attached" "$state/nodes/nodeA/log/lockferryd.log"
wait_until 15 grep -q "nodeB" "$(notify_log nodeA)" || true
sed 's/^/    nodeA lockferry-notify: /' "$(notify_log nodeA)" | cut -c1-240
e2e_check "nodeA's MASTER notify did not adopt nodeB (the store knows nothing of it yet)" test "$(migrations_of nodeB)" -eq 0
tb keepalived start nodeB "$state/nodes/nodeB/keepalived.conf"
wait_until 20 ka_is nodeB BACKUP && e2e_ok "nodeB is BACKUP" || e2e_bad "nodeB is $(ka_state nodeB), not BACKUP"
e2e_check "the service IP is on nodeA only" only_on nodeA nodeB
e2e_check "no NFS server and no lockferryd on nodeB" test -z "$(runs_in nodeB ganesha.nfsd && echo yes)$(runs_in nodeB lockferryd && echo yes)"

e2e_step "wait for nodeA's boot grace period to end"
wait_until 30 not_in_grace nodeA || e2e_fatal "nodeA stayed in grace"

e2e_clients_hold_locks
mine() { jq --arg e "$export_dir/" '[.[] | select(.path | startswith($e))] | length'; }
locks_ok() { [ "$("$lf_bin" --store "$store_url" --json locks --node nodeA 2>/dev/null | mine)" -eq $((clients * 2)) ]; }
wait_until 15 locks_ok && e2e_ok "nodeA's lock table holds the $((clients * 2)) locks" || e2e_bad "nodeA's lock table is incomplete"

all_reclaimed() {
  local k
  for ((k = 1; k <= clients; k++)); do [ "$(count_status "$state/client$k.json" reclaimed)" -eq 2 ] || return 1; done
}

# ---------------------------------------------------------------------------------------------
case "$scenario" in
kill)
  e2e_step "CRASH nodeA: SIGKILL keepalived, ganesha.nfsd, rpc.statd and lockferryd"
  t_fail=$(now_ms)
  tb keepalived kill nodeA
  tb nfs nodeA kill
  for p in $(ip netns pids "$LF_TESTBED_PREFIX-nodeA"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = lockferryd ] && kill -KILL "$p"
  done
  # A SIGKILLed keepalived leaves its virtual address on eth0; a crashed machine does not answer.
  ip -n "$LF_TESTBED_PREFIX-nodeA" addr del "$svc/24" dev eth0 2>/dev/null || true
  ;;
partition)
  e2e_step "PARTITION nodeA: its link goes down; nodeA and its keepalived keep running"
  t_fail=$(now_ms)
  ip -n "$LF_TESTBED_PREFIX-nodeA" link set eth0 down
  wait_until 10 ka_is nodeA FAULT && e2e_ok "nodeA's keepalived went FAULT" || e2e_bad "nodeA is $(ka_state nodeA), not FAULT"
  stopped_a() { ! runs_in nodeA ganesha.nfsd && ! runs_in nodeA lockferryd; }
  wait_until 20 stopped_a && e2e_ok "nodeA's FAULT notify stopped lockferryd, then killed its NFS server" ||
    e2e_bad "Ganesha or lockferryd still runs on nodeA"
  ;;
esac

e2e_step "nodeB becomes MASTER, starts NFS in grace, lockferry-notify adopts nodeA; clients reclaim"
wait_until 20 ka_is nodeB MASTER && e2e_ok "nodeB is MASTER after $(secs $(($(now_ms) - t_fail)))" || e2e_bad "nodeB is $(ka_state nodeB), not MASTER"
if wait_until 60 all_reclaimed; then
  t_done=$(now_ms)
  e2e_ok "every client reclaimed both locks on nodeB"
else
  t_done=$(now_ms)
  e2e_bad "not every client reclaimed within 60 s"
fi
adopted() { grep -q "adopted node nodeA\|lockferry migrate --from nodeA failed" "$(notify_log nodeB)"; }
wait_until 40 adopted || true
sed 's/^/    nodeB lockferry-notify: /' "$(notify_log nodeB)" | cut -c1-240
sed 's/^/    nodeB keepalived states: /' "$state/nodes/nodeB/log/keepalived-states.log"
e2e_check "nodeB's lockferry-notify adopted nodeA" grep -q "adopted node nodeA" "$(notify_log nodeB)"
migrations=$("$lf_bin" --store "$store_url" --json migrations)
e2e_check "exactly one migration of nodeA, by nodeB, at epoch 1, result ok" \
  test "$(jq '[.[] | select(.from_node == "nodeA" and .to_node == "nodeB" and .epoch == 1 and .result == "ok")] | length' <<<"$migrations")" -eq 1
for ((k = 1; k <= clients; k++)); do
  e2e_check "client$k notified from $svc" jq -e --arg s "$svc" 'any(.notifications[]; .mon_name == $s)' "$state/client$k.json"
done
printf '\n\033[1mMEASURED: %s -> last reclaim: %s (keepalived advert_int 1 s, polled every 100 ms)\033[0m\n' \
  "$scenario" "$(secs $((t_done - t_fail)))"

e2e_step "the reclaim audit on nodeB"
audit_full() {
  lf_on nodeB --json audit --from nodeA >"$state/audit.json" 2>/dev/null &&
    jq -e --arg e "$export_dir/" '[.locks[] | select(.path | startswith($e))] | length == '$((clients * 2))' and all(.status == "reclaimed")' "$state/audit.json" >/dev/null
}
# nodeB's lockferryd stores the reclaimed locks within moments of the last reclaim.
e2e_check "the audit reports 100 % reclaimed ($((clients * 2)) of $((clients * 2)) locks of the export)" wait_until 10 audit_full
lf_on nodeB audit --from nodeA | sed 's/^/    /' || true

e2e_step "the locks survived: after nodeB's grace period, other clients' conflicting locks are denied"
denied_all() {
  local k o denied=0
  for ((k = 1; k <= clients; k++)); do
    o=$((k % clients + 1))
    nlm "$o" lock "file$k.dat:0:4096:exclusive" >/dev/null 2>&1 || denied=$((denied + 1))
  done
  [ "$denied" -eq "$clients" ]
}
wait_until $((grace_b + 20)) not_in_grace nodeB || e2e_bad "nodeB never left grace"
e2e_check "$clients/$clients conflicting locks denied" denied_all

# ---------------------------------------------------------------------------------------------
states_before=$(wc -l <"$state/nodes/nodeA/log/keepalived-states.log")
notify_before=$(wc -l <"$(notify_log nodeA)")
case "$scenario" in
kill)
  e2e_step "nodeA comes back: keepalived starts again (NFS is keepalived's to start)"
  tb keepalived start nodeA "$state/nodes/nodeA/keepalived.conf"
  ;;
partition)
  e2e_step "the partition heals: nodeA's link comes up"
  ip -n "$LF_TESTBED_PREFIX-nodeA" link set eth0 up
  ;;
esac
wait_until 20 ka_is nodeA BACKUP && e2e_ok "nodeA is BACKUP" || e2e_bad "nodeA is $(ka_state nodeA), not BACKUP"
# Several advert intervals: a preempting nodeA (priority 150 > 100) would have taken over by now.
sleep 6
sed 's/^/    nodeA keepalived states: /' "$state/nodes/nodeA/log/keepalived-states.log"
never_master_since_back() {
  ka_is nodeA BACKUP && ! grep -q ' MASTER ' <<<"$(tail -n +$((states_before + 1)) "$state/nodes/nodeA/log/keepalived-states.log")"
}
e2e_check "nodeA did not preempt: BACKUP, and never MASTER since it came back" never_master_since_back
e2e_check "nodeB is still MASTER" ka_is nodeB MASTER
e2e_check "the service IP is on nodeB only" only_on nodeB nodeA
e2e_check "no NFS server and no lockferryd on nodeA" test -z "$(runs_in nodeA ganesha.nfsd && echo yes)$(runs_in nodeA lockferryd && echo yes)"
e2e_check "nobody adopted nodeB; still exactly one migration of nodeA" \
  test "$(migrations_of nodeB)" -eq 0 -a "$(migrations_of nodeA)" -eq 1
notify_since_back=$(tail -n +$((notify_before + 1)) "$(notify_log nodeA)")
sed 's/^/    nodeA lockferry-notify: /' <<<"$notify_since_back" | cut -c1-200
e2e_check "nodeA's lockferry-notify ran no migration since it came back (BACKUP: nothing to do)" \
  test -z "$(grep 'adopting node' <<<"$notify_since_back")"
e2e_check "the clients keep their locks: $clients/$clients conflicting locks still denied" denied_all
e2e_check "the audit on nodeB still reports 100 %" audit_full

e2e_finish "$name"
