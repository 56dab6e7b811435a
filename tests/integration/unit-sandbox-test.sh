#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lockferryd inside the systemd unit's sandbox, without systemd as PID 1: the unit's
# CapabilityBoundingSet (applied with setpriv, plus no_new_privs) still lets lockferryd load and
# attach BPF, and every system call and socket family it uses while capturing a record, serving
# `lockferry status`, migrating, reloading and stopping is allowed by the unit's SystemCallFilter and
# RestrictAddressFamilies (traced with strace, checked against systemd-analyze's groups).
# usage: unit-sandbox-test.sh UNIT_TEMPLATE LOCKFERRYD LOCKFERRY
source "$(dirname "$0")/lib.sh"
unit=$1 lockferryd=$2 lockferry=$3
need_root
for tool in setpriv strace systemd-analyze python3; do
  command -v $tool >/dev/null || skip "$tool not installed"
done
directive() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
caps=$(directive CapabilityBoundingSet)
filter=$(directive SystemCallFilter)
families=$(directive RestrictAddressFamilies)
check "the unit sets CapabilityBoundingSet, SystemCallFilter and RestrictAddressFamilies" \
  test -n "$caps" -a -n "$filter" -a -n "$families"
bounding="-all$(for c in $caps; do c=${c#CAP_}; printf ',+%s' "${c,,}"; done)"

# BPF when this machine can (the unit must not be what breaks it), else whatever auto picks.
mode=auto
[ -r /sys/kernel/btf/vmlinux ] && mode=bpf
write_config nfs1 nfs1 "[metrics]
listen = \"127.0.0.1:0\""
sed -i "s/^mode = .*/mode = \"$mode\"/; s|^pin_dir = .*|pin_dir = \"/sys/fs/bpf/lf-sandbox-$$\"|" "$tmp/nfs1/lockferry.toml"
strace -f -qq -o "$tmp/trace" \
  setpriv --bounding-set="$bounding" --inh-caps=-all --no-new-privs \
  "$lockferryd" --config "$tmp/nfs1/lockferry.toml" >"$tmp/log" 2>&1 &
strace_pid=$!
cleanup_hooks+=("kill \$(ps -o pid= --ppid $strace_pid) 2>/dev/null; wait $strace_pid 2>/dev/null")
check "lockferryd started inside the bounding set" wait_for 60 test -S "$tmp/nfs1/ctl.sock"
# strace's child: setpriv, which became lockferryd.
pid=$(ps -o pid= --ppid $strace_pid | tr -d ' ')
check "lockferryd runs as strace's child" grep -q lockferryd "/proc/$pid/cmdline"
check "capture mode is $mode" sh -c "'$lockferry' --socket '$tmp/nfs1/ctl.sock' status --json | grep -q '\"mode\": \"$([ $mode = bpf ] && echo bpf || echo '[a-z]*')\"'"
cp "$(dirname "$0")/../data/statd/client-b.lockferry.test.record" "$tmp/nfs1/sm/client-b.lockferry.test"
check "it captured a record" wait_for 10 sh -c "'$lockferry' --store 'dir://$tmp/store' records --node nfs1 --json | grep -q client-b"
# A migration through the control socket: replay plus a recognition command (fork + exec).
check "it ran a migration with a recognition command" sh -c "'$lockferry' --socket '$tmp/nfs1/ctl.sock' migrate \
  --from nfs0 --node nfs1 --recognize command --command /bin/true >/dev/null 2>&1"
kill -HUP $pid
check "it reloaded" wait_for 10 grep -q "reload" "$tmp/log"
kill -TERM $pid
wait $strace_pid; rc=$?
check "it stopped cleanly, exit status 0 (got $rc)" test $rc = 0
grep -E "critical|error" "$tmp/log" && fail "errors in lockferryd's log"

# Every syscall and address family in the trace must pass the unit's filters.
systemd-analyze syscall-filter >"$tmp/groups" 2>/dev/null
python3 - "$tmp/groups" "$tmp/trace" "$filter" "$families" <<'PY' >"$tmp/verdict"
import re, sys
groups, cur = {}, None
for line in open(sys.argv[1]):
    line = line.rstrip()
    if line.startswith('@'):
        cur = line.split()[0]; groups[cur] = []
    elif cur and line.strip() and not line.strip().startswith('#'):
        groups[cur].append(line.strip())
def expand(name):
    out = set()
    for x in groups.get(name, []):
        out |= expand(x) if x.startswith('@') else {x}
    return out
allowed = set()
for item in sys.argv[3].split():
    allowed |= expand(item) if item.startswith('@') else {item}
families = set(sys.argv[4].split())
used, fams = set(), set()
for line in open(sys.argv[2]):
    m = re.match(r'^\d+\s+([a-z0-9_]+)\((.*)', line)
    if not m:
        continue
    used.add(m.group(1))
    if m.group(1) == 'socket':
        fams.add(m.group(2).split(',')[0])
bad = sorted(s for s in used if s not in allowed)
badf = sorted(f for f in fams if f not in families)
print(f"{len(used)} syscalls used; families {sorted(fams)}")
for s in bad: print(f"BLOCKED syscall {s}")
for f in badf: print(f"BLOCKED family {f}")
PY
cat "$tmp/verdict"
check "the trace recorded lockferryd's system calls" grep -q "syscalls used" "$tmp/verdict"
check "SystemCallFilter allows every system call lockferryd made" sh -c "! grep -q 'BLOCKED syscall' '$tmp/verdict'"
check "RestrictAddressFamilies allows every socket family lockferryd opened" sh -c "! grep -q 'BLOCKED family' '$tmp/verdict'"
finish
