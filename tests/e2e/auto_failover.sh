#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Automatic failover on the namespace NFS cluster: lockferryd runs on nodeA and nodeB with
# heartbeats, health checks and automatic adoption, and nobody calls `lockferry migrate`.
#
#   --scenario kill       nodeA crashes (Ganesha, statd and lockferryd SIGKILLed): nodeB declares
#                         it dead after dead_after_ms of silence, fences it, takes the service
#                         (scripts/cluster/takeover), replays, notifies every client (the
#                         built-in notifier); every client acknowledges and reclaims. Prints the
#                         time from the kill to the last reclaim.
#   --scenario partition  nodeA is cut off the network (its link goes down) but keeps running:
#                         nodeB adopts it; then nodeA's lockferryd tries to write (statd on nodeA
#                         adds and removes monitor records) and the store refuses every write; when
#                         the partition heals nodeA says it is fenced and is not adopted again.
#   --scenario audit      one client is stopped before nodeA crashes, so it never reclaims; nodeB
#                         adopts; `lockferry audit --from nodeA` names exactly the stopped client's
#                         locks as not reclaimed and every other lock as reclaimed, and nodeB logs
#                         the audit summary when its grace period ends.
#
# --recognize sm-notify: nodeB's lockferryd runs nfs-utils' sm-notify (in the node's mount namespace)
# instead of the built-in notifier (recognize = "notify", the default).
# --server knfsd: the kernel's nfsd + lockd instead of NFS-Ganesha (a kernel with them: the 6.1
# guest, tests/vm); the crash then stops nodeA's knfsd (its lockd drops nodeA's locks) and SIGKILLs
# its statd and mountd.
#
# lockferryd runs in each server node's network namespace (heartbeats from the node's IP,
# SM_NOTIFY from the service IP) but in the host's mount namespace, so that its takeover command
# can drive the testbed; its paths are the host-side paths of the node's directories. Env: E2E_KEEP=1,
# LOCKFERRY_BUILD_DIR, LF_TESTBED_GRACE (nodeB's grace period, default 15 s).
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib.sh"

scenario=kill
server=${LF_TESTBED_SERVER:-ganesha}
recognize=${LF_RECOGNIZE:-notify}
build=${LOCKFERRY_BUILD_DIR:-$E2E_REPO/build}
while [ $# -gt 0 ]; do
  case "$1" in
    --scenario) scenario=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --server) server=$2; shift 2 ;;
    --recognize) recognize=$2; shift 2 ;;
    *) e2e_fatal "unknown argument '$1' (--scenario kill|partition|audit, --server ganesha|knfsd, --recognize notify|sm-notify, --build-dir DIR)" ;;
  esac
done
case "$scenario" in kill | partition | audit) ;; *) e2e_fatal "--scenario must be kill, partition or audit" ;; esac
case "$server" in ganesha | knfsd) ;; *) e2e_fatal "--server must be ganesha or knfsd" ;; esac
case "$recognize" in notify | sm-notify) ;; *) e2e_fatal "--recognize must be notify or sm-notify" ;; esac
e2e_require_root
command -v jq >/dev/null || e2e_fatal "jq is missing: run scripts/install-deps"
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
grace_b=${LF_TESTBED_GRACE:-15}
clients=3
[ "$scenario" = partition ] && clients=2
# knfsd runs in the emulated 6.1 guest, where a busy machine can stretch one health check's RPC
# past its 3 s timeout: there a node leaves only after 3 failed checks in a row.
check_failures=1
[ "$server" = knfsd ] && check_failures=3
name="e2e_automatic_failover ($scenario$([ "$server" = ganesha ] || echo ", $server")$([ "$recognize" = notify ] || echo ", $recognize"))"
e2e_trap_cleanup

peer_state() {   # NODE PEER -> state as NODE sees it
  lf_on "$1" --json health 2>/dev/null | jq -r --arg p "$2" '.peers[] | select(.node == $p) | .state'
}
peer_is() { [ "$(peer_state "$1" "$2")" = "$3" ]; }

