#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The control socket and /metrics of the real lockferryd stay answerable: 1,000 idle control
# connections with lockferryd's descriptor limit set low (accept fails with EMFILE), idle clients
# closed after the request timeout, the control socket answering again once the clients leave,
# and a real scrape answered while 40 slow HTTP clients keep reconnecting.
# usage: connection-limits-test.sh LOCKFERRYD LOCKFERRY
source "$(dirname "$0")/lib.sh"
lockferryd=$1 lockferry=$2
need_root
command -v python3 >/dev/null || skip "python3 not installed"
command -v curl >/dev/null || skip "curl not installed"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
write_config n nfs1 "[metrics]
listen = \"127.0.0.1:$port\""
sock=$tmp/n/ctl.sock
status() { timeout 5 "$lockferry" --socket "$sock" --json status >/dev/null 2>&1; }
# A low descriptor limit (soft and hard), so that idle clients exhaust it.
(ulimit -n 64 && exec "$lockferryd" --config "$tmp/n/lockferry.toml") >"$tmp/log" 2>&1 &
pid=$!
cleanup_hooks+=("kill $pid 2>/dev/null")
check "lockferryd started with 64 descriptors" wait_for 20 status
echo "     lockferryd uses $(ls /proc/$pid/fd | wc -l) descriptors at rest"

# Clients from several processes, each connecting 250 times and sending nothing.
cat >"$tmp/idle.py" <<'PY'
import socket, sys, time
path, count, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
held = []
for _ in range(count):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(path)
    except (BlockingIOError, OSError):
        pass
    held.append(s)
time.sleep(hold)
PY
hogs=()
for i in 1 2 3 4; do python3 "$tmp/idle.py" "$sock" 250 12 & hogs+=($!); done
sleep 1
echo "     lockferryd holds $(ls /proc/$pid/fd | wc -l) descriptors with 1,000 idle clients"
t0=$SECONDS
check "the control socket answers while 1,000 idle clients are connected" \
  wait_for 20 status
echo "     it answered after $((SECONDS - t0)) s"
wait "${hogs[@]}"
check "the control socket answers at once after the clients left" status
check "accept failures were logged, not silent" grep -q "control socket: accept failed" "$tmp/log"

# An idle client is closed after the request timeout (5 s); a client that never reads its answer
# does not keep a slot either.
python3 - "$sock" >"$tmp/idle-client.out" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(15)
t = time.monotonic()
try:
    s.connect(sys.argv[1])
    data = s.recv(100)
    print("closed" if data == b"" else "data", round(time.monotonic() - t, 1))
except OSError as e:
    print("error", e)
PY
read -r verdict took <"$tmp/idle-client.out"
check "an idle client is closed after the request timeout (took ${took} s)" test "$verdict" = closed

# 40 slow HTTP clients: each sends its request head one byte a second, reconnecting when cut off.
cat >"$tmp/slow.py" <<'PY'
import socket, sys, threading, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + seconds
def slow():
    while time.monotonic() < end:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n":
                if time.monotonic() >= end: break
                s.send(bytes([b]))
                time.sleep(1)
        except OSError:
            time.sleep(0.05)
threads = [threading.Thread(target=slow) for _ in range(40)]
for t in threads: t.start()
for t in threads: t.join()
PY
python3 "$tmp/slow.py" "$port" 12 &
slow=$!
sleep 2
ok_scrapes=0
for i in 1 2 3 4 5 6 7 8; do
  if curl -sS --max-time 3 -o "$tmp/scrape" "http://127.0.0.1:$port/metrics" 2>"$tmp/curl.err" &&
    grep -q '^lockferry_build_info' "$tmp/scrape"; then
    ok_scrapes=$((ok_scrapes + 1))
  else
    sed 's/^/     scrape failed: /' "$tmp/curl.err"
  fi
  sleep 1
done
echo "     $ok_scrapes of 8 scrapes answered while 40 slow clients were connected"
check "every scrape is answered while 40 slow clients are connected" test $ok_scrapes = 8
wait $slow
finish
