#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fleet benchmark of recognition: the built-in notifier (recognize = notify) and sm-notify side by
# side, each notifying N simulated clients. A network namespace made here has the service IP
# 10.63.0.1 and the whole range 10.64.0.0/10 local on lo; lf-nsm-fleet answers rpcbind GETPORT
# and SM_NOTIFY for every address of it, from that address. For each N and each side: a fresh
# statd state dir with N records, the fleet started expecting N clients, the sender run; the
# time to the last acknowledgement is the fleet's last SM_NOTIFY answer minus the sender's start.
#   notify_fleet.sh BENCH_BIN LF_NSM_FLEET [SIZES (1000,10000,100000)] [SM_NOTIFY_TIMEOUT_S (120)]
# Needs root; exit 77 without it.
set -euo pipefail
bench=$1 fleet=$2 sizes=${3:-1000,10000,100000} sm_timeout=${4:-120}
if [[ $(id -u) != 0 ]]; then echo "notify_fleet: needs root (network namespace)"; exit 77; fi
service_ip=10.63.0.1
ns=lf-notify-bench-$$
work=$(mktemp -d /var/tmp/lf-notify-bench.XXXXXX)
chmod 755 "$work"
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work" "/etc/netns/$ns"; }
trap cleanup EXIT
# sm-notify canonicalises -v through the resolver (and gives up when that fails): `ip netns exec`
# binds /etc/netns/<ns>/hosts over /etc/hosts, so the service IP has a name in the namespace.
mkdir -p "/etc/netns/$ns"
printf '127.0.0.1 localhost\n%s lf-bench-server\n' "$service_ip" >"/etc/netns/$ns/hosts"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" addr add "$service_ip/32" dev lo
ip -n "$ns" route add local 10.64.0.0/10 dev lo
json_field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }

# One side at one size: prints a table row.
run_side() {
  local n=$1 side=$2 state=$work/state-$1 t0 rc=0
  "$bench" --prepare="$state" --clients="$n" >/dev/null
  rm -f "$work/ready"
  ip netns exec "$ns" "$fleet" --expect "$n" --timeout $((sm_timeout + 30)) --ready "$work/ready" \
    >"$work/fleet.json" &
  local fleet_pid=$!
  for _ in $(seq 100); do [[ -e $work/ready ]] && break; sleep 0.05; done
  t0=$(date +%s%N)
  if [[ $side == built-in ]]; then
    ip netns exec "$ns" /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
      "$bench" --run="$state" --service-ip="$service_ip" --deadline-s="$sm_timeout" \
      >"$work/out.json" || rc=$?
  else
    ip netns exec "$ns" /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
      timeout "$sm_timeout" sm-notify -f -d -m 1 -P "$state" -v "$service_ip" \
      >"$work/out.json" 2>&1 || rc=$?
  fi
  kill -TERM "$fleet_pid" 2>/dev/null || true
  wait "$fleet_pid" || true
  local acked last wall user sys rss pending
  acked=$(json_field "$work/fleet.json" distinct)
  last=$(json_field "$work/fleet.json" last_ns)
  read -r wall user sys rss < <(tail -n1 "$work/time") || true
  pending=$(find "$state/sm.bak" -type f | wc -l)
  local to_last="—"
  if [[ $acked == "$n" ]]; then to_last=$(awk -v a="$last" -v b="$t0" 'BEGIN{printf "%.3f s", (a-b)/1e9}'); fi
  printf '| %s | %s | %s / %s | %s | %s s | %.2f s | %s MB | %s |\n' "$n" "$side" "$acked" "$n" \
    "$to_last" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')" \
    "$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')" \
    "$( ((rc == 0)) && echo "exit 0, $pending pending" || echo "exit $rc, $pending pending")"
  rm -rf "$state"
}

echo "notify_fleet: $(nproc) CPU(s), load $(cut -d' ' -f1-3 /proc/loadavg), sm-notify timeout ${sm_timeout} s"
echo "| clients | sender | acknowledged | start → last acknowledgement | wall | CPU | max RSS | result |"
echo "|---:|---|---:|---:|---:|---:|---:|---|"
IFS=, read -ra ns_sizes <<<"$sizes"
for n in "${ns_sizes[@]}"; do
  run_side "$n" built-in
  run_side "$n" sm-notify
done