# ---------------------------------------------------------------------------------------------
e2e_step "bring up the cluster: nodeA (active, $svc), nodeB (standby), $clients clients"
tb down >/dev/null 2>&1
LF_TESTBED_GRACE=5 tb up --clients "$clients" --server "$server"
for ((k = 1; k <= clients; k++)); do : >"$export_dir/file$k.dat"; done
: >"$export_dir/shared.dat"

e2e_step "start lockferryd on nodeA and nodeB: heartbeats every 500 ms, dead after 3000 ms, automatic adoption"
key=$state/heartbeat.key
head -c 32 /dev/urandom | base64 >"$key"
chmod 600 "$key"
declare -A lfd_pid
for node in nodeA nodeB; do
  conf=$state/nodes/$node/lockferryd-auto.toml
  nd=$state/nodes/$node
  # The built-in notifier runs inside lockferryd (host paths of the node's statd directory);
  # sm-notify needs the node's /etc/hosts and /var/lib/nfs: run it in the node's mount namespace.
  recognition='recognize = "notify"'
  [ "$recognize" = sm-notify ] && recognition="recognize = \"sm-notify\"
recognize_command = [\"nsenter\", \"--mount=$state/ns/$node.mnt\", \"--uts=$state/ns/$node.uts\", \"--\",
                     \"sm-notify\", \"-f\", \"-d\", \"-m\", \"1\", \"-P\", \"/var/lib/nfs\", \"-v\", \"{service_ip}\"]"
  cat >"$conf" <<EOF
node = "$node"
store = "$store_url"
[capture]
monitor_dirs = ["$nd/nfs/sm"]
pin_dir = ""
[control]
socket = "$nd/run/lockferry/lockferryd.sock"
[failover]
statmon_dir = "$nd/nfs/sm"
service_ip = "$svc"
$recognition
recognize_timeout_s = 20
automatic = true
adopt_order = ["nodeB", "nodeA"]
takeover_command = ["env", "LF_TESTBED_PREFIX=$LF_TESTBED_PREFIX", "LF_TESTBED_GRACE=$grace_b",
                    "$E2E_CLUSTER/takeover", "--state-dir", "$state", "{from}", "{node}"]
takeover_timeout_s = 60
audit_after_s = $((grace_b + 3))
[health]
listen = "$([ "$node" = nodeA ] && echo 203.0.113.11 || echo 203.0.113.12):7789"
key_file = "$key"
check_command = ["$E2E_CLUSTER/health-check", "$svc"]
check_failures = $check_failures
[health.peers]
nodeA = "203.0.113.11:7789"
nodeB = "203.0.113.12:7789"
EOF
  log=$nd/log/lockferryd-auto.log
  setsid nsenter --net="/run/netns/$LF_TESTBED_PREFIX-$node" "$lfd_bin" --config "$conf" >"$log" 2>&1 &
  lfd_pid[$node]=$!
done
for node in nodeA nodeB; do
  wait_until 30 grep -q "capture attached" "$state/nodes/$node/log/lockferryd-auto.log" ||
    { tail -n 20 "$state/nodes/$node/log/lockferryd-auto.log"; e2e_fatal "lockferryd on $node did not start"; }
done
wait_until 20 peer_is nodeB nodeA alive && wait_until 20 peer_is nodeA nodeB alive ||
  e2e_fatal "the nodes do not see each other: $(lf_on nodeB health 2>&1 | tail -n 8)"
e2e_ok "nodeB sees nodeA alive and serving; nodeA sees nodeB alive (standby)"
lf_on nodeB health | sed 's/^/    /'

e2e_step "wait for nodeA's boot grace period to end"
not_in_grace() { ! tb nfs "$1" grace; }
wait_until 30 not_in_grace nodeA || e2e_fatal "nodeA stayed in grace"

e2e_clients_hold_locks

all_reclaimed() {
  local k
  for k in "$@"; do [ "$(count_status "$state/client$k.json" reclaimed)" -eq 2 ] || return 1; done
}
clients_list() { seq 1 "$clients"; }

# The reclaim audit on nodeB: every lock of the export reclaimed, and per client (notification
# from sm.bak/, which sm-notify and the built-in notifier keep alike) acknowledged, both reclaimed.
audit_every_client() {
  local k
  e2e_step "the reclaim audit on nodeB"
  lf_on nodeB audit --from nodeA | sed 's/^/    /' || true
  lf_on nodeB --json audit --from nodeA >"$state/audit.json"
  e2e_check "the audit reports 100 % reclaimed ($((clients * 2)) of $((clients * 2)) locks of the export)" \
    jq -e --arg e "$export_dir/" '[.locks[] | select(.path | startswith($e))] | length == '$((clients * 2))' and all(.status == "reclaimed")' "$state/audit.json"
  for ((k = 1; k <= clients; k++)); do
    e2e_check "per client: client$k acknowledged SM_NOTIFY and reclaimed both locks" \
      jq -e --arg c "$(client_ip "$k")" '.client_report.clients | any(.client == $c and .notify == "acknowledged"
        and .locks_held_before == 2 and .reclaimed == 2 and .outcome == "reclaimed")' "$state/audit.json"
  done
}

