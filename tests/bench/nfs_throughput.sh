#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The NFS server's own lock throughput with lockferryd on vs off, side by side in one run:
# NFS-Ganesha (tests/tools/ganesha-loopback.sh) in a server namespace, lf-nlm-client in a client
# namespace sending N NLM4 LOCKs (one process, non-adjacent 1-byte ranges of one file) and then
# the N UNLOCKs. Each round runs every side once, in a rotated order (interleaved, so a busy
# machine shifts all sides alike); a side other than "off" starts lockferryd in the server
# namespace first (and lets it settle for --settle-ms, as "off" waits too) and stops it after.
# Reported: per side the median wall time of LOCK+UNLOCK, NLM calls per second, the ratio to
# "off" (median of the per-round ratios), and the CPU time lockferryd itself used meanwhile
# (utime+stime: the recording's own cost, which the machine's load does not inflate much).
#
# Usage: nfs_throughput.sh LF_NLM_CLIENT LOCKFERRYD LOCKFERRY [--rounds N] [--locks N]
#          [--sides off,auto,fanotify,nolocks,tp_btf[,auto-before,fanotify-before]]
#          [--before LOCKFERRYD]
#   auto / fanotify: lockferryd with capture.mode = auto / fanotify, lock capture on
#   nolocks: lockferryd with capture.mode = auto and lock capture off
#   tp_btf: lockferryd with capture.mode = auto and locks.hook = tp_btf (auto takes uprobe here)
#   *-before: the same with the LOCKFERRYD given by --before (an older build, for before/after)
# Exit: 0 done (and, for every side with lockferryd, the lock table empty again after the
# UNLOCKs), 1 failed, 77 skipped (not root / tools missing) unless LOCKFERRY_REQUIRE_E2E=1.
set -euo pipefail

USAGE="usage: $0 LF_NLM_CLIENT LOCKFERRYD LOCKFERRY [options]"
CLIENT_BIN=$(realpath "${1:?$USAGE}")
DAEMON_BIN=$(realpath "${2:?$USAGE}")
CLI_BIN=$(realpath "${3:?$USAGE}")
shift 3
ROUNDS=3
LOCKS=2000
SIDES=off,auto,fanotify
BEFORE_BIN=
SETTLE_MS=1000
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --locks) LOCKS=$2; shift 2 ;;
    --sides) SIDES=$2; shift 2 ;;
    --before) BEFORE_BIN=$(realpath "$2"); shift 2 ;;
    --settle-ms) SETTLE_MS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 1 ;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
BED=$HERE/../tools/ganesha-loopback.sh

skip() {
  if [ "${LOCKFERRY_REQUIRE_E2E:-0}" = 1 ]; then
    echo "FAIL: $* (LOCKFERRY_REQUIRE_E2E=1, so this may not be skipped)" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
  exit 77
}
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (namespaces, NFS daemons, BPF)"
for tool in ganesha.nfsd rpc.statd rpcbind nsenter unshare ip jq; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (run scripts/install-deps)"
done
[ -n "$(find /usr/lib /usr/lib64 -name libfsalvfs.so 2>/dev/null | head -1)" ] ||
  skip "nfs-ganesha-vfs is not installed (run scripts/install-deps)"
IFS=, read -r -a SIDE_LIST <<<"$SIDES"
for side in "${SIDE_LIST[@]}"; do
  case $side in
    off | auto | fanotify | nolocks | tp_btf) ;;
    auto-before | fanotify-before) [ -n "$BEFORE_BIN" ] || fail "side $side needs --before" ;;
    *) fail "unknown side '$side'" ;;
  esac
done

export LF_LOOP_DIR
LF_LOOP_DIR=$(mktemp -d /tmp/lf-nfs-bench.XXXXXX)
export LF_LOOP_PREFIX=lfnb$$
export LF_LOOP_GRACE=2
eval "$("$BED" env)"
SOCKET=$LF_LOOP_DIR/lockferryd.sock
DAEMON_PID=

