#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end lock grant capture: NFS-Ganesha (VFS FSAL, NLM on) in a private server namespace
# (tests/tools/ganesha-loopback.sh), lockferryd running in that namespace with its lock hooks on,
# and lf-nlm-client as the NFS client. An NLM4 LOCK must appear in `lockferry locks` with the
# right file and range, a split by a partial UNLOCK must be recorded exactly, UNLOCK must remove
# it, and a crashed Ganesha (whose OFD locks the kernel drops) must leave an empty lock table.
#
# Usage: lock_capture.sh LF_NLM_CLIENT LOCKFERRYD LOCKFERRY
# Exit: 0 passed, 1 failed, 77 skipped (not root / tools missing) unless LOCKFERRY_REQUIRE_E2E=1.
set -euo pipefail

CLIENT_BIN=$(realpath "${1:?usage: $0 LF_NLM_CLIENT LOCKFERRYD LOCKFERRY}")
DAEMON_BIN=$(realpath "${2:?usage: $0 LF_NLM_CLIENT LOCKFERRYD LOCKFERRY}")
CLI_BIN=$(realpath "${3:?usage: $0 LF_NLM_CLIENT LOCKFERRYD LOCKFERRY}")
HERE=$(cd "$(dirname "$0")" && pwd)
BED=$HERE/../tools/ganesha-loopback.sh