# ---------------------------------------------------------------------------------------------
case "$scenario" in
kill)
  e2e_step "CRASH nodeA: $([ "$server" = knfsd ] && echo "knfsd stopped, rpc.statd, rpc.mountd" || echo "SIGKILL ganesha.nfsd, rpc.statd") and lockferryd SIGKILLed; nobody runs migrate"
  pid=${lfd_pid[nodeA]}
  [ "$pid" -gt 0 ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = lockferryd ] && kill -KILL "$pid"
  t_kill=$(now_ms)
  tb nfs nodeA kill
  # shellcheck disable=SC2046
  if wait_until 60 all_reclaimed $(clients_list); then
    t_done=$(now_ms)
    e2e_ok "every client reclaimed both locks on nodeB"
  else
    t_done=$(now_ms)
    e2e_bad "not every client reclaimed within 60 s"
  fi
  ;;
partition)
  e2e_step "PARTITION nodeA: its link goes down; Ganesha, statd and lockferryd keep running"
  before_records=$state/records-before.json
  "$lf_bin" --store "$store_url" --json records --node nodeA >"$before_records"
  t_kill=$(now_ms)
  ip -n "$LF_TESTBED_PREFIX-nodeA" link set eth0 down
  # shellcheck disable=SC2046
  wait_until 60 all_reclaimed $(clients_list) && e2e_ok "every client reclaimed both locks on nodeB" ||
    e2e_bad "not every client reclaimed within 60 s"
  t_done=$(now_ms)
  ;;
audit)
  e2e_step "client2 stops for good (it will never reclaim); then nodeA crashes"
  locks_a=$state/locks-nodeA.json
  locks_ok() {
    "$lf_bin" --store "$store_url" --json locks --node nodeA >"$locks_a" 2>/dev/null &&
      [ "$(jq length "$locks_a")" -ge $((clients * 2)) ]
  }
  wait_until 15 locks_ok && e2e_ok "nodeA's lock table holds the $((clients * 2)) locks (and any other test's on this machine)" ||
    e2e_bad "nodeA's lock table is incomplete: $(jq -c . "$locks_a" 2>/dev/null | head -c 300)"
  for ((k = 1; k <= clients; k++)); do
    e2e_check "nodeA's lock table names client$k ($(client_ip "$k")) on both its locks" \
      test "$(jq --arg c "$(client_ip "$k")" '[.[] | select(.nlm_host == $c)] | length' "$locks_a")" -eq 2
  done
  pid=${client_pid[2]}
  [ "$pid" -gt 0 ] && kill -TERM "$pid"
  # The whole node: a lockferryd that outlived its lock manager would see the kernel release every
  # lock and store the emptied table before it is fenced (see the report on issue 5).
  pid=${lfd_pid[nodeA]}
  [ "$pid" -gt 0 ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = lockferryd ] && kill -KILL "$pid"
  t_kill=$(now_ms)
  tb nfs nodeA kill
  wait_until 60 all_reclaimed 1 3 && e2e_ok "client1 and client3 reclaimed both locks on nodeB" ||
    e2e_bad "client1/client3 did not reclaim within 60 s"
  t_done=$(now_ms)
  ;;
esac

