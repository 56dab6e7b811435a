#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Kernel lockd's own lock throughput with lockferryd on vs off, per lock hook set, side by side in
# one run, in the Debian 6.1 guest (run by scripts/vm; knfsd from tests/vm/knfsd_single.sh): one
# client in a network namespace sends N NLM4 LOCKs (one process, non-adjacent 1-byte ranges of one
# file) and then the N UNLOCKs. Each round runs every side once in a rotated order; a side other
# than "off" starts lockferryd (managers = ["lockd"], locks.hook = the side) first, lets it settle
# 1 s ("off" waits too), and checks its table is empty again after the UNLOCKs.
# Reported per side: median LOCK+UNLOCK wall time and its ratio to the median of "off".
# Usage (inside the guest): knfsd_nlm_throughput.sh BUILD_DIR [--rounds N] [--locks N]
#          [--sides off,kprobe,tp_btf]
set -euo pipefail
build=$(realpath "${1:?usage: knfsd_nlm_throughput.sh BUILD_DIR [options]}")
shift
rounds=3
locks=500
sides=off,kprobe,tp_btf
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --locks) locks=$2; shift 2 ;;
    --sides) sides=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 1 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../vm/knfsd_single.sh
. "$here/../vm/knfsd_single.sh"
svc=192.0.2.10
work=/tmp/lf-knfsd-bench
mkdir -p "$work"
knfsd_start "$svc"
knfsd_client 1
IFS=, read -r -a side_list <<<"$sides"
lock_specs=() unlock_specs=()
for ((i = 0; i < locks; i++)); do
  lock_specs+=("bench.dat:$((i * 2)):1:exclusive")
  unlock_specs+=("bench.dat:$((i * 2)):1")
done
nlm() { ip netns exec lfc1 "$build/tests/tools/lf-nlm-client" --server "$svc" \
  --export "$KNFSD_EXPORT" --name client1 --owner bench --svid 1 "$@" >>"$work/client.log" 2>&1; }
nlm lock bench.dat:0:1:exclusive && nlm unlock bench.dat:0:1  # creates the file, warms up

lfd_pid=""
start_lfd() {   # HOOK
  rm -rf "$work/store" "$work/sock"
  mkdir -p "$work/store"
  printf 'node = "nfs1"\nstore = "dir://%s/store"\n[capture]\nmonitor_dirs = ["%s"]\npin_dir = ""\n[control]\nsocket = "%s/sock"\n[locks]\nmanagers = ["lockd"]\nhook = "%s"\n' \
    "$work" "$KNFSD_SM" "$work" "$1" >"$work/lfd.toml"
  "$build/userspace/lockferryd" --config "$work/lfd.toml" >"$work/lfd-$1.log" 2>&1 &
  lfd_pid=$!
  local i
  for ((i = 0; i < 300; i++)); do [ -S "$work/sock" ] && break; sleep 0.1; done
  [ -S "$work/sock" ] || knfsd_fail "lockferryd ($1) did not start: $(tail -n 5 "$work/lfd-$1.log")"
  "$build/userspace/lockferry" --socket "$work/sock" --json status | jq -r '.locks.mode + ": " + .locks.reason' | cut -c1-120
}
stop_lfd() {
  local left
  left=$("$build/userspace/lockferry" --socket "$work/sock" --json locks | jq length)
  [ "$left" = 0 ] || echo "WARNING: lockferryd's table holds $left locks after the UNLOCKs"
  kill "$lfd_pid"
  wait "$lfd_pid" || true
}
declare -A times
for ((r = 0; r < rounds; r++)); do
  n=${#side_list[@]}
  for ((k = 0; k < n; k++)); do
    side=${side_list[$(((k + r) % n))]}
    [ "$side" = off ] || start_lfd "$side" >/dev/null
    sleep 1
    t0=$(date +%s%N)
    nlm lock "${lock_specs[@]}"
    nlm unlock "${unlock_specs[@]}"
    t1=$(date +%s%N)
    [ "$side" = off ] || stop_lfd
    times[$side]+="$(((t1 - t0) / 1000000)) "
    echo "round $r $side $(((t1 - t0) / 1000000)) ms"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
off=$(median <<<"${times[off]:-}")
printf '%-8s %12s %8s   (%d NLM LOCK + %d UNLOCK, %d rounds; all: ms)\n' side "median ms" ratio \
  "$locks" "$locks" "$rounds"
for side in "${side_list[@]}"; do
  m=$(median <<<"${times[$side]}")
  printf '%-8s %12s %8s   (%s)\n' "$side" "$m" "$(awk -v a="$m" -v b="${off:-0}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')" "${times[$side]% }"
done
