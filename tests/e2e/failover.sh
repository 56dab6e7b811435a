#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The failover scenario lockferry exists for, on the namespace NFS cluster: clients lock files
# through the service IP on nodeA, nodeA crashes, the service IP and NFS move to nodeB, and
#   --replay lockferry  lockferryd captured nodeA's monitor records; `lockferry migrate` replays
#                       them on nodeB and runs sm-notify: every client reclaims, every lock is
#                       still held afterwards (a conflicting lock is denied);
#   --replay manual     the same recovery done by hand (copy nodeA's sm/, run sm-notify), to
#                       prove the testbed independently of lockferry;
#   --replay none       what happens today: nobody is notified, the locks are lost, another
#                       client's conflicting lock is granted.
# --server knfsd runs the kernel's nfsd + lockd instead of NFS-Ganesha (a kernel with them: the
# 6.1 guest, tests/vm); with --replay lockferry, lockferryd then also captures lockd's locks on
# both nodes (nodeB's must not record nodeA's: one lockd thread serves both network namespaces),
# and the reclaim audit names every client's locks.
# --store postgresql keeps lockferry's store in a PostgreSQL server (scripts/cluster/pg) whose
# Unix socket in the state dir both nodes reach, instead of the dir:// store.
# Prints each step, so it doubles as the demo. Env: LF_REPLAY (default for --replay), LF_STORE,
# LF_REPLAY_ORDER=after|before (manual replay before/after starting nodeB's statd+Ganesha),
# E2E_CLIENTS (3), E2E_KEEP=1 (leave the testbed up), LOCKFERRY_BUILD_DIR (binaries).
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib.sh"

replay=${LF_REPLAY:-lockferry}
# How `lockferry migrate` makes nodeB's clients reclaim: the built-in notifier by default;
# --recognize sm-notify runs nfs-utils' sm-notify instead (one ctest case keeps it).
recognize=${LF_RECOGNIZE:-notify}
store_kind=${LF_STORE:-dir}
server=${LF_TESTBED_SERVER:-ganesha}
order=${LF_REPLAY_ORDER:-after}
clients=${E2E_CLIENTS:-3}
build=${LOCKFERRY_BUILD_DIR:-$E2E_REPO/build}
while [ $# -gt 0 ]; do
  case "$1" in
    --replay) replay=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --store) store_kind=$2; shift 2 ;;
    --server) server=$2; shift 2 ;;
    --recognize) recognize=$2; shift 2 ;;
    *) e2e_fatal "unknown argument '$1' (--replay lockferry|manual|none, --store dir|postgresql, --server ganesha|knfsd, --recognize notify|sm-notify, --clients N, --build-dir DIR)" ;;
  esac
done
case "$replay" in lockferry | manual | none) ;; *) e2e_fatal "--replay must be lockferry, manual or none" ;; esac
case "$order" in after | before) ;; *) e2e_fatal "LF_REPLAY_ORDER must be after or before" ;; esac
case "$store_kind" in dir | postgresql) ;; *) e2e_fatal "--store must be dir or postgresql" ;; esac
case "$server" in ganesha | knfsd) ;; *) e2e_fatal "--server must be ganesha or knfsd" ;; esac
case "$recognize" in notify | sm-notify) ;; *) e2e_fatal "--recognize must be notify or sm-notify" ;; esac
e2e_require_root
command -v jq >/dev/null || e2e_fatal "jq is missing: run scripts/install-deps"

client_bin=$build/tests/tools/lf-nlm-client
lfd_bin=$build/userspace/lockferryd
lf_bin=$build/userspace/lockferry
need=("$client_bin")
[ "$replay" = lockferry ] && need+=("$lfd_bin" "$lf_bin")
for b in "${need[@]}"; do
  [ -x "$b" ] || e2e_fatal "$b is not built: cmake -S $E2E_REPO -B $build && make -C $build lf-nlm-client lockferryd lockferry"
done

