#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end check of lf-nlm-client against a real NFS-Ganesha + rpc.statd (ganesha-loopback.sh):
# locks are granted and enforced between owners, statd writes the client's monitor record, unlock
# works, a restarted server refuses new locks in grace, SM_NOTIFY from sm-notify makes the client
# reclaim in grace, and the reclaimed locks are enforced afterwards.
#
# Usage: ganesha-loopback-test.sh PATH/TO/lf-nlm-client
# Exit: 0 passed, 1 failed, 77 skipped (not root / tools missing) unless LOCKFERRY_REQUIRE_E2E=1.
set -euo pipefail

CLIENT_BIN=$(realpath "${1:?usage: $0 PATH/TO/lf-nlm-client}")
HERE=$(cd "$(dirname "$0")" && pwd)
BED=$HERE/ganesha-loopback.sh

skip() {
  if [ "${LOCKFERRY_REQUIRE_E2E:-0}" = 1 ]; then
    echo "FAIL: $* (LOCKFERRY_REQUIRE_E2E=1, so this may not be skipped)" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
  exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root (network/mount namespaces, NFS daemons)"
for tool in ganesha.nfsd rpc.statd rpcbind sm-notify rpcinfo nsenter unshare ip; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (run scripts/install-deps)"
done
[ -n "$(find /usr/lib /usr/lib64 -name libfsalvfs.so 2>/dev/null | head -1)" ] ||
  skip "nfs-ganesha-vfs is not installed (run scripts/install-deps)"

export LF_LOOP_DIR
LF_LOOP_DIR=$(mktemp -d /tmp/lf-loopback-test.XXXXXX)
export LF_LOOP_PREFIX=lflt$$
export LF_LOOP_GRACE=10
eval "$("$BED" env)"
HOLDER_PID=
PASSED=0

# Our own child stays a zombie until `wait`, and kill -0 still finds it.
exited() { ! kill -0 "$1" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
step() { printf '\n=== %s\n' "$*" >&2; }
ok() { PASSED=$((PASSED + 1)); printf 'ok: %s\n' "$*" >&2; }

cleanup() {
  local rc=$?
  if [ -n "$HOLDER_PID" ] && kill -0 "$HOLDER_PID" 2>/dev/null; then kill -KILL "$HOLDER_PID" 2>/dev/null || true; fi
  "$BED" stop >/dev/null 2>&1 || true
  if [ $rc -eq 0 ]; then
    rm -rf "$LF_LOOP_DIR"
  else
    echo "--- logs kept in $LF_LOOP_DIR (client: holder.out/.err, daemons: log/)" >&2
    tail -n 20 "$LF_LOOP_DIR/holder.err" 2>/dev/null >&2 || true
  fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# lfc ARGS...: lf-nlm-client in the client namespace as host CLIENT_IP; sets OUT and RC.
lfc() {
  set +e
  OUT=$("$BED" client "$CLIENT_BIN" --server "$SERVER_IP" --export "$EXPORT" --name "$CLIENT_IP" \
    --timeout-ms 3000 "$@" 2>>"$LF_LOOP_DIR/commands.err")
  RC=$?
  set -e
  printf '  $ lf-nlm-client %s\n  -> rc=%s %s\n' "$*" "$RC" "$OUT" >&2
}

expect() { # expect RC STATUS WHAT
  [ "$RC" = "$1" ] || fail "$3: exit code $RC, expected $1 (output: $OUT)"
  grep -q "\"status\":\"$2\"" <<<"$OUT" || fail "$3: status is not $2 (output: $OUT)"
  ok "$3"
}

# Ganesha logs "NOT IN GRACE" when its reaper (every few seconds) lifts grace.
wait_grace_lifted() { # wait_grace_lifted N: until the N-th lift
  local i
  for i in $(seq 120); do
    [ "$(grep -c 'NOT IN GRACE' "$LOG_DIR/ganesha.log" 2>/dev/null || true)" -ge "$1" ] && return 0
    sleep 0.5
  done
  fail "Ganesha did not leave grace within 60 s"
}

wait_for_line() { # wait_for_line FILE PATTERN SECONDS
  local i
  for i in $(seq $(($3 * 5))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  fail "no '$2' in $1 within $3 s: $(cat "$1" 2>/dev/null)"
}

step "start Ganesha + statd (server $SERVER_IP) and rpcbind (client $CLIENT_IP)"
"$BED" start
wait_grace_lifted 1
ok "server up and out of its start-up grace period"

step "client A locks two ranges and holds them, listening for SM_NOTIFY"
"$BED" client "$CLIENT_BIN" --server "$SERVER_IP" --export "$EXPORT" --name "$CLIENT_IP" \
  --state "$LF_LOOP_DIR/holder.json" --listen-notify --reclaim-window 30 --hold-forever \
  lock data.bin:0:100:exclusive data.bin:200:50:shared >"$LF_LOOP_DIR/holder.out" 2>"$LF_LOOP_DIR/holder.err" &
HOLDER_PID=$!
wait_for_line "$LF_LOOP_DIR/holder.out" '"event":"holding"' 15
[ "$(grep -c '"event":"lock".*"status":"granted"' "$LF_LOOP_DIR/holder.out")" -eq 2 ] ||
  fail "client A: not both locks granted: $(cat "$LF_LOOP_DIR/holder.out")"
grep -q "\"pid\": $HOLDER_PID" "$LF_LOOP_DIR/holder.json" || fail "state file does not name pid $HOLDER_PID"
ok "client A holds data.bin [0,100) exclusive and [200,250) shared (pid $HOLDER_PID)"
"$BED" client rpcinfo -T udp 127.0.0.1 100024 1 >/dev/null || fail "client A's NSM service does not answer on the client"
ok "client A's NSM service (100024/1) is registered with the client's rpcbind"

step "another lock owner is refused the same range"
lfc lock data.bin:50:10
expect 1 denied "conflicting exclusive lock from another owner denied"
lfc test data.bin:0:10
expect 1 denied "NLM4_TEST reports the conflict"
grep -q "\"svid\":$HOLDER_PID" <<<"$OUT" || fail "NLM4_TEST holder is not client A (svid $HOLDER_PID): $OUT"
ok "NLM4_TEST names client A as the holder"
lfc test data.bin:210:5:shared
expect 0 granted "a shared range compatible with A's shared lock is grantable"

step "rpc.statd wrote the client's monitor record"
record=$STATD_DIR/sm/$CLIENT_HOST
[ -f "$record" ] || fail "no $record (sm/ has: $(ls "$STATD_DIR/sm"))"
# statd names the file by the canonical name of the mon_name (the client's IP, via /etc/hosts).
grep -Eq "^0100007f 000186b5 00000004 00000010 [0-9a-f]{32} $CLIENT_IP $SERVER_HOST\$" "$record" ||
  fail "unexpected record content: $(cat "$record")"
mkdir -p "$LF_LOOP_DIR/saved"
cp -p "$record" "$LF_LOOP_DIR/saved/"
ok "sm/$CLIENT_HOST: $(cat "$record")"

step "lock and unlock by another owner"
lfc --owner tmp-owner --svid 4242 lock other.bin:0:10
expect 0 granted "owner tmp-owner locks other.bin"
lfc test other.bin:0:10
expect 1 denied "other.bin is locked for everyone else"
lfc --owner tmp-owner --svid 4242 unlock other.bin:0:10
expect 0 granted "owner tmp-owner unlocks other.bin"
lfc test other.bin:0:10
expect 0 granted "other.bin is free again"

step "restart Ganesha (crash): it enters grace"
"$BED" restart-ganesha
for i in $(seq 50); do [ -e "$record" ] || break; sleep 0.2; done
[ -e "$record" ] && fail "sm/$CLIENT_HOST still exists after Ganesha's restart"
ok "Ganesha's SM_UNMON_ALL at start-up made statd delete sm/$CLIENT_HOST (the server forgot the client)"
lfc lock fresh.bin:0:10
expect 1 denied_grace_period "a new (non-reclaim) lock during grace is refused"
lfc --reclaim lock fresh.bin:20:10
expect 0 granted "a reclaim lock during grace is granted"

step "sm-notify tells client A the server rebooted; A reclaims in grace"
"$BED" notify "$LF_LOOP_DIR/saved/$CLIENT_HOST" 2>"$LF_LOOP_DIR/sm-notify.err" ||
  fail "sm-notify failed: $(tail -5 "$LF_LOOP_DIR/sm-notify.err")"
grep -q "notified successfully" "$LF_LOOP_DIR/sm-notify.err" || fail "sm-notify did not reach the client: $(cat "$LF_LOOP_DIR/sm-notify.err")"
wait_for_line "$LF_LOOP_DIR/holder.out" '"event":"reclaim_done"' 30
grep -q '"event":"notify".*"from":"'"$SERVER_IP"'".*"matched":true' "$LF_LOOP_DIR/holder.out" ||
  fail "no matched notify event: $(cat "$LF_LOOP_DIR/holder.out")"
grep -q '"event":"reclaim_done".*"lost":0.*"reclaimed":2' "$LF_LOOP_DIR/holder.out" ||
  fail "reclaim incomplete: $(grep reclaim "$LF_LOOP_DIR/holder.out")"
[ "$(grep -c '"status": "reclaimed"' "$LF_LOOP_DIR/holder.json")" -eq 2 ] ||
  fail "state file does not show 2 reclaimed locks: $(cat "$LF_LOOP_DIR/holder.json")"
grep -q "\"from\": \"$SERVER_IP\"" "$LF_LOOP_DIR/holder.json" || fail "state file lacks the notification from $SERVER_IP"
ok "client A got SM_NOTIFY from $SERVER_IP and reclaimed both locks"
[ -f "$record" ] || fail "statd did not re-create sm/$CLIENT_HOST on the reclaim"
ok "the reclaim made statd monitor the client again (sm/$CLIENT_HOST)"

step "after grace, the reclaimed locks are enforced"
wait_grace_lifted 2
lfc lock data.bin:50:10
expect 1 denied "conflicting lock on the reclaimed exclusive range denied"
lfc lock data.bin:220:5:exclusive
expect 1 denied "exclusive lock inside the reclaimed shared range denied"
lfc test data.bin:220:5:shared
expect 0 granted "shared access to the reclaimed shared range still possible"

step "SIGTERM: client A exits without releasing anything"
kill -TERM "$HOLDER_PID"
for i in $(seq 50); do exited "$HOLDER_PID" && break; sleep 0.1; done
exited "$HOLDER_PID" || fail "client A did not exit on SIGTERM"
wait "$HOLDER_PID" || fail "client A exited non-zero on SIGTERM"
HOLDER_PID=
grep -q '"event":"exit"' "$LF_LOOP_DIR/holder.out" || fail "no exit event"
lfc lock data.bin:50:10
expect 1 denied "the dead client's lock is still held by the server"

printf '\nPASS: %d checks\n' "$PASSED" >&2
