#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lockferryd inside the systemd unit's sandbox, without systemd as PID 1: the unit's
# CapabilityBoundingSet (applied with setpriv, plus no_new_privs) and ProtectSystem=strict (the
# file system read-only but for the test's directories, as ReadWritePaths= would leave them) still
# let lockferryd load and attach BPF, and every system call and socket family it and its commands
# use while capturing a record, serving `lockferry status`, migrating, reloading and stopping is
# allowed by the unit's SystemCallFilter and RestrictAddressFamilies (traced with strace, checked
# against systemd-analyze's groups). Recognition is checked end to end, both ways: a migration
# runs the real sm-notify from the sandbox, another has lockferryd's built-in notifier send
# SM_NOTIFY itself (a reserved source port on the service IP, GETPORT to the client's rpcbind), and
# each time a client's real rpc.statd (in a network namespace of its own) must receive it.
# usage: unit-sandbox-test.sh UNIT_TEMPLATE LOCKFERRYD LOCKFERRY
source "$(dirname "$0")/lib.sh"
unit=$1 lockferryd=$2 lockferry=$3
need_root
for tool in setpriv strace systemd-analyze python3 jq ip nsenter unshare rpcbind rpc.statd sm-notify rpcinfo \
  dbus-daemon dbus-send ganesha.nfsd; do
  command -v $tool >/dev/null || skip "$tool not installed"
done
id statd >/dev/null 2>&1 || skip "no user statd (nfs-common not installed?)"
directive() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
caps=$(directive CapabilityBoundingSet)
filter=$(directive SystemCallFilter)
families=$(directive RestrictAddressFamilies)
check "the unit sets CapabilityBoundingSet, SystemCallFilter and RestrictAddressFamilies" \
  test -n "$caps" -a -n "$filter" -a -n "$families"
check "the unit sets ProtectSystem=strict and NoNewPrivileges=yes" \
  test "$(directive ProtectSystem)" = strict -a "$(directive NoNewPrivileges)" = yes
bounding="-all$(for c in $caps; do c=${c#CAP_}; printf ',+%s' "${c,,}"; done)"
# statd's user must reach the state directories (sm-notify drops to the owner of sm/).
chmod 0755 "$tmp"

# Two network namespaces joined by a veth pair: the server (lockferryd, sending from the service
# IP 203.0.113.1) and a client (203.0.113.2) running rpcbind and a real rpc.statd in a private
# /run and /var/lib/nfs.
srv=lfsb$$s cli=lfsb$$c
ip netns add $srv && ip netns add $cli || fail "cannot create network namespaces"
cleanup_hooks+=("ip netns del $srv; ip netns del $cli")
ip -n $srv link set lo up
ip -n $cli link set lo up
ip -n $srv link add eth0 type veth peer name eth0 netns $cli
ip -n $srv addr add 203.0.113.1/24 dev eth0
ip -n $cli addr add 203.0.113.2/24 dev eth0
ip -n $srv link set eth0 up
ip -n $cli link set eth0 up
mkdir -p "$tmp/client/sm" "$tmp/client/sm.bak"
chown statd:nogroup "$tmp/client/sm" "$tmp/client/sm.bak"
chmod 0755 "$tmp/client"
# setsid execs (no fork: not a group leader here), so $! is the client's session.
setsid nsenter --net=/run/netns/$cli unshare --mount --propagation private sh -c "
  mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/rpcbind &&
  mount --bind '$tmp/client' /var/lib/nfs || exit 1
  rpcbind -f -w &
  for i in \$(seq 50); do rpcinfo -T udp 127.0.0.1 100000 2 >/dev/null 2>&1 && break; sleep 0.1; done
  exec rpc.statd -F -d --no-notify" </dev/null >"$tmp/client/statd.log" 2>&1 &
client_sid=$!
cleanup_hooks+=("kill \$(ps -o pid= -s $client_sid) 2>/dev/null")
check "the client's rpc.statd answers" wait_for 15 \
  sh -c "nsenter --net=/run/netns/$cli rpcinfo -T udp 127.0.0.1 100024 1 >/dev/null 2>&1"

# The server's NFS service for the ganesha-grace method: a real ganesha.nfsd (with rpcbind, in a
# private /run and /var/lib/nfs) on a system bus of its own, which lockferryd's dbus-send reaches
# through DBUS_SYSTEM_BUS_ADDRESS.
bus="unix:path=$tmp/system_bus_socket"
sed -e "s|<listen>.*</listen>|<listen>$bus</listen>|" -e '/<user>/d; /<fork\/>/d; /<pidfile>/d' \
  /usr/share/dbus-1/system.conf >"$tmp/bus.conf"