e2e_step "what nodeB did (its log)"
# sm-notify retries a client that does not answer (the stopped one in the audit scenario) until
# recognize_timeout_s: the adoption is reported once it gave up.
adopted_logged() { grep -q "failover: adopted nodeA\|failover: adopting nodeA failed" "$state/nodes/nodeB/log/lockferryd-auto.log"; }
wait_until 40 adopted_logged || true
grep -E "health: node nodeA|failover: |migrate: |notify: |recognize: |takeover" "$state/nodes/nodeB/log/lockferryd-auto.log" |
  cut -c1-220 | sed 's/^/    /' || true
e2e_check "nodeB adopted nodeA automatically" grep -q "failover: adopted nodeA" "$state/nodes/nodeB/log/lockferryd-auto.log"
migrations=$("$lf_bin" --store "$store_url" --json migrations)
e2e_check "exactly one migration of nodeA, by nodeB, at epoch 1" \
  test "$(jq '[.[] | select(.from_node == "nodeA" and .to_node == "nodeB" and .epoch == 1)] | length' <<<"$migrations")" -eq 1
if [ "$scenario" = audit ]; then
  e2e_check "the migration reports the client that never acknowledged SM_NOTIFY: $(jq -r '.[0].result' <<<"$migrations" | head -c 160)" \
    grep -q "did not acknowledge\|timed out" <<<"$(jq -r '.[0].result' <<<"$migrations")"
else
  e2e_check "the migration finished ok" test "$(jq -r '.[0].result' <<<"$migrations")" = ok
fi
for ((k = 1; k <= clients; k++)); do
  [ "$scenario" = audit ] && [ "$k" -eq 2 ] && continue
  e2e_check "client$k notified from $svc" jq -e --arg s "$svc" 'any(.notifications[]; .mon_name == $s)' "$state/client$k.json"
done

e2e_step "what nodeB's lockferryd reports of its adoption (lockferry health): recognition ($recognize) per client"
lf_on nodeB --json health >"$state/health.json"
jq -r '.adoptions[0] | (.recognize.clients[]? | "    notifier: \(.client) \(.status) statd port \(.statd_port), \(.attempts) attempt(s) \(.error)"),
  (.client_report.clients[] | "    client report: \(.client) monitored=\(.monitored) notify=\(.notify) at \(.notify_at)")' \
  "$state/health.json" 2>/dev/null || true
e2e_check "the adoption recognised with $recognize" jq -e --arg m "$recognize" '.adoptions[0].recognize.method == $m' "$state/health.json"
for ((k = 1; k <= clients; k++)); do
  c=$(client_ip "$k")
  if [ "$scenario" = audit ] && [ "$k" -eq 2 ]; then
    # Stopped: its statd never answers. sm-notify leaves it pending in sm.bak/; the built-in
    # notifier says how far it got (its rpcbind answered or not).
    e2e_check "the adoption's per-client report: client$k ($c) did not acknowledge" \
      jq -e --arg c "$c" '.adoptions[0].client_report.clients | any(.client == $c and .monitored and .notify != "acknowledged")' "$state/health.json"
    continue
  fi
  e2e_check "the adoption's per-client report: client$k ($c) monitored and acknowledged SM_NOTIFY" \
    jq -e --arg c "$c" '.adoptions[0].client_report.clients | any(.client == $c and .monitored and .notify == "acknowledged")' "$state/health.json"
  if [ "$recognize" = notify ]; then
    e2e_check "the built-in notifier in nodeB's lockferryd: client$k acknowledged at $c (statd port from its rpcbind)" \
      jq -e --arg c "$c" 'any(.adoptions[0].recognize.clients[]; .address == $c and .status == "acknowledged" and .statd_port > 0)' "$state/health.json"
  fi
done
if [ "$recognize" = notify ]; then
  e2e_check "nodeB's log shows the notification's progress" \
    grep -q "notify: [0-9]* of $clients client(s) acknowledged after" "$state/nodes/nodeB/log/lockferryd-auto.log"
  e2e_check "the built-in notifier sent NSM state $(jq '.adoptions[0].recognize.nsm_state' "$state/health.json") (odd, as statd keeps it), and the clients got that state" \
    bash -c "s=\$(jq '.adoptions[0].recognize.nsm_state' '$state/health.json') && [ \$((s % 2)) -eq 1 ] && jq -e --argjson s \$s 'any(.notifications[]; .state == \$s)' '$state/client1.json' >/dev/null"