stop_lockferryd() {
  [ -n "$DAEMON_PID" ] || return 0
  kill -TERM "$DAEMON_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$DAEMON_PID" 2>/dev/null || true
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=
}

cleanup() {
  local rc=$?
  stop_lockferryd # by its pid only
  "$BED" stop >/dev/null 2>&1 || true
  if [ $rc -eq 0 ]; then rm -rf "$LF_LOOP_DIR"; else echo "--- logs kept in $LF_LOOP_DIR" >&2; fi
}
trap cleanup EXIT

# start_lockferryd BINARY SIDE: lockferryd in the server namespace; returns once it answers
# with its lock capture running and tracking Ganesha (side nolocks: capture = auto, no lock
# capture, which isolates what recording the locks costs from the rest of lockferryd).
start_lockferryd() {
  local bin=$1 mode=$2 locks=true hook=auto status=
  [ "$mode" = nolocks ] && mode=auto locks=false
  [ "$mode" = tp_btf ] && mode=auto hook=tp_btf
  rm -rf "$LF_LOOP_DIR/store"
  mkdir -p "$LF_LOOP_DIR/store"
  cat >"$LF_LOOP_DIR/lockferryd.toml" <<CONF
node = "lfloop-server"
store = "dir://$LF_LOOP_DIR/store"
[capture]
mode = "$mode"
monitor_dirs = ["/var/lib/nfs/sm"]
pin_dir = ""
[control]
socket = "$SOCKET"
[locks]
enabled = $locks
hook = "$hook"
managers = ["ganesha.nfsd"]
CONF
  # setsid + nsenter exec without forking: $! is lockferryd itself.
  setsid nsenter -t "$(cat "$LF_LOOP_DIR/server/holder.pid")" -m -u -n -- "$bin" \
    --config "$LF_LOOP_DIR/lockferryd.toml" </dev/null >>"$LF_LOOP_DIR/lockferryd.log" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 100); do
    status=$("$BED" server "$CLI_BIN" --socket "$SOCKET" status --json 2>/dev/null) || true
    if [ -n "$status" ] && { [ "$locks" = false ] || jq -e '.locks.managers | length > 0' <<<"$status" >/dev/null; }; then
      return 0
    fi
    sleep 0.1
  done
  fail "lockferryd ($bin, mode $mode) did not start its lock capture: $status"
}

locks_held() {
  "$BED" server "$CLI_BIN" --socket "$SOCKET" locks --json | jq length
}

# The N ranges as lf-nlm-client arguments: f1:0:1 f1:2:1 ... (non-adjacent: nothing merges).
RANGES=()
for ((i = 0; i < LOCKS; i++)); do RANGES+=("bench:$((2 * i)):1:exclusive"); done
UNLOCKS=()
for ((i = 0; i < LOCKS; i++)); do UNLOCKS+=("bench:$((2 * i)):1"); done

nlm() {
  "$BED" client "$CLIENT_BIN" --server "$SERVER_IP" --export "$EXPORT" --name "$CLIENT_IP" \
    --owner lfbench --svid 9 --timeout-ms 10000 "$@" >/dev/null 2>>"$LF_LOOP_DIR/client.err"
}

# lockferryd's CPU time so far in ms (0 without lockferryd).
daemon_cpu_ms() {
  [ -n "$DAEMON_PID" ] || { echo 0; return; }
  awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$DAEMON_PID/stat"
}

# Bytes lockferryd has written so far (write syscalls: its store writes and logs).
daemon_wchar() {
  [ -n "$DAEMON_PID" ] || { echo 0; return; }
  awk '$1 == "wchar:" {print $2}' "/proc/$DAEMON_PID/io"
}

