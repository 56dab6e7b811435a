#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Kernel lockd in the guest (run by scripts/vm; label vm): one knfsd node with two service IPs,
# three NFS clients in network namespaces, lockferryd recording lockd's locks.
#  1. each lock record names the client's address and the service IP it locked through;
#  2. with lockferryd stopped (SIGSTOP) and a 4 KiB ring buffer, lock events are dropped; the
#     reconcile from /proc/locks makes lockferryd's table lockd's exact locks again;
#  3. `lockferry migrate --service-ip IP` replays only the clients that locked through IP;
#  4. a client reboot (SM_NOTIFY) drops the client's locks, seen by the hooks; locks lockd drops
#     in another process's context (a write to /proc/fs/nfsd/unlock_ip), which no hook sees, are
#     repaired by the periodic reconcile from /proc/locks.
# lockd is the only lock manager, so lockferryd takes the kprobe hook set on lockd's functions
# (nlmsvc_lock/unlock, a blocked lock's grant) where the kernel allows kprobes, as 6.1 does.
# Usage (inside the guest): lockd_locks.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "${1:?usage: lockd_locks.sh BUILD_DIR}")
# shellcheck source=knfsd_single.sh
. "$here/knfsd_single.sh"

lfd=$build/userspace/lockferryd
lf=$build/userspace/lockferry
nlm_bin=$build/tests/tools/lf-nlm-client
svc_a=192.0.2.10
svc_b=192.0.2.11
work=/tmp/lf-lockd
fails=0
ok() { printf 'ok   %s\n' "$*"; }
bad() {
  printf 'FAIL %s\n' "$*"
  fails=$((fails + 1))
}
check() {   # DESCRIPTION CMD...
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
wait_for() {   # SECONDS CMD...
  local i
  for ((i = 0; i < $1 * 5; i++)); do "${@:2}" && return 0; sleep 0.2; done
  return 1
}
nlm() {   # CLIENT SERVICE-IP ARGS...: client K (caller name clientK) through SERVICE-IP
  ip netns exec "lfc$1" "$nlm_bin" --server "$2" --export "$KNFSD_EXPORT" --name "client$1" \
    "${@:3}" >>"$work/clients.log" 2>&1
}
lf_json() { "$lf" --socket "$work/lockferryd.sock" --json "$@"; }
status_of() { lf_json status | jq -r "$1"; }
# lockferryd's lock table as "START END TYPE" lines, sorted (EOF as in /proc/locks).
recorded() { lf_json locks | jq -r '.[] | "\(.start) \(.end // "EOF") \(.type | ascii_upcase)"' | sort; }
via() {   # PATH-SUFFIX: "client_addr server_addr" of the recorded lock on that file
  lf_json locks | jq -r --arg f "$1" '.[] | select(.path | endswith($f)) | "\(.client_addr) \(.server_addr)"' | sort -u
}

for tool in jq pgrep; do command -v "$tool" >/dev/null || knfsd_fail "'$tool' is missing"; done
mkdir -p "$work"
knfsd_start "$svc_a" "$svc_b"
for k in 1 2 3; do knfsd_client "$k"; done

cat >"$work/lockferryd.toml" <<EOF
node = "nfs1"
store = "dir://$work/store"
[capture]
monitor_dirs = ["$KNFSD_SM"]
pin_dir = ""
[control]
socket = "$work/lockferryd.sock"
[locks]
managers = ["lockd"]
ring_buffer_kb = 4
reconcile_interval_s = 0
EOF
"$lfd" --config "$work/lockferryd.toml" -v >"$work/lockferryd.log" 2>&1 &
lfd_pid=$!
trap 'kill -CONT $lfd_pid 2>/dev/null || true; kill $lfd_pid 2>/dev/null || true; wait $lfd_pid 2>/dev/null || true' EXIT
wait_for 60 test -S "$work/lockferryd.sock" || knfsd_fail "lockferryd did not start: $(tail -n 20 "$work/lockferryd.log")"

echo "== 1. lock records name the client's address and the service IP it came through"
nlm 1 "$svc_a" lock f1.dat:0:100:exclusive
nlm 2 "$svc_b" --owner c2 --svid 2 lock f2.dat:0:100:exclusive f6.dat:0:10:exclusive
nlm 3 "$svc_a" lock f3.dat:0:100:exclusive
nlm 3 "$svc_b" lock f4.dat:0:100:shared
check "lockferryd recorded lockd's 5 locks" wait_for 20 test "$(recorded | wc -l)" = 5
check "f1.dat: client 1 via $svc_a" test "$(via /f1.dat)" = "10.77.1.2 $svc_a"
check "f2.dat: client 2 via $svc_b" test "$(via /f2.dat)" = "10.77.2.2 $svc_b"
check "f3.dat: client 3 via $svc_a" test "$(via /f3.dat)" = "10.77.3.2 $svc_a"
check "f4.dat: client 3 via $svc_b" test "$(via /f4.dat)" = "10.77.3.2 $svc_b"
text=$("$lf" --socket "$work/lockferryd.sock" locks)
check "'lockferry locks' shows client names and addresses" \
  grep -q "client client1 (10.77.1.2) via $svc_a" <<<"$text"
check "lock hooks: kprobe on kernel lockd's functions ($(status_of .locks.reason | cut -c1-110))" \
  test "$(status_of .locks.mode)" = kprobe
text=$("$lf" --socket "$work/lockferryd.sock" status)
check "'lockferry status' shows the kprobe lock hooks" grep -q "^locks: *kprobe (" <<<"$text"

echo "== 1b. a blocked lock, granted when its holder unlocks, is recorded with its client"
# (wait_for runs its command again and again: the checks below are functions, not "$(...)".)
nlm 1 "$svc_a" --owner c1 --svid 1 lock f7.dat:0:10:exclusive
nlm 3 "$svc_a" --owner c3 --svid 3 --block lock f7.dat:0:10:exclusive || true
check "client 3's blocking request on f7.dat waits" \
  grep -q '"file":"f7.dat".*"status":"blocked"' "$work/clients.log"
nlm 1 "$svc_a" --owner c1 --svid 1 unlock f7.dat:0:10
f7_is_client3s() { [ "$(via /f7.dat)" = "10.77.3.2 $svc_a" ]; }
check "lockd granted it to client 3: recorded with client 3's address (its GRANTED_MSG call)" \
  wait_for 20 f7_is_client3s
six_in_sync() { [ "$(recorded)" = "$(knfsd_proc_locks)" ] && [ "$(recorded | wc -l)" = 6 ]; }
check "the table is lockd's /proc/locks (6 locks)" wait_for 10 six_in_sync

echo "== 2. events dropped while lockferryd is stopped are repaired from /proc/locks"
kill -STOP "$lfd_pid"
nlm 1 "$svc_a" --owner c1 --svid 1 lock f5.dat:0:10:exclusive f5.dat:20:10:exclusive \
  f5.dat:40:10:exclusive f5.dat:60:10:exclusive f5.dat:80:10:shared f5.dat:100:0:exclusive
nlm 2 "$svc_b" --owner c2 --svid 2 unlock f2.dat:0:100
kill -CONT "$lfd_pid"
check "the 4 KiB ring buffer dropped lock events" \
  wait_for 20 test "$(status_of '.locks.drops // 0')" -gt 0
in_sync() { [ "$(recorded)" = "$(knfsd_proc_locks)" ]; }
check "after the drops lockferryd's table is lockd's /proc/locks again" wait_for 30 in_sync
if ! in_sync; then
  printf 'recorded:\n%s\n/proc/locks (lockd):\n%s\n' "$(recorded)" "$(knfsd_proc_locks)"
fi
check "status: a reconcile after drops ran, kernel_locks counts lockd's locks" \
  test "$(status_of '.locks.reconcile.after_drops')" -ge 1 -a \
  "$(status_of '.locks.reconcile.kernel_locks')" = "$(knfsd_proc_locks | wc -l)"
check "f1.dat kept its client and service IP through the reconcile" \
  test "$(via /f1.dat)" = "10.77.1.2 $svc_a"
check "monitor records of the 3 clients are in the store" \
  wait_for 20 test "$(lf_json records | jq length)" = 3

echo "== 3. migrate --service-ip replays only the clients that locked through that address"
kill "$lfd_pid"
wait "$lfd_pid" || true
trap - EXIT
mig() { "$lf" --store "dir://$work/store" --json migrate --from nfs1 --node nfs2 \
  --statmon-dir "$work/sm2" --recognize none "$@"; }
mkdir -p "$work/sm2"
out=$(mig --service-ip "$svc_a" --dry-run)
check "for $svc_a: client 2 (locks through $svc_b only) is left out" \
  test "$(jq -c '.left_out' <<<"$out")" = '["10.77.2.2"]'
out=$(mig --service-ip "$svc_b")
check "for $svc_b: client 1 (locks through $svc_a only) is left out" \
  test "$(jq -c '.left_out' <<<"$out")" = '["10.77.1.2"]'
check "for $svc_b: clients 2 and 3 are replayed" \
  test "$(find "$work/sm2" -mindepth 1 -printf '%f\n' | sort | tr '\n' ' ')" = "10.77.2.2 10.77.3.2 "

echo "== 4. locks lockd drops outside its NLM calls are repaired by the periodic reconcile"
# /proc/fs/nfsd/unlock_ip makes lockd drop every lock taken through that address (what an HA
# script does before it moves the address), in the writing process's context: no hook runs for
# lockd. The reconcile every second repairs the table.
sed -e 's/^reconcile_interval_s = 0$/reconcile_interval_s = 1/' -e 's/^ring_buffer_kb = 4$//' \
  "$work/lockferryd.toml" >"$work/lockferryd-reconcile.toml"
"$lfd" --config "$work/lockferryd-reconcile.toml" -v >"$work/lockferryd-2.log" 2>&1 &
lfd_pid=$!
trap 'kill $lfd_pid 2>/dev/null || true; wait $lfd_pid 2>/dev/null || true' EXIT
lfd_up() { [ -S "$work/lockferryd.sock" ] && [ "$(status_of .locks.mode 2>/dev/null)" = kprobe ]; }
wait_for 60 lfd_up ||
  knfsd_fail "lockferryd did not restart: $(tail -n 20 "$work/lockferryd-2.log")"
check "restarted: the table is lockd's /proc/locks" wait_for 20 in_sync
# A client reboot (SM_NOTIFY to statd, which tells lockd) runs in lockd's own thread: lockd
# drops the client's locks through nlm_unlock_files, whose hook emits the releases (the counter
# proves it was the hook, not the reconcile).
releases=$(status_of '.locks.releases')
before=$(knfsd_proc_locks | wc -l)
nlm 1 "$svc_a" --nsm-state 3 reboot
fewer_locks() { [ "$(knfsd_proc_locks | wc -l)" -lt "$before" ]; }
check "client 1 rebooted: lockd dropped its locks" wait_for 20 fewer_locks
more_releases() { [ "$(status_of '.locks.releases')" -gt "$releases" ]; }
check "the hook on nlm_unlock_files emitted the releases" wait_for 10 more_releases
check "after the reboot the table is lockd's /proc/locks" wait_for 20 in_sync
check "no lock of client 1 is left in the table" test -z "$(via /f1.dat)"
before=$(knfsd_proc_locks | wc -l)
echo "$svc_b" >/proc/fs/nfsd/unlock_ip
check "lockd dropped the locks taken through $svc_b" wait_for 10 fewer_locks
check "the reconcile made the table lockd's /proc/locks again" wait_for 20 in_sync
check "no lock through $svc_b is left in the table" \
  test -z "$(lf_json locks | jq -r --arg s "$svc_b" '.[] | select(.server_addr == $s) | .path')"
kill "$lfd_pid"
wait "$lfd_pid" || true
trap - EXIT

if [ "$fails" -ne 0 ]; then
  echo "--- lockferryd log (tail)"
  tail -n 40 "$work/lockferryd.log"
  [ -f "$work/lockferryd-2.log" ] && tail -n 20 "$work/lockferryd-2.log"
  echo "$fails check(s) failed"
  exit 1
fi
echo "all checks passed"
