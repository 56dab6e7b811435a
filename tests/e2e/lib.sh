# SPDX-License-Identifier: Apache-2.0
# Helpers shared by the e2e scenarios: root/skip policy, step narration, assertions, cleanup.
# Sourced by tests/e2e/*.sh and scripts/demo; never executed.

E2E_REPO=$(realpath "$(dirname "${BASH_SOURCE[0]}")/../..")
E2E_CLUSTER=$E2E_REPO/scripts/cluster
# Tests use their own namespace prefix and state dir, one per build dir: they never touch the demo
# testbed, and two people running ctest in their own build dirs do not tear down each other's.
E2E_ID=$(printf '%s' "$(realpath -m "${LOCKFERRY_BUILD_DIR:-$E2E_REPO/build}")" | md5sum | cut -c1-4)
export LF_TESTBED_PREFIX=${LF_TESTBED_PREFIX:-lfe$E2E_ID}
export LF_TESTBED_DIR=${LF_TESTBED_DIR:-/run/lockferry-e2e-$E2E_ID}
E2E_FAILS=0
E2E_CHECKS=0
E2E_T0=$(date +%s%N)

e2e_elapsed() { local ms=$((($(date +%s%N) - E2E_T0) / 1000000)); printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100)); }
e2e_step() { printf '\n\033[1;36m==> [%s] %s\033[0m\n' "$(e2e_elapsed)" "$*"; }
e2e_say() { printf '    %s\n' "$*"; }
e2e_ok() { E2E_CHECKS=$((E2E_CHECKS + 1)); printf '    \033[1;32mok\033[0m   %s\n' "$*"; }
e2e_bad() { E2E_CHECKS=$((E2E_CHECKS + 1)); E2E_FAILS=$((E2E_FAILS + 1)); printf '    \033[1;31mFAIL\033[0m %s\n' "$*"; }
e2e_fatal() { printf '\033[1;31mFATAL: %s\033[0m\n' "$*"; exit 1; }
e2e_check() {   # DESCRIPTION CMD...: records ok/FAIL by CMD's exit status
  local what=$1
  shift
  if "$@" >/dev/null; then e2e_ok "$what"; else e2e_bad "$what"; fi
}

# Privileged scenario policy shared with the bpf tests: skip (exit 77, ctest "Skipped") when not
# root, unless LOCKFERRY_REQUIRE_E2E=1 demands that it runs (CI), in which case fail.
e2e_require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    if [ "${LOCKFERRY_REQUIRE_E2E:-0}" = 1 ]; then
      echo "FAIL: e2e test needs root (network/mount namespaces, NFS daemons) and LOCKFERRY_REQUIRE_E2E=1"
      exit 1
    fi
    echo "SKIP: e2e test needs root (network/mount namespaces, NFS daemons); set LOCKFERRY_REQUIRE_E2E=1 to make this a failure"
    exit 77
  fi
  local tool
  for tool in ip nsenter unshare rpcbind rpc.statd sm-notify ganesha.nfsd rpcinfo showmount; do
    command -v "$tool" >/dev/null || e2e_fatal "'$tool' is missing: run scripts/install-deps"
  done
}

tb() { "$E2E_CLUSTER/$1" "${@:2}"; }
tb_exec() { "$E2E_CLUSTER/exec" "$@"; }

# --- The failover scenarios' vocabulary (failover.sh, auto_failover.sh, keepalived.sh,
# pacemaker.sh): they set svc, export_dir, client_bin, lf_bin and state before using these.
client_ip() { echo "203.0.113.$((100 + $1))"; }
nlm() {   # CLIENT-NUMBER ARGS...
  local k=$1
  shift
  tb_exec "client$k" "$client_bin" --server "$svc" --export "$export_dir" --name "$(client_ip "$k")" "$@"
}
locks_of() { echo "file$1.dat:0:4096:exclusive shared.dat:$(($1 * 1000)):1000:exclusive"; }
count_status() { jq --arg s "$2" '[.locks[] | select(.status == $s)] | length' "$1" 2>/dev/null || echo 0; }
wait_until() {   # SECONDS CMD...
  local secs=$1 i
  shift
  for ((i = 0; i < secs * 10; i++)); do "$@" && return 0; sleep 0.1; done
  return 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%01d s' $(($1 / 1000)) $(($1 % 1000 / 100)); }
lf_on() {   # NODE ARGS...: the lockferry CLI against NODE's lockferryd
  local node=$1
  shift
  "$lf_bin" --socket "$state/nodes/$node/run/lockferry/lockferryd.sock" "$@"
}

# Every client (1..$clients) locks two ranges through $svc and keeps them, listening for SM_NOTIFY;
# their pids go to client_pid[k]. Then nodeA's monitor records must reach the store.
declare -A client_pid
e2e_clients_hold_locks() {
  local k
  e2e_step "every client locks two ranges through $svc and keeps them (listening for SM_NOTIFY)"
  for ((k = 1; k <= clients; k++)); do
    # shellcheck disable=SC2046
    setsid "$E2E_CLUSTER/exec" "client$k" "$client_bin" --server "$svc" --export "$export_dir" \
      --name "$(client_ip "$k")" --state "$state/client$k.json" --listen-notify --reclaim-window 60 --hold-forever \
      lock $(locks_of "$k") >"$state/client$k.out" 2>"$state/client$k.err" &
    client_pid[$k]=$!
  done
  wait_until 30 e2e_all_hold && e2e_ok "every client holds its two locks" || e2e_bad "not every client got its locks"
  wait_until 15 e2e_records_stored && e2e_ok "nodeA's $clients monitor records are in the store" ||
    e2e_bad "nodeA's monitor records did not reach the store"
  # The crash must come after the locks are recorded, or the audit has nothing to compare (a lock
  # granted in the last batch interval before a crash is not in the store: the recorder batches).
  wait_until 15 e2e_locks_stored && e2e_ok "nodeA's $((clients * 2)) lock records are in the store" ||
    e2e_bad "nodeA's lock records did not reach the store"
}
e2e_all_hold() {
  local k
  for ((k = 1; k <= clients; k++)); do [ "$(count_status "$state/client$k.json" held)" -eq 2 ] || return 1; done
}
e2e_records_stored() {
  [ "$("$lf_bin" --store "$store_url" --json records --node nodeA 2>/dev/null | jq length)" -ge "$clients" ]
}
e2e_locks_stored() {
  [ "$("$lf_bin" --store "$store_url" --json locks --node nodeA 2>/dev/null |
    jq --arg e "$export_dir/" '[.[] | select(.manager_comm == "lockd" or (.path | startswith($e)))] | length')" -ge $((clients * 2)) ]
}

e2e_cleanup() {
  local rc=$?
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    echo "E2E_KEEP=1: leaving the testbed up in $LF_TESTBED_DIR (scripts/cluster/down to remove it)"
  else
    "$E2E_CLUSTER/down" >/dev/null 2>&1 || "$E2E_CLUSTER/down"
  fi
  return $rc
}

# A signal must still tear the testbed down: turn it into an exit so the EXIT trap runs.
e2e_trap_cleanup() {
  trap e2e_cleanup EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Prints the closing line ctest and people read, and exits non-zero on any failed check.
e2e_finish() {
  local name=$1
  printf '\n%s: %d passed, %d failed (%s)\n' "$name" $((E2E_CHECKS - E2E_FAILS)) "$E2E_FAILS" "$(e2e_elapsed)"
  [ "$E2E_FAILS" -eq 0 ]
}
