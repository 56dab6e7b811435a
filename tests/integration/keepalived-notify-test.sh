#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/keepalived/lockferry-notify: argument handling, and exactly what it runs for each
# keepalived state (a recorder stands in for lockferry), then one MASTER run with the real
# lockferry against a temp store. usage: keepalived-notify-test.sh SOURCE_DIR LOCKFERRYD LOCKFERRY
source "$(dirname "$0")/lib.sh"
src=$1 real_lockferryd=$2 real_lockferry=$3
notify=$src/scripts/keepalived/lockferry-notify

# The recorder: one line per call with its arguments, exit code and output from the environment.
cat >"$tmp/recorder" <<'REC'
#!/usr/bin/env bash
printf '%s\n' "$*" >>"$RECORDER_LOG"
[ -n "${RECORDER_OUTPUT:-}" ] && echo "$RECORDER_OUTPUT"
exit "${RECORDER_RC:-0}"
REC
# lockferryd stand-in for the config defaults.
cat >"$tmp/fake-lockferryd" <<'FAKE'
#!/bin/sh
echo "config $4 is valid: node nfs2, store dir:///from/config, monitor dirs /var/lib/nfs/sm, capture mode auto"
FAKE
# rpcinfo stand-in: fails until it was called RPCINFO_OK_AFTER times.
cat >"$tmp/fake-rpcinfo" <<'RPC'
#!/bin/sh
n=$(($(cat "$RPCINFO_COUNT" 2>/dev/null || echo 0) + 1)); echo $n >"$RPCINFO_COUNT"
echo "$*" >>"$RPCINFO_COUNT.args"
[ "$n" -ge "${RPCINFO_OK_AFTER:-1}" ]
RPC
chmod +x "$tmp/recorder" "$tmp/fake-lockferryd" "$tmp/fake-rpcinfo"
export LOCKFERRY_BIN=$tmp/recorder LOCKFERRYD_BIN=$tmp/fake-lockferryd RPCINFO_BIN=$tmp/fake-rpcinfo
export RECORDER_LOG=$tmp/calls LOCKFERRY_NOTIFY_SYSLOG=0 LOCKFERRY_NOTIFY_LOCK=$tmp/notify.lock
export RPCINFO_COUNT=$tmp/rpcinfo.count
calls() { cat "$tmp/calls" 2>/dev/null; }
reset() { rm -f "$tmp/calls" "$RPCINFO_COUNT" "$RPCINFO_COUNT.args"; unset RECORDER_RC RECORDER_OUTPUT RPCINFO_OK_AFTER; }

# --- arguments -----------------------------------------------------------------------------
expect_rc 0 "--help" "$notify" --help
expect_rc 2 "no state" "$notify" --from nfs1
expect_rc 2 "unknown option" "$notify" --frm nfs1 MASTER
expect_rc 2 "unknown state" "$notify" --from nfs1 PRIMARY
expect_rc 2 "keepalived form with a bad type" "$notify" --from nfs1 ROUTER VI_1 MASTER 100
expect_rc 2 "--wait-nfs not a number" "$notify" --from nfs1 --wait-nfs soon MASTER
expect_rc 2 "MASTER without --from" "$notify" --store dir:///s MASTER
check "bad arguments run nothing" test -z "$(calls)"

# --- BACKUP / FAULT / STOP change nothing ----------------------------------------------------
for state in BACKUP FAULT STOP; do
  reset
  expect_rc 0 "$state (keepalived's notify form)" "$notify" --from nfs1 --store dir:///s INSTANCE VI_1 $state 100
  check "$state runs nothing" test -z "$(calls)"
done
reset
expect_rc 0 "BACKUP (notify_backup form)" "$notify" --from nfs1 BACKUP
check "BACKUP runs nothing" test -z "$(calls)"

# --- MASTER -------------------------------------------------------------------------------
reset
expect_rc 0 "MASTER, store and node from the config" "$notify" --from nfs1 --wait-nfs 0 MASTER
check "migrates nfs1 onto nfs2 with the config's store" \
  test "$(calls)" = "--config /etc/lockferry/lockferry.toml --store dir:///from/config migrate --from nfs1 --node nfs2"

reset
expect_rc 0 "MASTER via keepalived's generic notify, two peers incl. itself" \
  "$notify" --from "nfs1 nfs2" --from nfs3 --node nfs2 --store dir:///s --config /x.toml --wait-nfs 0 GROUP G1 MASTER 100