mkdir -p "$tmp/ganesha/export" "$tmp/ganesha/varlibnfs"
cat >"$tmp/ganesha/ganesha.conf" <<CONF
NFS_CORE_PARAM { Protocols = 3; Enable_NLM = true; Enable_RQUOTA = false; Clustered = false; }
NFSV4 { Grace_Period = 5; Lease_Lifetime = 5; }
EXPORT { Export_Id = 1; Path = $tmp/ganesha/export; Pseudo = $tmp/ganesha/export; Protocols = 3;
         Access_Type = RW; Squash = No_Root_Squash; FSAL { Name = VFS; } }
LOG { Default_Log_Level = EVENT; }
CONF
setsid nsenter --net=/run/netns/$srv unshare --mount --propagation private sh -c "
  mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/rpcbind /run/ganesha &&
  mount --bind '$tmp/ganesha/varlibnfs' /var/lib/nfs || exit 1
  dbus-daemon --config-file='$tmp/bus.conf' --nofork --nopidfile &
  rpcbind -f -w &
  for i in \$(seq 50); do rpcinfo -T udp 127.0.0.1 100000 2 >/dev/null 2>&1 && test -S '$tmp/system_bus_socket' && break; sleep 0.1; done
  DBUS_SYSTEM_BUS_ADDRESS='$bus' exec ganesha.nfsd -F -f '$tmp/ganesha/ganesha.conf' \
    -L '$tmp/ganesha/ganesha.log' -p /run/ganesha/ganesha.pid" </dev/null >"$tmp/ganesha/out" 2>&1 &
server_sid=$!
cleanup_hooks+=("kill \$(ps -o pid= -s $server_sid) 2>/dev/null")
check "ganesha.nfsd took its name on the server's system bus" wait_for 30 sh -c \
  "DBUS_SYSTEM_BUS_ADDRESS='$bus' dbus-send --system --print-reply --dest=org.freedesktop.DBus \
   /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.ganesha.nfsd 2>/dev/null |
   grep -q 'boolean true'"

# The record to replay: captured for node nfs0 by a lockferryd outside the sandbox.
write_config nfs0 nfs0
printf '0100007f 000186b5 00000004 00000010 %032d 203.0.113.2 nfs0\n' 0 >"$tmp/nfs0/sm/203.0.113.2"
"$lockferryd" --config "$tmp/nfs0/lockferry.toml" >"$tmp/nfs0.log" 2>&1 &
nfs0_pid=$!
check "node nfs0 recorded the client's monitor record" wait_for 20 sh -c \
  "'$lockferry' --store 'dir://$tmp/store' records --node nfs0 --json | grep -q 203.0.113.2"
kill -TERM $nfs0_pid
wait $nfs0_pid

