# SPDX-License-Identifier: Apache-2.0
# Shared helpers of the integration tests: a temp dir removed on exit, checks that count.
set -uo pipefail
failures=0
tmp=$(mktemp -d /tmp/lf-integration.XXXXXX)
cleanup_hooks=()
on_exit() {
  local hook pid
  for hook in "${cleanup_hooks[@]}"; do eval "$hook" || true; done
  # Whatever is still running with this test's private directory in its command line was
  # started by this test (a failed check may have left a lockferryd behind).
  for pid in $(grep -lsF "$tmp/" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    [ "$pid" != $$ ] && kill "$pid" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap on_exit EXIT
# A ctest timeout or ^C still stops what the test started.
trap 'exit 143' TERM
trap 'exit 130' INT

pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
skip() { echo "SKIP: $*"; exit 77; }
# check "description" command...   passes when the command succeeds
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
# expect_rc RC "description" command...   passes when the command exits with RC
expect_rc() {
  local want=$1 what=$2; shift 2
  local got
  "$@" >"$tmp/last.out" 2>&1; got=$?
  if [ "$got" = "$want" ]; then pass "$what (exit $got)"; else
    fail "$what: exit $got, expected $want"; sed 's/^/     | /' "$tmp/last.out"; fi
}
need_root() { [ "$(id -u)" = 0 ] || skip "needs root (runs lockferryd)"; }
# wait_for SECONDS command...   polls every 0.1 s
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -ge $deadline ] && return 1; sleep 0.1; done
}
finish() {
  if [ $failures -gt 0 ]; then echo "$failures check(s) failed"; exit 1; fi
  echo "all checks passed"; exit 0
}
# A lockferryd config in inotify mode (no BPF needed) under $tmp/<name>.
write_config() {
  local name=$1 node=$2 extra=${3:-}
  mkdir -p "$tmp/$name/sm"
  cat >"$tmp/$name/lockferry.toml" <<CONF
node = "$node"
store = "dir://$tmp/store"
[capture]
monitor_dirs = ["$tmp/$name/sm"]
mode = "inotify"
pin_dir = ""
reconcile_interval_s = 1
[control]
socket = "$tmp/$name/ctl.sock"
[failover]
statmon_dir = "$tmp/$name/sm"
recognize = "none"
$extra
CONF
}
