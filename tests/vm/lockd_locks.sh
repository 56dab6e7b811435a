#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Kernel lockd in the guest (run by scripts/vm; label vm): one knfsd node with two service IPs,
# three NFS clients in network namespaces, lockferryd recording lockd's locks.
#  1. each lock record names the client's address and the service IP it locked through;
#  2. with lockferryd stopped (SIGSTOP) and a 4 KiB ring buffer, lock events are dropped; the
#     reconcile from /proc/locks makes lockferryd's table lockd's exact locks again;
#  3. `lockferry migrate --service-ip IP` replays only the clients that locked through IP.
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

if [ "$fails" -ne 0 ]; then
  echo "--- lockferryd log (tail)"
  tail -n 40 "$work/lockferryd.log"
  echo "$fails check(s) failed"
  exit 1
fi
echo "all checks passed"