# BPF when this machine can (the unit must not be what breaks it), else whatever auto picks.
mode=auto
[ -r /sys/kernel/btf/vmlinux ] && mode=bpf
write_config nfs1 nfs1 "[metrics]
listen = \"127.0.0.1:0\""
sed -i "s/^mode = .*/mode = \"$mode\"/; s|^pin_dir = .*|pin_dir = \"/sys/fs/bpf/lf-sandbox-$$\"|" "$tmp/nfs1/lockferry.toml"
# nfs1's statd directory as statd keeps it: sm/ and sm.bak/ owned by its user.
mkdir -p "$tmp/nfs1/sm.bak"
chown statd:nogroup "$tmp/nfs1/sm" "$tmp/nfs1/sm.bak"
chmod 0755 "$tmp/nfs1" "$tmp/nfs1/sm" "$tmp/nfs1/sm.bak"
# ProtectSystem=strict: every mount read-only but the API file systems (/proc, /sys, /dev) and
# what ReadWritePaths= would leave writable (here the test's directory stands for the store and
# statd's directory).
# sm-notify resolves the service IP to the name it sends (a production node has DNS or hosts
# entries for it); this netns has no DNS, so a hosts file of its own.
printf '203.0.113.1 lfsb-server\n203.0.113.2 lfsb-client\n' >"$tmp/hosts"
read_only_system='mount --bind "$0/hosts" /etc/hosts && mount --bind "$0" "$0" &&
  for mp in $(cut -d" " -f5 /proc/self/mountinfo | sort -u); do
    case $mp in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|"$0"|"$0"/*) continue ;; esac
    mount -o remount,bind,ro "$mp" 2>/dev/null
  done; shift; exec "$@"'
nsenter --net=/run/netns/$srv unshare --mount --propagation private \
  sh -c "$read_only_system" "$tmp" -- \
  strace -f -qq -o "$tmp/trace" \
  setpriv --bounding-set="$bounding" --inh-caps=-all --no-new-privs \
  env DBUS_SYSTEM_BUS_ADDRESS="$bus" "$lockferryd" --config "$tmp/nfs1/lockferry.toml" >"$tmp/log" 2>&1 &
strace_pid=$!
cleanup_hooks+=("kill \$(ps -o pid= --ppid $strace_pid) 2>/dev/null; wait $strace_pid 2>/dev/null")
check "lockferryd started inside the bounding set" wait_for 60 test -S "$tmp/nfs1/ctl.sock"
# nsenter and unshare exec; sh execs strace, whose child is setpriv, which became lockferryd.
pid=$(ps -o pid= --ppid $strace_pid | tr -d ' ')
check "lockferryd runs as strace's child" grep -q lockferryd "/proc/$pid/cmdline"
check "capture mode is $mode" sh -c "'$lockferry' --socket '$tmp/nfs1/ctl.sock' status --json | grep -q '\"mode\": \"$([ $mode = bpf ] && echo '\(fentry\|tracepoint\)' || echo '[a-z]*')\"'"
cp "$(dirname "$0")/../data/statd/client-b.lockferry.test.record" "$tmp/nfs1/sm/client-b.lockferry.test"
check "it captured a record" wait_for 10 sh -c "'$lockferry' --store 'dir://$tmp/store' records --node nfs1 --json | grep -q client-b"
check "the file system is read-only for lockferryd" sh -c "awk '\$5 == \"/\" { print \$6 }' /proc/$pid/mountinfo | grep -q '^ro'"
# sm-notify would retry that name (it resolves nowhere) for its whole retry time.
rm "$tmp/nfs1/sm/client-b.lockferry.test"
# A migration through the control socket: replay, then the real sm-notify from the service IP.
expect_rc 0 "it migrated nfs0's records and ran sm-notify" \
  "$lockferry" --socket "$tmp/nfs1/ctl.sock" migrate --from nfs0 --node nfs1 \
  --recognize sm-notify --service-ip 203.0.113.1
check "the client's rpc.statd received SM_NOTIFY from the service IP" \
  wait_for 10 grep -Eq "Received SM_NOTIFY from (203.0.113.1|lfsb-server)" "$tmp/client/statd.log"
check "sm-notify saw the client acknowledge it (the record left sm/ and sm.bak/)" \
  test ! -e "$tmp/nfs1/sm/203.0.113.2" -a ! -e "$tmp/nfs1/sm.bak/203.0.113.2"
# The same recognition by lockferryd itself (recognize = notify): it binds a reserved port on the
# service IP with the CAP_NET_BIND_SERVICE it kept, asks the client's rpcbind for statd's port and
# sends SM_NOTIFY with the next NSM state, which the client's statd logs.
expect_rc 0 "it migrated nfs0's records again and notified the client itself (built-in notifier)" \
  sh -c "'$lockferry' --socket '$tmp/nfs1/ctl.sock' --json migrate --from nfs0 --node nfs1 \
    --recognize notify --service-ip 203.0.113.1 >'$tmp/notify.json'"
nsm_state=$(jq '.recognize.nsm_state' "$tmp/notify.json")
check "the built-in notifier: the client acknowledged, its statd port from its rpcbind" \
  jq -e '.recognize.clients | length == 1 and all(.client == "203.0.113.2" and .status == "acknowledged" and .statd_port > 0)' "$tmp/notify.json"
check "the client's rpc.statd received SM_NOTIFY from the service IP with the notifier's state $nsm_state" \
  wait_for 10 grep -Eq "Received SM_NOTIFY from (203.0.113.1|lfsb-server), state: $nsm_state\$" "$tmp/client/statd.log"
check "it was sent from a reserved port on the service IP" \
  grep -qE "notify: SM_NOTIFY as .* from 203\.0\.113\.1:(6[0-9][0-9]|[7-9][0-9][0-9]|10[0-2][0-9]) " "$tmp/log"
check "the NSM state is kept in statd's state file, as statd's user" \
  test "$(od -An -td4 "$tmp/nfs1/state" | tr -d ' ')" = "$nsm_state" -a "$(stat -c %U "$tmp/nfs1/state")" = statd
check "the acknowledged client left sm/ and sm.bak/" \
  test ! -e "$tmp/nfs1/sm/203.0.113.2" -a ! -e "$tmp/nfs1/sm.bak/203.0.113.2"
# Ganesha's grace period for the service IP, over D-Bus.
expect_rc 0 "it migrated again and asked Ganesha for a grace period (ganesha-grace)" \
  "$lockferry" --socket "$tmp/nfs1/ctl.sock" migrate --from nfs0 --node nfs1 \
  --recognize ganesha-grace --service-ip 203.0.113.1
check "Ganesha started a grace period for the service IP" \
  wait_for 10 grep -q "recovery event .* ip 203.0.113.1" "$tmp/ganesha/ganesha.log"
# A recognition command (fork + exec).
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
# 0x14f (335) is x86's uretprobe: the kernel's return-probe trampoline makes it, not lockferryd's
# code (a child measuring uprobe costs at start), and seccomp lets it through since Linux 6.13;
# libseccomp (and so strace and systemd) on Debian 12 does not know its name.
used.discard('syscall_0x14f')
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
