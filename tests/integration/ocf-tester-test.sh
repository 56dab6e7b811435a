#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/ocf/lockferry through Pacemaker's own conformance checker, ocf-tester (Debian package
# resource-agents): meta-data against ra-api-1.dtd, every action's exit code, start/stop twice.
# usage: ocf-tester-test.sh AGENT LOCKFERRYD LOCKFERRY
source "$(dirname "$0")/lib.sh"
agent=$1 lockferryd=$2 lockferry=$3
need_root
command -v ocf-tester >/dev/null || skip "ocf-tester not installed (apt-get install resource-agents)"
[ -r /usr/lib/ocf/lib/heartbeat/ocf-shellfuncs ] || skip "ocf-shellfuncs missing (resource-agents)"

write_config nfs2 nfs2
# ocf-tester checks meta-data as user nobody: the agent must be readable from anywhere.
cp "$agent" "$tmp/lockferry-agent" && chmod 755 "$tmp" "$tmp/lockferry-agent"
cleanup_hooks+=("OCF_RESKEY_config='$tmp/nfs2/lockferry.toml' OCF_RESKEY_rundir='$tmp/run' OCF_RESKEY_lockferryd='$lockferryd' OCF_RESKEY_lockferry='$lockferry' OCF_RESOURCE_INSTANCE=lf_tester '$tmp/lockferry-agent' stop >/dev/null 2>&1")
ocf-tester -n lf_tester \
  -o config="$tmp/nfs2/lockferry.toml" -o lockferryd="$lockferryd" -o lockferry="$lockferry" \
  -o rundir="$tmp/run" -o logfile="$tmp/lockferryd.log" -o adopt="nfs1 nfs2" \
  "$tmp/lockferry-agent" >"$tmp/tester.out" 2>&1
rc=$?
cat "$tmp/tester.out"
check "ocf-tester passes (exit $rc)" test $rc = 0
check "ocf-tester reports every test passed" grep -q "passed all tests" "$tmp/tester.out"
finish