svc=203.0.113.10
state=$LF_TESTBED_DIR
export_dir=$state/export
store_url="dir://$state/store"
grace_b=${LF_TESTBED_GRACE:-20}
name="e2e_failover ($replay replay, $store_kind store, $server)"
e2e_trap_cleanup

nlm() {   # CLIENT-NUMBER ARGS...: one lf-nlm-client run on that client host
  local k=$1
  shift
  tb_exec "client$k" "$client_bin" --server "$svc" --export "$export_dir" --name "$(client_ip "$k")" "$@"
}
locks_of() {   # CLIENT-NUMBER: the two locks that client holds
  echo "file$1.dat:0:4096:exclusive shared.dat:$(($1 * 1000)):1000:exclusive"
}
count_status() {   # STATE-FILE STATUS
  jq --arg s "$2" '[.locks[] | select(.status == $s)] | length' "$1" 2>/dev/null || echo 0
}
wait_until() {   # SECONDS CMD...
  local secs=$1 i
  shift
  for ((i = 0; i < secs * 5; i++)); do "$@" && return 0; sleep 0.2; done
  return 1
}
all_clients_have() {   # STATUS COUNT-PER-CLIENT
  local k files=()
  for ((k = 1; k <= clients; k++)); do files+=("$state/client$k.json"); done
  # One jq for every client: a jq per client made each poll of 50 clients take seconds, which
  # both slowed the test and blurred the reclaim time it reports.
  jq -e -s --arg s "$1" --argjson n "$2" --argjson c "$clients" \
    'length == $c and all(.[]; ([.locks[] | select(.status == $s)] | length) >= $n)' \
    "${files[@]}" >/dev/null 2>&1
}
not_in_grace() { ! tb nfs "$1" grace; }