skip() {
  if [ "${LOCKFERRY_REQUIRE_E2E:-0}" = 1 ]; then
    echo "FAIL: $* (LOCKFERRY_REQUIRE_E2E=1, so this may not be skipped)" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
  exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root (namespaces, NFS daemons, BPF)"
for tool in ganesha.nfsd rpc.statd rpcbind rpcinfo nsenter unshare ip jq; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (run scripts/install-deps)"
done
[ -n "$(find /usr/lib /usr/lib64 -name libfsalvfs.so 2>/dev/null | head -1)" ] ||
  skip "nfs-ganesha-vfs is not installed (run scripts/install-deps)"
[ -r /sys/kernel/btf/vmlinux ] || skip "no kernel BTF: lockferry's BPF capture cannot run here"

export LF_LOOP_DIR
LF_LOOP_DIR=$(mktemp -d /tmp/lf-locks-e2e.XXXXXX)
export LF_LOOP_PREFIX=lflk$$
export LF_LOOP_GRACE=2
eval "$("$BED" env)"
DAEMON_PID=
SOCKET=$LF_LOOP_DIR/lockferryd.sock
NODE=lfloop-server
PASSED=0

step() { printf '\n=== %s\n' "$*" >&2; }
ok() { PASSED=$((PASSED + 1)); printf 'ok: %s\n' "$*" >&2; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

cleanup() {
  local rc=$?
  # Only what this script started: lockferryd by its pid, the bed by its own pid files.
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  "$BED" stop >/dev/null 2>&1 || true
  if [ $rc -eq 0 ]; then
    rm -rf "$LF_LOOP_DIR"
  else
    echo "--- logs kept in $LF_LOOP_DIR (lockferryd.log, log/)" >&2
    tail -n 30 "$LF_LOOP_DIR/lockferryd.log" >&2 2>/dev/null || true
  fi
}
trap cleanup EXIT

# lf-nlm-client in the client namespace, always the same NLM owner so Ganesha keeps one lock
# state (one open file, one OFD owner) for all of it; sets OUT and RC.
lfc() {
  set +e
  OUT=$("$BED" client "$CLIENT_BIN" --server "$SERVER_IP" --export "$EXPORT" --name "$CLIENT_IP" \
    --owner lfe2e --svid 7 --timeout-ms 3000 "$@" 2>>"$LF_LOOP_DIR/client.err")
  RC=$?
  set -e
  printf '  $ lf-nlm-client %s\n  -> rc=%s %s\n' "$*" "$RC" "$OUT" >&2
  [ "$RC" = 0 ] && grep -q '"status":"granted"' <<<"$OUT" || fail "lf-nlm-client $*: not granted"
}

# lockferry in the server namespace (the control socket lives there).
lf() { "$BED" server "$CLI_BIN" --socket "$SOCKET" "$@"; }

# The lock table as "path start end type comm" lines, sorted.
table() { lf locks --json | jq -r '.[] | "\(.path) \(.start) \(.end // "EOF") \(.type) \(.manager_comm)"' | sort; }

# wait_table EXPECTED WHAT: until `lockferry locks` shows exactly EXPECTED (5 s failsafe).
wait_table() {
  local want=$1 what=$2 got=
  for _ in $(seq 50); do
    got=$(table) || true
    [ "$got" = "$want" ] && { ok "$what"; return 0; }
    sleep 0.1
  done
  fail "$what: lockferry locks shows
$got
expected
$want"
}

step "Ganesha + statd in the server namespace"
"$BED" start
GANESHA_PID=$(cat "$LF_LOOP_DIR/server/ganesha.pid")

step "lockferryd in the server namespace, lock hooks on ganesha.nfsd"
mkdir -p "$LF_LOOP_DIR/store"
cat >"$LF_LOOP_DIR/lockferryd.toml" <<EOF
node = "$NODE"
store = "dir://$LF_LOOP_DIR/store"
[capture]
monitor_dirs = ["/var/lib/nfs/sm"]
pin_dir = ""
[control]
socket = "$SOCKET"
[locks]
managers = ["ganesha.nfsd"]
EOF
# setsid + nsenter exec without forking: $! is lockferryd itself.
setsid nsenter -t "$(cat "$LF_LOOP_DIR/server/holder.pid")" -m -u -n -- "$DAEMON_BIN" \
  --config "$LF_LOOP_DIR/lockferryd.toml" -v </dev/null >"$LF_LOOP_DIR/lockferryd.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do lf status --json >/dev/null 2>&1 && break; sleep 0.1; done
STATUS=$(lf status --json) || fail "lockferryd does not answer on $SOCKET"
MODE=$(jq -r .locks.mode <<<"$STATUS")
[ "$MODE" = tp_btf ] || [ "$MODE" = tracepoint ] || fail "lock capture is not running: $(jq -c .locks <<<"$STATUS")"
jq -e --argjson pid "$GANESHA_PID" '.locks.managers | any(.pid == $pid and .comm == "ganesha.nfsd")' \
  <<<"$STATUS" >/dev/null || fail "ganesha.nfsd (pid $GANESHA_PID) is not tracked: $(jq -c .locks <<<"$STATUS")"
ok "lock capture runs ($MODE) and tracks ganesha.nfsd pid $GANESHA_PID"
# Ganesha's clients are named by uprobes on its NLM handlers (capture/ganesha_nlm.h).
jq -e '.locks.client_names.source | test("uprobes")' <<<"$STATUS" >/dev/null ||
  fail "client names do not come from uprobes: $(jq -c .locks.client_names <<<"$STATUS")"
ok "client names: $(jq -r '.locks.client_names | "\(.source) (\(.reason))"' <<<"$STATUS")"

step "Ganesha out of grace"
for _ in $(seq 100); do grep -q "NOT IN GRACE" "$LOG_DIR/ganesha.log" && break; sleep 0.2; done
grep -q "NOT IN GRACE" "$LOG_DIR/ganesha.log" || fail "Ganesha did not leave its grace period"

step "NLM4 LOCK is recorded with its file and range"
FILE=$(realpath "$EXPORT")/f1
lfc lock f1:0:100:exclusive
wait_table "$FILE 0 99 write ganesha.nfsd" "LOCK f1 0-99 exclusive recorded"
lf locks --json | jq -e --argjson pid "$GANESHA_PID" '.[0].manager_pid == $pid and .[0].owner_pid == $pid' \
  >/dev/null || fail "manager/owner pid is not Ganesha's: $(lf locks --json)"
ok "held by ganesha.nfsd (pid $GANESHA_PID)"
lf locks --json | jq -e --arg c "$CLIENT_IP" '.[0].nlm_host == $c' >/dev/null ||
  fail "the lock does not name its NLM client $CLIENT_IP: $(lf locks --json)"
ok "named after its NLM client ($CLIENT_IP, the request's caller_name)"

step "A partial UNLOCK splits it; a shared lock to EOF is added"
lfc unlock f1:40:20
lfc lock f1:200:0:shared
wait_table "$FILE 0 39 write ganesha.nfsd
$FILE 200 EOF read ganesha.nfsd
$FILE 60 99 write ganesha.nfsd" "split 0-39 + 60-99 and 200-EOF shared"
lf locks --json | jq -e --arg c "$CLIENT_IP" 'length == 3 and all(.[]; .nlm_host == $c)' >/dev/null ||
  fail "not every lock names its NLM client $CLIENT_IP: $(lf locks --json)"
ok "every lock names its NLM client"
# The store holds the same table (read directly, as another node would).
STORED=$("$CLI_BIN" --store "dir://$LF_LOOP_DIR/store" locks --node "$NODE" --json |
  jq -r '.[] | "\(.path) \(.start) \(.end // "EOF") \(.type) \(.manager_comm)"' | sort)
[ "$STORED" = "$(table)" ] || fail "the store's lock table differs: $STORED"
ok "the dir:// store holds the same table ($LF_LOOP_DIR/store/$NODE/locks.json)"

step "NLM4 UNLOCK removes it"
lfc unlock f1:0:0
wait_table "" "UNLOCK of the whole file leaves no lock"

step "A crashed Ganesha's locks are gone from the table"
lfc lock f1:0:10:exclusive
wait_table "$FILE 0 9 write ganesha.nfsd" "LOCK again"
"$BED" crash-ganesha
wait_table "" "SIGKILLed ganesha.nfsd: the kernel released its OFD locks, and so does the table"

step "Counters"
STATUS=$(lf status --json)
jq -c .locks <<<"$STATUS" >&2
jq -e '.locks.grants >= 3 and .locks.releases >= 3 and .locks.drops == 0 and .locks.store_errors == 0' \
  <<<"$STATUS" >/dev/null || fail "unexpected lock counters"
ok "counters: grants, releases, no drops, no store errors"

echo "PASS: $PASSED checks" >&2
