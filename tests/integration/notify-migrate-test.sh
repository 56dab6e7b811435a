#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `lockferry migrate --recognize notify` against real receivers: a network namespace made here
# has the service IP and a client range local on lo, where lf-nsm-fleet answers rpcbind GETPORT
# and SM_NOTIFY from each client's address; one client never answers. The migration's JSON names
# every client (acknowledged with times / unreachable), the state file is bumped as statd's, the
# acknowledged records left sm.bak/ and the dead client's record stays there (pending, as
# sm-notify would leave it), it was notified from a reserved port as the service IP, and its
# progress showed on stderr.
# usage: notify-migrate-test.sh LOCKFERRY LF_NSM_FLEET
source "$(dirname "$0")/lib.sh"
need_root
lockferry=$1 fleet=$2
ns=lf-notify-it-$$
service_ip=10.63.0.1
clients=(10.64.0.1 10.64.0.2 10.64.0.3)
dead=10.64.0.3
cleanup_hooks+=("ip netns del $ns 2>/dev/null")
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" addr add "$service_ip/32" dev lo
ip -n "$ns" route add local 10.64.0.0/10 dev lo

for c in "${clients[@]}"; do
  mkdir -p "$tmp/store/nodeA/monitor"
  cat >"$tmp/store/nodeA/monitor/$c.json" <<DOC
{"format": 1, "node": "nodeA", "file_name": "$c", "records": [{"node": "nodeA",
 "epoch": 0, "file_name": "$c", "first_seen_ns": 1, "last_seen_ns": 2,
 "addr": "0100007f", "prog": 100021, "vers": 4, "proc": 16,
 "priv": "00000000000000000000000000000000", "mon_name": "$c", "my_name": "server1",
 "raw": "0100007f 000186b5 00000004 00000010 00000000000000000000000000000000 $c server1\n"}]}
DOC
done
mkdir -p "$tmp/nfs/sm"
ip netns exec "$ns" "$fleet" --ignore "$dead" --timeout 60 >"$tmp/fleet.json" &
fleet_pid=$!
ip netns exec "$ns" "$lockferry" --json --store "dir://$tmp/store" migrate --from nodeA \
  --node nodeB --statmon-dir "$tmp/nfs/sm" --recognize notify --service-ip "$service_ip" \
  --timeout 2 >"$tmp/migrate.json" 2>"$tmp/migrate.log"
rc=$?
kill -TERM "$fleet_pid"
wait "$fleet_pid"
jqc() { jq -e "$@" >/dev/null; }
# As with sm-notify, a client that does not answer is reported, not a failed migration.
check "migrate succeeds (exit $rc)" test "$rc" = 0
check "its message names the client that did not acknowledge" \
  jqc '.recognize.message == "1 client(s) did not acknowledge SM_NOTIFY"' "$tmp/migrate.json"
status_of() { jq -r --arg c "$1" '.recognize.clients[] | select(.client == $c) | .status' "$tmp/migrate.json"; }
check "10.64.0.1 acknowledged" test "$(status_of 10.64.0.1)" = acknowledged
check "10.64.0.2 acknowledged" test "$(status_of 10.64.0.2)" = acknowledged
check "the silent client is unreachable" test "$(status_of "$dead")" = unreachable
check "an acknowledged client has its times" \
  jqc '.recognize.clients[] | select(.status == "acknowledged") | .notified and .acknowledged' "$tmp/migrate.json"
check "the NSM state sent is 3 (no state file before)" jqc '.recognize.nsm_state == 3' "$tmp/migrate.json"
state=$(od -An -td4 "$tmp/nfs/state" | tr -d ' ')
check "state holds 3 as a host-order int" test "$state" = 3
check "only the dead client is pending in sm.bak/" test "$(ls "$tmp/nfs/sm.bak")" = "$dead"
check "the receivers saw 2 clients notified with the service IP as the name" \
  jqc '.distinct == 2 and .mon_name == "10.63.0.1" and .state == 3' "$tmp/fleet.json"
# A person watching a large fleet sees it move: progress lines on stderr while it runs (the dead
# client keeps it busy for --timeout 2 s: one line a second, and the last), even with --json.
progress_lines=$(grep -c "notify: [0-9]* of 3 client(s) acknowledged after" "$tmp/migrate.log")
check "its progress was shown on stderr while it ran ($progress_lines lines)" test "$progress_lines" -ge 2
check "stdout is the JSON report alone" jqc '.recognize' "$tmp/migrate.json"
check "sent from a reserved port" grep -qE "from 10\.63\.0\.1:(6[0-9][0-9]|[7-9][0-9][0-9]|10[0-2][0-9]) " "$tmp/migrate.log"
finish