# knfsd: lockferryd on nodeA recorded every client's lockd locks; nodeB's, on the same kernel and
# the same lockd thread, recorded none of them (they belong to nodeA's network namespace).
stored_locks() {   # NODE: its stored locks on this testbed's export
  "$lf_bin" --store "$store_url" --json locks --node "$1" 2>/dev/null |
    jq --arg e "$export_dir/" '[.[] | select(.path | startswith($e))]'
}
# Every lock of nodeB, with or without a path (a range only /proc/locks showed has none).
nodeB_locks() { "$lf_bin" --store "$store_url" --json locks --node nodeB 2>/dev/null; }
nodeB_lock_reconciles() {
  "$lf_bin" --socket "$state/nodes/nodeB/run/lockferry/lockferryd.sock" --json status |
    jq '[.. | objects | .locks? | objects | .reconcile? | objects | .runs? // empty] | add // 0'
}
knfsd_locks_stored() {
  all_stored() { [ "$(stored_locks nodeA | jq length)" -ge $((clients * 2)) ]; }
  wait_until 15 all_stored || true
  stored_locks nodeA | jq -r '.[] | "    lock: \(.path) \(.start)-\(.end) \(.type) client \(.nlm_host) by \(.manager_comm)"' || true
  for ((k = 1; k <= clients; k++)); do
    e2e_check "nodeA's lock table holds client$k's two lockd locks" \
      test "$(stored_locks nodeA | jq --arg c "$(client_ip "$k")" '[.[] | select(.nlm_host == $c and .manager_comm == "lockd")] | length')" -eq 2
  done
  # /proc/locks lists nodeA's lockd locks under the one lockd pid nodeB tracks too: two of
  # nodeB's lock reconciles must have run since, and added none of them.
  local runs0
  runs0=$(nodeB_lock_reconciles)
  reconciled() { [ "$(nodeB_lock_reconciles)" -ge $((runs0 + 2)) ]; }
  e2e_check "nodeB's lockferryd reconciled its lock table with /proc/locks twice since" wait_until 10 reconciled
  e2e_check "nodeB's lockferryd recorded none of nodeA's locks (another network namespace)" \
    test "$(nodeB_locks | jq length)" -eq 0
  e2e_check "nodeB's lockferryd counted nodeA's lock events as another namespace's" \
    bash -c "'$lf_bin' --socket '$state/nodes/nodeB/run/lockferry/lockferryd.sock' --json status | jq -e '[.. | objects | .other_netns? // empty] | add > 0'"
  # Restarted, nodeB's lockferryd sees no event of nodeA's held locks, only /proc/locks: nodeA's
  # rpc.mountd (another network namespace's NFS server) must keep its reconcile from adopting them.
  e2e_step "restart nodeB's lockferryd while nodeA's clients hold their locks"
  nodeB_lockferryd() {
    local p
    for p in $(ip netns pids "$LF_TESTBED_PREFIX-nodeB"); do
      [ "$(cat "/proc/$p/comm" 2>/dev/null)" = lockferryd ] && echo "$p"
    done
    return 0
  }
  # shellcheck disable=SC2046
  kill -TERM $(nodeB_lockferryd)
  lfdB_gone() { [ -z "$(nodeB_lockferryd)" ]; }
  wait_until 10 lfdB_gone || e2e_fatal "nodeB's lockferryd did not stop on SIGTERM"
  start_lockferryd nodeB
  twice() { [ "$(nodeB_lock_reconciles)" -ge 2 ]; }
  e2e_check "nodeB's restarted lockferryd reconciled with /proc/locks twice" wait_until 10 twice
  e2e_check "nodeB's restarted lockferryd recorded none of nodeA's locks (nodeA's rpc.mountd)" \
    test "$(nodeB_locks | jq length)" -eq 0
  e2e_check "nodeB's lockferryd logged why it adds no lockd range only /proc/locks shows" \
    grep -q "rpc.mountd pid .* runs in network namespace" "$state/nodes/nodeB/log/lockferryd.log"
}
# knfsd: the reclaim audit on nodeB names every client's two locks as reclaimed.
knfsd_audit() {
  e2e_step "the reclaim audit on nodeB: nodeA's lock table against nodeB's lockd locks"
  local audit_json=$state/audit.json k
  audited() {
    "$lf_bin" --store "$store_url" --json audit --from nodeA --node nodeB >"$audit_json" 2>"$state/audit.err" &&
      [ "$(jq --arg e "$export_dir/" '[.locks[] | select((.path | startswith($e)) and .status == "reclaimed")] | length' "$audit_json")" -ge $((clients * 2)) ]
  }
  wait_until 20 audited || true
  "$lf_bin" --store "$store_url" audit --from nodeA --node nodeB 2>&1 | sed 's/^/    /' || true
  for ((k = 1; k <= clients; k++)); do
    e2e_check "the audit names client$k's two locks as reclaimed" \
      test "$(jq --arg c "$(client_ip "$k")" '[.locks[] | select(.client == $c and .status == "reclaimed")] | length' "$audit_json")" -eq 2
  done
}

# ---------------------------------------------------------------------------------------------
e2e_step "bring up the cluster: nodeA (active, service IP $svc), nodeB (standby), $clients clients"
tb down >/dev/null 2>&1
# nodeA's own boot grace only delays the demo: keep it short. nodeB gets the real one.
LF_TESTBED_GRACE=5 tb up --clients "$clients" --server "$server"
for ((k = 1; k <= clients; k++)); do : >"$export_dir/file$k.dat"; done
: >"$export_dir/shared.dat"
: >"$export_dir/fresh.dat"
e2e_say "export $export_dir: $(cd "$export_dir" && ls | tr '\n' ' ')"
if [ "$store_kind" = postgresql ]; then
  e2e_step "start PostgreSQL for the store: one Unix socket in the state dir, reached by both nodes"
  tb pg start
  store_url=$(tb pg url)
  e2e_check "nodeB reaches the PostgreSQL store ($store_url)" tb_exec nodeB "$lf_bin" --store "$store_url" nodes
fi