fi
ms=$((t_done - t_kill))
detected=$(sed -n 's/.*health: node nodeA is DOWN: \(.*\)/\1/p' "$state/nodes/nodeB/log/lockferryd-auto.log" | head -n 1)
adopted=$(sed -n 's/.*failover: adopted nodeA at epoch [0-9]* in \([0-9]*\) ms.*/\1/p' "$state/nodes/nodeB/log/lockferryd-auto.log" | head -n 1)
e2e_say "nodeA down: $detected"
e2e_say "adoption (fence, takeover, replay, sm-notify) took ${adopted:-?} ms after detection"
printf '\n\033[1mMEASURED: %s -> last reclaim: %s (polled every 100 ms)\033[0m\n' \
  "$([ "$scenario" = partition ] && echo "partition" || echo "kill")" "$(secs "$ms")"

case "$scenario" in
kill)
  e2e_step "the locks survived: after nodeB's grace period, other clients' conflicting locks are denied"
  wait_until $((grace_b + 20)) not_in_grace nodeB || e2e_bad "nodeB never left grace"
  denied=0
  for ((k = 1; k <= clients; k++)); do
    o=$((k % clients + 1))
    nlm "$o" lock "file$k.dat:0:4096:exclusive" >/dev/null 2>&1 || denied=$((denied + 1))
  done
  e2e_check "$denied/$clients conflicting locks denied" test "$denied" -eq "$clients"
  audit_every_client
  ;;
partition)
  e2e_step "nodeA, still partitioned, keeps running: its statd adds and removes monitor records"
  sm_a=$state/nodes/nodeA/nfs/sm
  first=$(find "$sm_a" -maxdepth 1 -type f ! -name '.*' | sort | head -n 1)
  sed 's/203\.0\.113\.101/203.0.113.199/g' "$first" >"$sm_a/.203.0.113.199.new"
  chown statd "$sm_a/.203.0.113.199.new"
  chmod 600 "$sm_a/.203.0.113.199.new"
  mv "$sm_a/.203.0.113.199.new" "$sm_a/203.0.113.199"
  rm -f "$sm_a/$(basename "$first")"
  e2e_say "added $sm_a/203.0.113.199, removed $first"
  wait_until 10 grep -q "was adopted by another node" "$state/nodes/nodeA/log/lockferryd-auto.log" || true
  grep -E "adopted by another node|refused" "$state/nodes/nodeA/log/lockferryd-auto.log" | head -n 3 | cut -c1-240 | sed 's/^/    /' || true
  e2e_check "nodeA's lockferryd logs loudly that it was adopted and stops writing" \
    grep -q "was adopted by another node" "$state/nodes/nodeA/log/lockferryd-auto.log"
  e2e_check "nodeA's lockferryd reports itself fenced" \
    bash -c "'$lf_bin' --socket '$state/nodes/nodeA/run/lockferry/lockferryd.sock' --json status | jq -e '.fenced == true'"
  "$lf_bin" --store "$store_url" --json records --node nodeA >"$state/records-after.json"
  e2e_check "the store refused nodeA's writes: nodeA's records are exactly those nodeB adopted" \
    test "$(jq -c '[.[] | .file_name] | sort' "$before_records")" = "$(jq -c '[.[] | .file_name] | sort' "$state/records-after.json")"
  e2e_check "nodeA's epoch in the store is 1 (fenced by nodeB)" \
    bash -c "'$lf_bin' --store '$store_url' --json nodes | jq -e '.[] | select(.node == \"nodeA\") | .epoch == 1'"

  e2e_step "the partition heals: nodeA heartbeats again, says it is fenced, and is not adopted again"
  ip -n "$LF_TESTBED_PREFIX-nodeA" link set eth0 up
  fenced_seen() { lf_on nodeB --json health | jq -e '.peers[] | select(.node == "nodeA") | .state == "alive" and .fenced' >/dev/null; }
  e2e_check "nodeB sees nodeA alive again, fenced" wait_until 15 fenced_seen
  sleep 1
  e2e_check "still exactly one migration of nodeA" \
    test "$("$lf_bin" --store "$store_url" --json migrations | jq '[.[] | select(.from_node == "nodeA")] | length')" -eq 1
  audit_every_client
  ;;