# One side: LOCK all, then UNLOCK all; prints the milliseconds both took and lockferryd's CPU
# milliseconds and written KiB meanwhile.
measure() {
  local t0 t1 c0 w0
  sleep "$(awk -v ms="$SETTLE_MS" 'BEGIN {print ms / 1000}')"
  c0=$(daemon_cpu_ms)
  w0=$(daemon_wchar)
  t0=$(date +%s%N)
  nlm lock "${RANGES[@]}" || fail "NLM LOCK failed (see $LF_LOOP_DIR/client.err)"
  nlm unlock "${UNLOCKS[@]}" || fail "NLM UNLOCK failed"
  t1=$(date +%s%N)
  sleep 0.2 # the last batch interval (75 ms) is written, too
  echo "$(((t1 - t0) / 1000000)) $(($(daemon_cpu_ms) - c0)) $((($(daemon_wchar) - w0) / 1024))"
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

echo "## NFS server lock throughput, lockferryd on vs off ($(date -u '+%F %H:%M UTC'))"
echo "machine: $(nproc) CPU(s), kernel $(uname -r), $(uptime)"
echo "$LOCKS NLM4 LOCK + $LOCKS UNLOCK per side and round, $ROUNDS rounds, sides: $SIDES"
"$BED" start >/dev/null 2>&1 || fail "the Ganesha bed did not start (see $LF_LOOP_DIR/log)"
for _ in $(seq 100); do grep -q "NOT IN GRACE" "$LOG_DIR/ganesha.log" && break; sleep 0.2; done
nlm lock bench:0:1 && nlm unlock bench:0:1 # warm up: file created, client monitored by statd

declare -A TIMES CPU KIB RATIOS
n=${#SIDE_LIST[@]}
for ((round = 0; round < ROUNDS; round++)); do
  declare -A THIS=()
  for ((k = 0; k < n; k++)); do
    side=${SIDE_LIST[$(((k + round) % n))]}
    bin=$DAEMON_BIN
    [[ $side == *-before ]] && bin=$BEFORE_BIN
    [ "$side" = off ] || start_lockferryd "$bin" "${side%-before}"
    read -r ms cpu kib <<<"$(measure)"
    if [ "$side" = nolocks ]; then
      stop_lockferryd
    elif [ "$side" != off ]; then
      left=
      for _ in $(seq 50); do
        left=$(locks_held 2>/dev/null) || left=?
        [ "$left" = 0 ] && break
        sleep 0.1
      done
      [ "$left" = 0 ] || fail "side $side: lockferryd still holds $left locks after the UNLOCKs"
      stop_lockferryd
    fi
    THIS[$side]=$ms
    TIMES[$side]+="$ms "
    CPU[$side]+="$cpu "
    KIB[$side]+="$kib "
    echo "round $((round + 1)) $side: $ms ms, lockferryd CPU $cpu ms, wrote $kib KiB"
  done
  if [ -n "${THIS[off]:-}" ]; then
    for side in "${SIDE_LIST[@]}"; do
      RATIOS[$side]+="$(awk -v a="${THIS[$side]}" -v b="${THIS[off]}" 'BEGIN {printf "%.3f", a / b}') "
    done
  fi
done

med_of() { tr ' ' '\n' <<<"$1" | grep -v '^$' | median; }
printf '\n| side | LOCK+UNLOCK ms: median (all) | NLM calls/s | ratio to off: median (all) | lockferryd CPU ms: median (all) | lockferryd wrote KiB: median |\n'
printf '|---|---:|---:|---:|---:|---:|\n'
for side in "${SIDE_LIST[@]}"; do
  med=$(med_of "${TIMES[$side]}")
  rate=$(awk -v n="$LOCKS" -v ms="$med" 'BEGIN {printf "%.0f", 2 * n * 1000 / ms}')
  ratio=-
  [ -n "${RATIOS[$side]:-}" ] && ratio="$(med_of "${RATIOS[$side]}") (${RATIOS[$side]% })"
  printf '| %s | %s (%s) | %s | %s | %s (%s) | %s |\n' "$side" "$med" "${TIMES[$side]% }" "$rate" \
    "$ratio" "$(med_of "${CPU[$side]}")" "${CPU[$side]% }" "$(med_of "${KIB[$side]}")"
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