lfd_pid=""
start_lockferryd() {   # NODE
  local node=$1 conf=$state/nodes/$1/lockferryd.toml lfd_log=$state/nodes/$1/log/lockferryd.log
  cat >"$conf" <<EOF
node = "$node"
store = "$store_url"
log_level = "info"
[capture]
monitor_dirs = ["/var/lib/nfs/sm"]
[control]
socket = "/run/lockferry/lockferryd.sock"
EOF
  # Kernel lockd's locks: the lock table the reclaim audit compares.
  # A reconcile every second: nodeB's must run while nodeA's locks are held (knfsd_locks_stored).
  [ "$server" = knfsd ] && printf '[locks]\nmanagers = ["lockd"]\nreconcile_interval_s = 1\n' >>"$conf"
  # setsid: long-running helpers get their own session, away from the harness's process group.
  setsid "$E2E_CLUSTER/exec" "$node" "$lfd_bin" --config "$conf" >"$lfd_log" 2>&1 &
  [ "$node" = nodeA ] && lfd_pid=$!
  if wait_until 30 grep -q "capture attached" "$lfd_log"; then
    e2e_ok "lockferryd on $node: $(grep -m1 'capture attached' "$lfd_log" | cut -c1-160)"
  else
    tail -n 20 "$lfd_log"
    e2e_fatal "lockferryd did not log 'capture attached' within 30 s (log $lfd_log)"
  fi
}
if [ "$replay" = lockferry ]; then
  e2e_step "start lockferryd on nodeA, watching nodeA's statd monitor dir$([ "$server" = knfsd ] && echo ", and on nodeB; both capture lockd's locks")"
  start_lockferryd nodeA
  [ "$server" = knfsd ] && start_lockferryd nodeB
fi

e2e_step "wait for nodeA's boot grace period to end"
wait_until 30 not_in_grace nodeA || e2e_fatal "nodeA stayed in grace"
e2e_ok "nodeA out of grace: new locks are granted"

# ---------------------------------------------------------------------------------------------
e2e_step "every client locks two ranges through $svc and keeps them (listening for SM_NOTIFY)"
for ((k = 1; k <= clients; k++)); do
  # shellcheck disable=SC2046
  setsid "$E2E_CLUSTER/exec" "client$k" "$client_bin" --server "$svc" --export "$export_dir" \
    --name "$(client_ip "$k")" --state "$state/client$k.json" --listen-notify --reclaim-window 60 --hold-forever \
    lock $(locks_of "$k") >"$state/client$k.out" 2>"$state/client$k.err" &
done
for ((k = 1; k <= clients; k++)); do
  if wait_until 30 all_clients_have held 2 && [ "$(count_status "$state/client$k.json" held)" -eq 2 ]; then
    e2e_ok "client$k ($(client_ip "$k")) holds $(locks_of "$k")"
  else
    e2e_bad "client$k did not get its locks: $(tail -n 3 "$state/client$k.err" "$state/client$k.out" 2>/dev/null | tr '\n' ' ')"
  fi
done

