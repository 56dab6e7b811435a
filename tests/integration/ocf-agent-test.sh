#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/ocf/lockferry, every action with the real lockferryd and lockferry (inotify capture,
# temp store, recognition off): nfs1 captures a record, then the agent on nfs2 adopts it on
# start, runs lockferryd, monitors, reloads, stops — with the OCF exit code of each case.
# usage: ocf-agent-test.sh AGENT LOCKFERRYD LOCKFERRY
source "$(dirname "$0")/lib.sh"
agent=$1 lockferryd=$2 lockferry=$3
need_root

# --- nfs1 captures one client's monitor record into the store, then "crashes" -----------------
write_config nfs1 nfs1
"$lockferryd" --config "$tmp/nfs1/lockferry.toml" >"$tmp/nfs1.log" 2>&1 &
nfs1_pid=$!
cleanup_hooks+=("kill $nfs1_pid 2>/dev/null")
wait_for 20 test -S "$tmp/nfs1/ctl.sock" || { cat "$tmp/nfs1.log"; fail "nfs1's lockferryd did not start"; finish; }
# A record as rpc.statd wrote it for a Ganesha NLM client (tests/data/statd).
cp "$(dirname "$0")/../data/statd/client-b.lockferry.test.record" "$tmp/nfs1/sm/client-b.lockferry.test"
records_of() { "$lockferry" --store "dir://$tmp/store" records --node "$1" --json 2>/dev/null; }
check "nfs1 stored client-b's record" wait_for 10 sh -c "'$lockferry' --store 'dir://$tmp/store' records --node nfs1 --json | grep -q client-b.lockferry.test"
kill -9 $nfs1_pid; wait $nfs1_pid 2>/dev/null

# --- the agent on nfs2 -----------------------------------------------------------------------
write_config nfs2 nfs2
export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=lf_test
export OCF_RESKEY_config=$tmp/nfs2/lockferry.toml OCF_RESKEY_lockferryd=$lockferryd
export OCF_RESKEY_lockferry=$lockferry OCF_RESKEY_rundir=$tmp/run OCF_RESKEY_logfile=$tmp/nfs2.log
export OCF_RESKEY_adopt="nfs1 nfs2"
ra() { "$agent" "$@"; }
cleanup_hooks+=("OCF_RESKEY_manage_daemon=true '$agent' stop >/dev/null 2>&1")

expect_rc 0 "meta-data" ra meta-data
ra meta-data >"$tmp/meta.xml" 2>/dev/null
if command -v xmllint >/dev/null && [ -r /usr/share/resource-agents/ra-api-1.dtd ]; then
  # As ocf-tester does it: the DOCTYPE names ra-api-1.dtd relative to that directory.
  check "meta-data is valid against ra-api-1.dtd" sh -c "cd /usr/share/resource-agents && xmllint --noout --valid - <'$tmp/meta.xml'"
else
  check "meta-data is well-formed enough" grep -q '</resource-agent>' "$tmp/meta.xml"
fi
for p in config node store adopt statmon_dir service_ip recognize migrate_options migrate_failure manage_daemon; do
  check "meta-data documents parameter $p" grep -q "<parameter name=\"$p\"" "$tmp/meta.xml"
done
expect_rc 0 "usage" ra usage
expect_rc 3 "an unknown action is OCF_ERR_UNIMPLEMENTED" ra promote-to-king

expect_rc 0 "validate-all" ra validate-all
expect_rc 5 "validate-all: lockferryd missing is OCF_ERR_INSTALLED" env OCF_RESKEY_lockferryd=/nonexistent/lockferryd "$agent" validate-all
expect_rc 6 "validate-all: missing config is OCF_ERR_CONFIGURED" env OCF_RESKEY_config=$tmp/none.toml "$agent" validate-all
echo 'bogus_key = 1' >"$tmp/bad.toml"
expect_rc 6 "validate-all: invalid config is OCF_ERR_CONFIGURED" env OCF_RESKEY_config=$tmp/bad.toml "$agent" validate-all
check "... and the exit reason names the key" grep -q "bogus_key" "$tmp/last.out"
expect_rc 6 "validate-all: bad migrate_failure" env OCF_RESKEY_migrate_failure=maybe "$agent" validate-all

expect_rc 7 "monitor before start: OCF_NOT_RUNNING" ra monitor
expect_rc 7 "probe before start: OCF_NOT_RUNNING" env OCF_RESKEY_CRM_meta_interval=0 "$agent" monitor
expect_rc 0 "stop when stopped" ra stop

