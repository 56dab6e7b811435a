#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lockferryd's file descriptors: every one it holds is close-on-exec, a command it runs gets only
# stdin, stdout and stderr, a restart while such a command still lives binds the heartbeat and
# metrics addresses again (what systemd's Restart=on-failure does after a crash), its open-file
# soft limit is raised to the hard limit, and a monitor record written while it has no free
# descriptor is stored as soon as one is free (not dropped as a bad file).
# usage: descriptors-test.sh LOCKFERRYD LOCKFERRY
source "$(dirname "$0")/lib.sh"
lockferryd=$1 lockferry=$2
need_root
command -v python3 >/dev/null || skip "python3 not installed"
command -v prlimit >/dev/null || skip "prlimit not installed"
free_port() {
  python3 -c "import socket; s = socket.socket(socket.AF_INET, socket.$1); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}
hb_port=$(free_port SOCK_DGRAM)
metrics_port=$(free_port SOCK_STREAM)
head -c 32 /dev/urandom | base64 >"$tmp/key"
chmod 600 "$tmp/key"
write_config nfs1 nfs1 "[metrics]
listen = \"127.0.0.1:$metrics_port\"
[health]
listen = \"127.0.0.1:$hb_port\"
key_file = \"$tmp/key\"
check_command = [\"true\"]
[health.peers]
nfs1 = \"127.0.0.1:$hb_port\"
nfs2 = \"127.0.0.1:9\""
config=$tmp/nfs1/lockferry.toml
# The configured recognition command reports its own descriptors (the shell's, not those of ls,
# which opens the directory; the redirection in a subshell, as dash keeps a copy of stdout).
sed -i "s|^recognize = .*|recognize = \"command\"\nrecognize_command = [\"sh\", \"-c\", \"(ls /proc/\$\$/fd >$tmp/fds); true\"]|" "$config"
# The reconcile interval is long: only the retry can bring the record in during this test.
sed -i 's/^reconcile_interval_s = .*/reconcile_interval_s = 3600/' "$config"
# Started with stdin, stdout and stderr only, as systemd starts it: what ctest or flock left open
# in this shell is not lockferryd's doing.
# (An array, not a function: a backgrounded function would be a subshell, and $! not lockferryd.)
clean_exec=(python3 -c 'import os, sys; os.closerange(3, 1 << 20); os.execvp(sys.argv[1], sys.argv[1:])')
start() {
  "${clean_exec[@]}" "$lockferryd" --config "$config" >>"$tmp/log" 2>&1 &
  pid=$!
  wait_for 20 sh -c "'$lockferry' --socket '$tmp/nfs1/ctl.sock' status >/dev/null 2>&1"
}
ctl() { "$lockferry" --socket "$tmp/nfs1/ctl.sock" "$@"; }

# Node nfs0's record, so there is something to migrate.
write_config nfs0 nfs0
cp "$(dirname "$0")/../data/statd/client-b.lockferry.test.record" "$tmp/nfs0/sm/client-b.lockferry.test"
"$lockferryd" --config "$tmp/nfs0/lockferry.toml" >"$tmp/nfs0.log" 2>&1 &
nfs0=$!
check "node nfs0 recorded a monitor record" wait_for 20 sh -c \
  "'$lockferry' --store 'dir://$tmp/store' records --node nfs0 --json | grep -q client-b"
kill -TERM $nfs0; wait $nfs0

check "lockferryd started with heartbeats, /metrics and the control socket" start
# One connection of each kind held open while the descriptors are looked at.
python3 -c "import socket, time; s = socket.socket(socket.AF_UNIX); s.connect('$tmp/nfs1/ctl.sock'); time.sleep(60)" &
holder=$!
exec 7<>/dev/tcp/127.0.0.1/$metrics_port
sleep 0.5
leaks=""
for info in /proc/$pid/fdinfo/*; do
  fd=${info##*/}
  [ "$fd" -le 2 ] && continue
  flags=$(awk '/^flags:/ { print $2 }' "$info" 2>/dev/null) || continue
  [ -n "$flags" ] || continue
  (( 0$flags & 02000000 )) || leaks+=" $fd:$(readlink /proc/$pid/fd/$fd)"
done
check "every descriptor of lockferryd is close-on-exec (not:$leaks)" test -z "$leaks"
check "it has its heartbeat socket open" sh -c "ls -l /proc/$pid/fd | grep -q socket"

expect_rc 0 "a migration ran the recognition command" ctl migrate --from nfs0 --node nfs1
check "the command saw only stdin, stdout and stderr (saw: $(echo $(cat "$tmp/fds" 2>/dev/null)))" \
  test "$(echo $(cat "$tmp/fds" 2>/dev/null))" = "0 1 2"
kill $holder 2>/dev/null
exec 7<&-

# lockferryd killed while its recognition command still runs; the restarted one must bind again.
ctl migrate --from nfs0 --node nfs1 --recognize command --command sleep 30 >/dev/null 2>&1 &
check "the recognition command is running" wait_for 10 sh -c "ps -o args= --ppid $pid | grep -q '^sleep 30'"
sleeper=$(ps -o pid= --ppid $pid | tr -d ' ')
kill -KILL $pid
wait $pid 2>/dev/null
check "the recognition command outlived lockferryd" kill -0 $sleeper
check "lockferryd restarted while it lives" start
check "the restarted lockferryd receives heartbeats on its address again" sh -c \
  "ss -Hulpn 'sport = :$hb_port' | grep -q 'pid=$pid,'"
check "and serves /metrics again" sh -c "ss -Htlpn 'sport = :$metrics_port' | grep -q 'pid=$pid,'"
kill $sleeper 2>/dev/null
check "it logged its open-file limit" grep -q "open-file limit" "$tmp/log"

# No free descriptor when a record is written: stored as soon as one is free again.
# Only the soft limit: raising a hard limit needs CAP_SYS_RESOURCE, which a container may lack.
soft=$(prlimit --pid $pid --nofile --raw --noheadings --output SOFT)
prlimit --pid $pid --nofile=4:
cp "$(dirname "$0")/../data/statd/client-b.lockferry.test.record" "$tmp/nfs1/sm/client-late.lockferry.test"
sed -i 's/client-b.lockferry.test/client-late.lockferry.test/' "$tmp/nfs1/sm/client-late.lockferry.test"
check "it said it ran out of descriptors and will read the record again" \
  wait_for 10 grep -q "out of file descriptors" "$tmp/log"
prlimit --pid $pid --nofile=$soft:
check "the record written without a free descriptor was stored once one was free" wait_for 10 sh -c \
  "'$lockferry' --store 'dir://$tmp/store' records --node nfs1 --json | grep -q client-late"
check "it was not counted as a bad file" sh -c "! grep -q 'ignoring .*client-late' '$tmp/log'"
kill -TERM $pid
wait $pid
finish
