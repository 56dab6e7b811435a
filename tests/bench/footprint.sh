#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark 5: lockferryd's footprint — RSS and CPU at idle, and after statd-style creation of N
# monitor records in its watched directory (all recorded into a dir:// store). Prints the ratio
# of RSS at N records to idle RSS and the CPU time spent per record.
#   footprint.sh <lockferryd> [records=100000] [idle_seconds=5]
set -euo pipefail
daemon=$1
n=${2:-100000}
idle=${3:-5}
if [[ $(id -u) != 0 ]]; then echo "SKIP: footprint needs root"; exit 77; fi
root=$(mktemp -d /var/tmp/lockferry-bench-fp-XXXXXX)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$root"; }
trap cleanup EXIT
mkdir -p "$root/sm" "$root/store"
cat >"$root/lockferry.toml" <<CONF
node = "bench"
store = "dir://$root/store"
[capture]
monitor_dirs = ["$root/sm"]
pin_dir = ""
[control]
socket = "$root/ctl.sock"
CONF
"$daemon" --config "$root/lockferry.toml" >"$root/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [[ -S $root/ctl.sock ]] && break; sleep 0.1; done
[[ -S $root/ctl.sock ]] || { echo "lockferryd did not start:"; cat "$root/log"; exit 1; }
tick=$(getconf CLK_TCK)
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$pid/status"; }
hwm_kb() { awk '/^VmHWM/{print $2}' "/proc/$pid/status"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
mode=$(grep -o 'mode [a-z]*' "$root/log" | head -1 || true)

sleep 1
c0=$(cpu_ticks); sleep "$idle"; c1=$(cpu_ticks)
rss_idle=$(rss_kb)
hwm_idle=$(hwm_kb)
idle_pct=$(awk -v d=$((c1 - c0)) -v t="$tick" -v s="$idle" 'BEGIN{printf "%.2f", 100*d/t/s}')

t0=$(date +%s.%N)
line='0100007f 000186b5 00000004 00000010 0a0b0c0d0e0f10111213141516171819'
# Builtins only (printf -v, no subshell per file): 100,000 files in seconds, not minutes.
for ((i = 0; i < n; i++)); do
  printf -v name 'client-%07d' "$i"
  printf '%s %s server\n' "$line" "$name" >"$root/sm/$name"
done
tc=$(date +%s.%N)
stored=0
# Up to 20 minutes for the store to catch up; counting 100,000 names takes a moment, so poll
# once a second.
for _ in $(seq 1200); do
  stored=$(find "$root/store/bench/monitor" -name '*.json' 2>/dev/null | wc -l)
  ((stored >= n)) && break
  sleep 1
done
t1=$(date +%s.%N)
c2=$(cpu_ticks)
rss_n=$(rss_kb)
hwm_n=$(hwm_kb)
echo "footprint: lockferryd ($mode), $n records created statd-style in the watched dir"
printf '%-22s %12s %12s\n' "" "idle" "$n records"
printf '%-22s %12s %12s\n' "RSS (KiB)" "$rss_idle" "$rss_n"
printf '%-22s %12s %12s\n' "peak RSS (KiB)" "$hwm_idle" "$hwm_n"
printf '%-22s %12s %12s\n' "CPU" "$idle_pct %" "$(awk -v d=$((c2 - c1)) -v t="$tick" 'BEGIN{printf "%.2f s", d/t}')"
awk -v a="$rss_n" -v b="$rss_idle" -v d=$((c2 - c1)) -v t="$tick" -v n="$n" -v s="$stored" -v w="$(awk -v x="$t0" -v y="$t1" 'BEGIN{print y-x}')" \
  -v wc="$(awk -v x="$t0" -v y="$tc" 'BEGIN{print y-x}')" \
  'BEGIN{printf "RSS ratio %.2f (%+.0f bytes/record); CPU %.1f us/record; stored %d/%d in %.1f s wall (files created in %.1f s)\n", a/b, (a-b)*1024/n, d/t*1e6/n, s, n, w, wc}'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
((stored >= n)) || { echo "not every record was stored"; exit 1; }