expect_rc 0 "start" ra start
check "start replayed nfs1's record into nfs2's statd directory" test -f "$tmp/nfs2/sm/client-b.lockferry.test"
check "the replayed file is byte-identical" cmp -s "$tmp/nfs1/sm/client-b.lockferry.test" "$tmp/nfs2/sm/client-b.lockferry.test"
check "the store records the migration nfs1 -> nfs2" \
  sh -c "'$lockferry' --store 'dir://$tmp/store' migrations --json | grep -q '\"to_node\": \"nfs2\"'"
check "nfs1 is fenced (epoch 1)" sh -c "'$lockferry' --store 'dir://$tmp/store' nodes --json | tr -d ' \n' | grep -q '\"epoch\":1,\"node\":\"nfs1\"'"
check "lockferryd runs for nfs2 and answers" sh -c "'$lockferry' --config '$OCF_RESKEY_config' status --json | grep -q '\"node\": \"nfs2\"'"
check "nfs2's lockferryd captured the adopted record as its own" \
  wait_for 10 sh -c "'$lockferry' --store 'dir://$tmp/store' records --node nfs2 --json | grep -q client-b.lockferry.test"
expect_rc 0 "monitor when running" ra monitor
expect_rc 0 "probe when running" env OCF_RESKEY_CRM_meta_interval=0 "$agent" monitor
pid=$(cat "$tmp/run/ocf-lf_test.pid")
expect_rc 0 "start when started" ra start
check "start when started keeps the same lockferryd" test "$(cat "$tmp/run/ocf-lf_test.pid")" = "$pid"
expect_rc 0 "reload (SIGHUP)" ra reload
check "lockferryd logged the reload" wait_for 10 grep -q "reload" "$tmp/nfs2.log"
expect_rc 0 "monitor after reload" ra monitor

expect_rc 0 "stop" ra stop
check "lockferryd is gone" sh -c "! kill -0 $pid 2>/dev/null"
check "the adopted record stays in the statd directory after stop" test -f "$tmp/nfs2/sm/client-b.lockferry.test"
expect_rc 7 "monitor after stop" ra monitor
expect_rc 0 "stop again" ra stop

# A lockferryd that dies is noticed.
expect_rc 0 "start (again)" ra start
kill -9 "$(cat "$tmp/run/ocf-lf_test.pid")"
wait_for 10 sh -c '"$0" monitor >/dev/null 2>&1; [ $? = 7 ]' "$agent"
expect_rc 7 "monitor after lockferryd was killed: OCF_NOT_RUNNING" ra monitor
expect_rc 0 "stop after the crash" ra stop

# Migration errors: fail the start by default, or start anyway with migrate_failure=warn.
expect_rc 1 "start with an unusable store fails (migrate_failure=fail)" env OCF_RESKEY_store=nosuch://x "$agent" start
check "... with an exit reason" grep -q "ocf-exit-reason" "$tmp/last.out"
expect_rc 7 "... and nothing runs" ra monitor
expect_rc 0 "start with an unusable store and migrate_failure=warn" env OCF_RESKEY_store=nosuch://x OCF_RESKEY_migrate_failure=warn "$agent" start
expect_rc 0 "... lockferryd runs" ra monitor
expect_rc 0 "stop" ra stop
# A node in `adopt` that the store never heard of is not adopted, with a warning, and the start
# goes on (migrate_failure=fail).
expect_rc 0 "start with an unknown node in adopt" env OCF_RESKEY_adopt="nfs1 nfs2 nfs9" "$agent" start
check "... warns that nfs9 is unknown, naming the nodes the store knows" \
  grep -q "not adopting nfs9: .*unknown to the store.*knows these nodes: nfs1, nfs2" "$tmp/last.out"
check "... and fences nothing for it" sh -c "! '$lockferry' --store 'dir://$tmp/store' nodes --json | grep -q nfs9"
expect_rc 0 "stop" ra stop

# lockferryd under systemd instead: the resource only migrates.
export OCF_RESKEY_manage_daemon=false
rm -f "$tmp/nfs2/sm/client-b.lockferry.test"
expect_rc 7 "manage_daemon=false: monitor before start" ra monitor
expect_rc 0 "manage_daemon=false: start" ra start
check "manage_daemon=false: the record was replayed again" test -f "$tmp/nfs2/sm/client-b.lockferry.test"
check "manage_daemon=false: no lockferryd was started" test ! -s "$tmp/run/ocf-lf_test.pid"
expect_rc 0 "manage_daemon=false: monitor" ra monitor
expect_rc 0 "manage_daemon=false: stop" ra stop
expect_rc 7 "manage_daemon=false: monitor after stop" ra monitor
finish