audit)
  e2e_step "lockferry audit --from nodeA on nodeB"
  # Only this testbed's export: lock capture finds lock managers by process name, so on a shared
  # machine it also sees other tests' Ganesha servers (one pid namespace for all).
  mine() { jq --arg e "$export_dir/" '[.locks[] | select(.path | startswith($e))]' "$state/audit.json"; }
  audit_ok() {
    lf_on nodeB --json audit --from nodeA >"$state/audit.json" 2>"$state/audit.err" &&
      [ "$(mine | jq '[.[] | select(.status == "reclaimed")] | length')" -ge 4 ]
  }
  wait_until 20 audit_ok || e2e_bad "audit did not see 4 reclaimed locks: $(cat "$state/audit.err" "$state/audit.json" 2>/dev/null | head -c 400)"
  lf_on nodeB audit --from nodeA | sed 's/^/    /'
  e2e_check "4 locks reclaimed" test "$(mine | jq '[.[] | select(.status == "reclaimed")] | length')" -eq 4
  e2e_check "2 locks not reclaimed" test "$(mine | jq '[.[] | select(.status == "not_reclaimed")] | length')" -eq 2
  not_reclaimed=$(mine | jq -c '[.[] | select(.status == "not_reclaimed") | "\(.path | split("/") | last):\(.start)-\(.end)"] | sort')
  e2e_check "the locks not reclaimed are exactly client2's (file2.dat:0-4095, shared.dat:2000-2999): $not_reclaimed" \
    test "$not_reclaimed" = '["file2.dat:0-4095","shared.dat:2000-2999"]'
  mine_report() { jq -c --arg a "$(client_ip 1)" --arg b "$(client_ip 2)" --arg c "$(client_ip 3)" \
    '[.client_report.clients[] | select(.client == $a or .client == $b or .client == $c)
      | "\(.client) \(.notify) \(.locks_held_before) \(.reclaimed) \(.not_reclaimed) \(.outcome)"]' "$state/audit.json"; }
  e2e_say "per client: $(mine_report)"
  e2e_check "the per-client report names client2 as not notified (pending in sm.bak/) and not reclaimed, the others as acknowledged and reclaimed" \
    test "$(mine_report)" = "[\"$(client_ip 1) acknowledged 2 2 0 reclaimed\",\"$(client_ip 2) pending 2 0 2 not_reclaimed\",\"$(client_ip 3) acknowledged 2 2 0 reclaimed\"]"
  # The final audit comes audit_after_s (grace + 3 s) after the adoption finished.
  wait_until 40 grep -q "reclaim audit of nodeA at the end of grace" "$state/nodes/nodeB/log/lockferryd-auto.log" || true
  grep "reclaim audit of nodeA at the end" "$state/nodes/nodeB/log/lockferryd-auto.log" | cut -c1-300 | sed 's/^/    /' || true
  summary=$(grep "reclaim audit of nodeA at the end of grace" "$state/nodes/nodeB/log/lockferryd-auto.log" || true)
  e2e_check "nodeB logged the audit summary when grace ended, naming client2's locks" \
    bash -c "grep -q 'file2.dat 0-4095 not_reclaimed' <<<'$summary' && grep -q 'shared.dat 2000-2999 not_reclaimed' <<<'$summary'"
  e2e_check "nodeB logged client2 by name when grace ended" \
    grep -q "failover: client $(client_ip 2) of nodeA: 0 of 2 locks reclaimed (not_reclaimed), notification pending" "$state/nodes/nodeB/log/lockferryd-auto.log"
  e2e_check "lockferry health shows the audit counts" \
    bash -c "'$lf_bin' --socket '$state/nodes/nodeB/run/lockferry/lockferryd.sock' --json health | jq -e '.adoptions[0].audit.not_reclaimed >= 2 and .adoptions[0].audit.reclaimed >= 4'"
  ;;
esac

e2e_finish "$name"
