#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two real lockferryd with heartbeats on loopback. Nothing node A does starves its heartbeats:
# (1) a control request that takes 10 s (a migration whose recognition command runs 10 s), and
# (2) a flood of forged heartbeats at A's port, as fast as one process can send them, some
# claiming to come from B's own address. Node B must see A alive throughout (no DOWN, no
# adoption), A's longest gap between two heartbeats it sent must stay well under dead_after_ms,
# and A must count what it dropped.
# usage: health-starvation-test.sh LOCKFERRYD LOCKFERRY LF_UDP_FLOOD
source "$(dirname "$0")/lib.sh"
lockferryd=$1 lockferry=$2 flood=$3
need_root
command -v python3 >/dev/null || skip "python3 not installed"
command -v jq >/dev/null || skip "jq not installed"
free_port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"; }
# Distinct loopback addresses: a packet's source says which node sent it.
ip_a=127.0.0.2 ip_b=127.0.0.3 ip_flood=127.0.0.9
port_a=$(free_port $ip_a) port_b=$(free_port $ip_b)
head -c 32 /dev/urandom | base64 >"$tmp/heartbeat.key"
chmod 600 "$tmp/heartbeat.key"
dead_after=3000
health() {
  cat <<CONF
automatic = true
takeover_command = ["true"]
[health]
listen = "$1"
key_file = "$tmp/heartbeat.key"
interval_ms = 200
dead_after_ms = $dead_after
[health.peers]
nodeA = "$ip_a:$port_a"
nodeB = "$ip_b:$port_b"
CONF
}
write_config a nodeA "$(health $ip_a:$port_a)"
write_config b nodeB "$(health $ip_b:$port_b)"
for n in a b; do
  "$lockferryd" --config "$tmp/$n/lockferry.toml" >"$tmp/$n.log" 2>&1 &
  cleanup_hooks+=("kill $! 2>/dev/null")
  eval "pid_$n=$!"
done
lf() { local n=$1; shift; "$lockferry" --config "$tmp/$n/lockferry.toml" --socket "$tmp/$n/ctl.sock" "$@"; }
peer_state() { lf b --json health | jq -r '.peers[] | select(.node == "nodeA") | .state'; }
check "both daemons answer" wait_for 20 sh -c "test -S $tmp/a/ctl.sock && test -S $tmp/b/ctl.sock"
check "B sees A alive" wait_for 10 sh -c "[ \"\$($lockferry --socket $tmp/b/ctl.sock --json health | jq -r '.peers[] | select(.node == \"nodeA\") | .state')\" = alive ]"

# Capabilities are per thread: the heartbeat and worker threads must not keep what the daemon
# dropped after start.
lf a --json records >/dev/null  # starts the worker thread
check "every thread of lockferryd has the same (dropped) capabilities" \
  test "$(cat /proc/$pid_a/task/*/status | grep '^CapEff' | sort -u | wc -l)" = 1
check "lockferryd runs a heartbeat thread and a worker thread" test "$(ls /proc/$pid_a/task | wc -l)" -ge 3

# (1) A request that keeps A busy for 10 s through its control socket. Node C only exists so that
# there is something to migrate; the recognition command is the 10 s of work.
t0=$SECONDS
lf a migrate --from nodeC --force --statmon-dir "$tmp/a/sm" --recognize command --command sleep 10 \
  --timeout 30 >"$tmp/migrate.out" 2>&1 &
migrate=$!
sleep 1
check "A answers status while the 10 s request runs" sh -c "timeout 3 '$lockferry' --socket '$tmp/a/ctl.sock' --json status >/dev/null"
wait $migrate
echo "     the migration took $((SECONDS - t0)) s"
check "the long request really took about 10 s" test $((SECONDS - t0)) -ge 9
lf b --json health >"$tmp/b-health-1.json"
lf a --json health >"$tmp/a-health-1.json"
gap=$(jq '.peers[] | select(.node == "nodeA") | .max_gap_ms' "$tmp/b-health-1.json")
echo "     longest silence of A seen by B: $gap ms; A's longest send gap: $(jq .counters.max_send_gap_ms "$tmp/a-health-1.json") ms (dead_after $dead_after ms)"
check "B never saw A go down during the long request" sh -c "! grep -q 'node nodeA is DOWN' $tmp/b.log"
check "B adopted nothing" test "$(jq '.adoptions | length' "$tmp/b-health-1.json")" = 0
check "A stayed alive for B" test "$(jq -r '.peers[] | select(.node == "nodeA") | .state' "$tmp/b-health-1.json")" = alive
check "A's longest silence seen by B is well under dead_after" test "$gap" -lt $((dead_after / 2))

# (2) A flood of forged heartbeats at A: from an unknown address, and spoofing B's own address.
"$flood" $ip_a:$port_a $ip_flood nodeB 6 >"$tmp/flood-1.out" &
f1=$!
"$flood" $ip_a:$port_a $ip_b nodeB 6 >"$tmp/flood-2.out" &
f2=$!
wait $f1 $f2
cat "$tmp/flood-1.out" "$tmp/flood-2.out" | sed 's/^/     flood: /'
sleep 0.5
lf b --json health >"$tmp/b-health-2.json"
lf a --json health >"$tmp/a-health-2.json"
jq -c '.counters' "$tmp/a-health-2.json" | sed 's/^/     A counters: /'
gap=$(jq '.peers[] | select(.node == "nodeA") | .max_gap_ms' "$tmp/b-health-2.json")
send_gap=$(jq .counters.max_send_gap_ms "$tmp/a-health-2.json")
echo "     under the flood: longest silence of A seen by B $gap ms, A's longest send gap $send_gap ms"
check "B never saw A go down during the flood" sh -c "! grep -q 'node nodeA is DOWN' $tmp/b.log"
check "A never saw B go down during the flood" sh -c "! grep -q 'node nodeB is DOWN' $tmp/a.log"
check "nobody adopted anybody" test "$(jq -s '[.[].adoptions[]] | length' "$tmp/a-health-2.json" "$tmp/b-health-2.json")" = 0
check "A's longest send gap stays well under dead_after" test "$send_gap" -lt $((dead_after / 2))
check "A's longest silence seen by B stays well under dead_after" test "$gap" -lt $((dead_after / 2))
check "A counted datagrams from the wrong address" test "$(jq .counters.wrong_source "$tmp/a-health-2.json")" -gt 1000
check "A counted rate-limited datagrams" test "$(jq .counters.rate_limited "$tmp/a-health-2.json")" -gt 1000
check "A authenticated only a bounded number of forgeries" test "$(jq .counters.forged "$tmp/a-health-2.json")" -lt 20000
check "no late heartbeat" test "$(jq .counters.late_sends "$tmp/a-health-2.json")" = 0
finish