e2e_step "nodeA's rpc.statd wrote one monitor record per client"
ls -l "$state/nodes/nodeA/nfs/sm" | sed 's/^/    /'
for f in "$state"/nodes/nodeA/nfs/sm/*; do [ -f "$f" ] && e2e_say "$(basename "$f"): $(cat "$f")"; done
e2e_check "$clients records in nodeA's sm/" test "$(find "$state/nodes/nodeA/nfs/sm" -type f | wc -l)" -eq "$clients"

e2e_step "sanity: the locks are real (client conflicts are denied on nodeA)"
other=$((1 % clients + 1))
e2e_check "client$other cannot lock client1's file1.dat" bash -c "! '$E2E_CLUSTER/exec' client$other '$client_bin' --server $svc --export '$export_dir' --name $(client_ip "$other") lock file1.dat:0:4096:exclusive >/dev/null 2>&1"

if [ "$replay" = lockferry ]; then
  e2e_step "lockferry stored nodeA's monitor records in shared storage ($store_url)"
  # Read from nodeB, as the adoptive node will: only the shared store connects the two.
  records_json=$state/records.json
  fetch_records() {
    tb_exec nodeB "$lf_bin" --store "$store_url" --json records --node nodeA >"$records_json" 2>"$state/records.err" &&
      [ "$(jq 'length' "$records_json" 2>/dev/null || echo 0)" -ge "$clients" ]
  }
  wait_until 15 fetch_records || e2e_say "lockferry records: $(tail -n 3 "$state/records.err" | tr '\n' ' ')"
  jq -r '.[] | "    record: file=\(.file_name) mon_name=\(.mon_name) my_name=\(.my_name) addr=\(.addr // .address // "?")"' \
    "$records_json" 2>/dev/null || true
  for ((k = 1; k <= clients; k++)); do
    e2e_check "record for client$k ($(client_ip "$k")) captured" \
      jq -e --arg m "$(client_ip "$k")" 'type == "array" and any(.[]; .mon_name == $m)' "$records_json"
  done
  [ "$server" = knfsd ] && knfsd_locks_stored
  if [ "$server" = ganesha ]; then
    # Ganesha's locks are OFD locks of the server: their client comes from uprobes on its NLM
    # handlers (capture/ganesha_nlm.h).
    locks_json=$state/locks-nodeA.json
    fetch_locks() {
      tb_exec nodeB "$lf_bin" --store "$store_url" --json locks --node nodeA >"$locks_json" 2>/dev/null &&
        [ "$(jq --arg e "$export_dir/" '[.[] | select(.path | startswith($e))] | length' "$locks_json" 2>/dev/null || echo 0)" -ge $((clients * 2)) ]
    }
    wait_until 15 fetch_locks || true
    for ((k = 1; k <= clients; k++)); do
      e2e_check "nodeA's lock records name client$k ($(client_ip "$k")) on both its locks" \
        test "$(jq --arg c "$(client_ip "$k")" '[.[] | select(.nlm_host == $c)] | length' "$locks_json")" -eq 2
    done
  fi
fi

# ---------------------------------------------------------------------------------------------
e2e_step "CRASH nodeA: $([ "$server" = knfsd ] && echo "stop knfsd (lockd drops nodeA's locks), SIGKILL rpc.statd + rpc.mountd" || echo "SIGKILL ganesha.nfsd + rpc.statd")$( [ -n "$lfd_pid" ] && echo ' + lockferryd'), move $svc to nodeB"
t_crash=$(date +%s%N)
if [ -n "$lfd_pid" ]; then
  for p in $(ip netns pids "$LF_TESTBED_PREFIX-nodeA"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = lockferryd ] && kill -KILL "$p"
  done
fi
tb nfs nodeA kill
tb move-ip nodeA nodeB

replay_manual() {
  e2e_say "copying nodeA's sm/ into nodeB's sm/ (owner and mode kept)"
  cp -a "$state"/nodes/nodeA/nfs/sm/. "$state/nodes/nodeB/nfs/sm/"
  ls -l "$state/nodes/nodeB/nfs/sm" | sed 's/^/    /'
}
notify_manual() {
  e2e_say "sm-notify -d -f -m 1 -v $svc -P /var/lib/nfs on nodeB"
  local rc=0
  tb_exec nodeB timeout 60 sm-notify -d -f -m 1 -v "$svc" -P /var/lib/nfs >"$state/sm-notify.log" 2>&1 || rc=$?
  grep -E 'Canonical name|Sending SM_NOTIFY|notified successfully|unusable|[Ff]ail|rror' "$state/sm-notify.log" |
    grep -v nsm_local_state | sed 's/^/    /'
  e2e_check "sm-notify exited 0 (full log $state/sm-notify.log)" test "$rc" -eq 0
}

if [ "$replay" = manual ] && [ "$order" = before ]; then
  e2e_step "replay BEFORE starting nodeB's statd + Ganesha"
  replay_manual
fi
e2e_step "start NFS on nodeB: statd + $server, which starts IN GRACE (${grace_b}s) on $svc"
LF_TESTBED_GRACE=$grace_b tb nfs nodeB start
t_nfs_b=$(date +%s%N)
e2e_check "nodeB in grace" tb nfs nodeB grace
if [ "$replay" = manual ] && [ "$order" = before ]; then
  e2e_say "nodeB's sm/ after statd + Ganesha start (did SM_UNMON_ALL wipe replayed records?):"
  ls -l "$state/nodes/nodeB/nfs/sm" | sed 's/^/    /'
fi

case "$replay" in
  lockferry)
    e2e_step "lockferry migrate on nodeB: replay nodeA's records, then notify ($recognize) from $svc"
    e2e_say "lockferry --store $store_url --json migrate --from nodeA --node nodeB --statmon-dir /var/lib/nfs/sm --service-ip $svc --recognize $recognize --sm-notify-state-dir /var/lib/nfs"
    if tb_exec nodeB "$lf_bin" --store "$store_url" --json migrate --from nodeA --node nodeB \
      --statmon-dir /var/lib/nfs/sm --service-ip "$svc" --recognize "$recognize" \
      --sm-notify-state-dir /var/lib/nfs >"$state/migrate.json" 2>"$state/migrate.err"; then
      e2e_ok "lockferry migrate succeeded"
    else
      e2e_bad "lockferry migrate failed: $(tail -n 5 "$state/migrate.err" | tr '\n' ' ')"
    fi
    if [ "$recognize" = notify ]; then
      e2e_check "the built-in notifier: every client acknowledged SM_NOTIFY" \
        jq -e --argjson n "$clients" '[.recognize.clients[] | select(.status == "acknowledged")] | length == $n' "$state/migrate.json"
    fi
    # The report, without sm-notify's chatter (kept in $state/migrate.json).
    jq 'del(.recognize.commands[]?.output)' "$state/migrate.json" 2>/dev/null | sed 's/^/    /' ||
      sed 's/^/    /' "$state/migrate.json"
    # Per client: nodeB runs no lockferryd here (no reclaim counts), but who was told is known.
    for ((k = 1; k <= clients; k++)); do
      e2e_check "migrate's per-client report: client$k monitored, acknowledged SM_NOTIFY, held 2 locks" \
        jq -e --arg c "$(client_ip "$k")" '.client_report.clients | any(.client == $c and .monitored
          and .notify == "acknowledged" and .locks_held_before == 2)' "$state/migrate.json"
    done
    if [ "$store_kind" = postgresql ]; then
      e2e_check "nodeA is fenced (epoch 1) in the PostgreSQL store" bash -c \
        "'$E2E_CLUSTER/exec' nodeB '$lf_bin' --store '$store_url' --json nodes | jq -e '.[] | select(.node == \"nodeA\") | .epoch == 1'"
    fi
    ;;
  manual)
    e2e_step "manual replay on nodeB (LF_REPLAY=manual, order: $order)"
    [ "$order" = after ] && replay_manual
    notify_manual
    ;;
  none)
    e2e_step "no replay: nodeB has no monitor records, so sm-notify has nobody to notify"
    ls -l "$state/nodes/nodeB/nfs/sm" | sed 's/^/    /'
    ;;
esac

# Right after the reclaims, before the per-client checks: with 50 clients those take long enough
# (several jq per client) for nodeB's grace period to end first.
grace_check() {
  e2e_step "during nodeB's grace period a new (non-reclaim) lock is refused"
  if tb nfs nodeB grace; then
    out=$(nlm 1 lock fresh.dat:0:10:exclusive 2>/dev/null || true)
    e2e_say "client1 lock fresh.dat -> $out"
    e2e_check "new lock during grace: denied_grace_period" grep -q denied_grace_period <<<"$out"
  else
    e2e_bad "nodeB already left grace before the check (reclaim took too long?)"
  fi
}
# ---------------------------------------------------------------------------------------------
if [ "$replay" != none ]; then
  e2e_step "clients receive SM_NOTIFY from $svc and reclaim during nodeB's grace period"
  if wait_until 40 all_clients_have reclaimed 2; then
    ms=$((($(date +%s%N) - t_crash) / 1000000))
    e2e_ok "all $((clients * 2)) locks reclaimed, $((ms / 1000)).$((ms % 1000 / 100))s after the crash"
  fi
  grace_check
  e2e_step "each client: notified from $svc, both locks reclaimed"
  for ((k = 1; k <= clients; k++)); do
    f=$state/client$k.json
    jq -r '.notifications[] | "    client'"$k"' got SM_NOTIFY mon_name=\(.mon_name) state=\(.state) from=\(.from)"' "$f" 2>/dev/null || true
    jq -r '.locks[] | "    client'"$k"' \(.file) [\(.start), +\(.len)] \(.status)"' "$f" 2>/dev/null || true
    e2e_check "client$k notified from $svc" bash -c "jq -e --arg s $svc 'any(.notifications[]; .mon_name == \$s)' '$f' >/dev/null"
    e2e_check "client$k reclaimed both locks" test "$(count_status "$f" reclaimed)" -eq 2
  done
else
  e2e_step "clients wait for a notification that never comes"
  sleep 5
  for ((k = 1; k <= clients; k++)); do
    e2e_check "client$k received no SM_NOTIFY" test "$(jq '.notifications | length' "$state/client$k.json")" -eq 0
  done
  grace_check
fi

[ "$server" = knfsd ] && [ "$replay" = lockferry ] && knfsd_audit
e2e_say "nodeB's sm/ now (statd re-monitors each client that reclaimed):"
ls -l "$state/nodes/nodeB/nfs/sm" | sed 's/^/    /'

e2e_step "wait for nodeB's grace period to end"
wait_until $((grace_b + 20)) not_in_grace nodeB || e2e_fatal "nodeB never left grace"
ms=$((($(date +%s%N) - t_nfs_b) / 1000000))
e2e_ok "nodeB out of grace after $((ms / 1000)).$((ms % 1000 / 100))s"

e2e_step "who holds the locks now? another client tries each one"
granted=0 denied=0
for ((k = 1; k <= clients; k++)); do
  o=$((k % clients + 1))
  if out=$(nlm "$o" lock "file$k.dat:0:4096:exclusive" "shared.dat:$((k * 1000 + 10)):10:exclusive" 2>/dev/null); then
    granted=$((granted + 1))
    e2e_say "client$o locks client$k's ranges: GRANTED  $(echo "$out" | jq -c -s 'map(.status)' 2>/dev/null)"
  else
    denied=$((denied + 1))
    e2e_say "client$o locks client$k's ranges: denied   $(echo "$out" | jq -c -s 'map(.status)' 2>/dev/null)"
  fi
done
fresh_ok() { nlm 1 lock fresh.dat:100:10:exclusive >/dev/null 2>&1; }
e2e_check "nodeB grants a non-conflicting new lock (service healthy)" fresh_ok

if [ "$replay" = none ]; then
  e2e_check "without replay every conflicting lock is GRANTED: the locks were lost" test "$granted" -eq "$clients"
  verdict="WITHOUT lockferry: $clients clients, 0 notified, $((clients * 2)) locks lost, $granted/$clients conflicting locks granted to other clients"
else
  e2e_check "every conflicting lock is denied: the locks survived the failover" test "$denied" -eq "$clients"
  reclaimed=0
  for ((k = 1; k <= clients; k++)); do reclaimed=$((reclaimed + $(count_status "$state/client$k.json" reclaimed))); done
  verdict="WITH $replay replay: $clients clients notified, $reclaimed/$((clients * 2)) locks reclaimed on nodeB, $denied/$clients conflicting locks denied"
fi

printf '\n\033[1m%s %s\033[0m\n' "$([ "$E2E_FAILS" -eq 0 ] && echo 'VERDICT:' || echo 'VERDICT (with failures):')" "$verdict"
e2e_finish "$name"