check "adopts every peer except itself, in order" test "$(calls)" = \
"--config /x.toml --store dir:///s migrate --from nfs1 --node nfs2
--config /x.toml --store dir:///s migrate --from nfs3 --node nfs2"

reset
export RPCINFO_OK_AFTER=3
expect_rc 0 "MASTER waits until NFS answers on the service IP" \
  "$notify" --from=nfs1 --store=dir:///s --service-ip=192.0.2.10 --wait-nfs=10 \
  --migrate-option=--timeout=30 --migrate-option --recognize=none MASTER
check "asked rpcinfo 3 times, for NFSv3 over TCP on the service IP" \
  test "$(cat "$RPCINFO_COUNT")" = 3 -a "$(head -n 1 "$RPCINFO_COUNT.args")" = "-T tcp 192.0.2.10 nfs 3"
check "then migrated with the service IP and the extra options" test "$(calls)" = \
  "--config /etc/lockferry/lockferry.toml --store dir:///s migrate --from nfs1 --node nfs2 --service-ip 192.0.2.10 --timeout=30 --recognize=none"

reset
export RPCINFO_OK_AFTER=1000
expect_rc 1 "MASTER --fail-if-not-ready when NFS never answers" \
  "$notify" --from nfs1 --store dir:///s --service-ip 192.0.2.10 --wait-nfs 1 --fail-if-not-ready MASTER
check "... and did not migrate" test -z "$(calls)"
reset
export RPCINFO_OK_AFTER=1000
expect_rc 0 "MASTER migrates anyway after --wait-nfs without --fail-if-not-ready" \
  "$notify" --from nfs1 --store dir:///s --service-ip 192.0.2.10 --wait-nfs 1 MASTER
check "... and migrated" test -n "$(calls)"

reset
export RECORDER_RC=3
expect_rc 0 "migrate exit 3 (some client not notified) is a warning" "$notify" --from nfs1 --store dir:///s --wait-nfs 0 MASTER
reset
export RECORDER_RC=1 RECORDER_OUTPUT="lockferry: cannot open store"
expect_rc 1 "migrate error fails the script" "$notify" --from nfs1 --store dir:///s --wait-nfs 0 MASTER
check "the error names what failed" grep -q "cannot open store" "$tmp/last.out"
reset
export RECORDER_RC=1 RECORDER_OUTPUT="lockferry: node nfs1 was already adopted by nfs3 at epoch 2"
expect_rc 0 "a node another node already adopted is skipped" "$notify" --from nfs1 --store dir:///s --wait-nfs 0 MASTER
reset

reset
export RECORDER_RC=1 RECORDER_OUTPUT="lockferry: node nfs9 is unknown to the store dir:///s: it has no monitor records"
expect_rc 0 "a node the store does not know is skipped" "$notify" --from nfs9 --store dir:///s --wait-nfs 0 MASTER
reset

# --- the real lockferry ----------------------------------------------------------------------
# The arguments the script builds must be ones the real CLI takes: adopt a node with no records
# (the store has never heard of it: skipped, unless --force) into a temp statd directory,
# recognition off.
unset LOCKFERRY_BIN LOCKFERRYD_BIN
mkdir -p "$tmp/sm"
expect_rc 0 "MASTER with the real lockferry, a node the store does not know" \
  env LOCKFERRY_BIN="$real_lockferry" LOCKFERRYD_BIN="$real_lockferryd" \
  "$notify" --from nfs1 --node nfs2 --store "dir://$tmp/store" --config "$tmp/none.toml" --wait-nfs 0 \
  --migrate-option=--statmon-dir="$tmp/sm" --migrate-option=--recognize=none MASTER
check "... is not adopted" sh -c "! '$real_lockferry' --store 'dir://$tmp/store' migrations --json | grep -q nfs1"
expect_rc 0 "MASTER with the real lockferry" env LOCKFERRY_BIN="$real_lockferry" LOCKFERRYD_BIN="$real_lockferryd" \
  "$notify" --from nfs1 --node nfs2 --store "dir://$tmp/store" --config "$tmp/none.toml" --wait-nfs 0 \
  --migrate-option=--statmon-dir="$tmp/sm" --migrate-option=--recognize=none --migrate-option=--force MASTER
check "the store records the migration nfs1 -> nfs2" \
  sh -c "'$real_lockferry' --store 'dir://$tmp/store' migrations --json | grep -q '\"to_node\": \"nfs2\"'"
finish
