#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The real lockferryd with [metrics] listen: Prometheus scrapes /metrics over loopback TCP and
# sees the record lockferryd just captured; without [metrics] nothing listens.
# usage: daemon-metrics-test.sh LOCKFERRYD LOCKFERRY
source "$(dirname "$0")/lib.sh"
lockferryd=$1 lockferry=$2
need_root
command -v curl >/dev/null || skip "curl not installed"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
write_config nfs1 nfs1 "[metrics]
listen = \"127.0.0.1:$port\""
"$lockferryd" --config "$tmp/nfs1/lockferry.toml" >"$tmp/log" 2>&1 &
pid=$!
cleanup_hooks+=("kill $pid 2>/dev/null")
check "lockferryd started" wait_for 20 test -S "$tmp/nfs1/ctl.sock"
cp "$(dirname "$0")/../data/statd/client-b.lockferry.test.record" "$tmp/nfs1/sm/client-b.lockferry.test"
scrape() { curl -sS --max-time 5 "http://127.0.0.1:$port/metrics"; }
check "/metrics counts the captured record" wait_for 10 sh -c "curl -sS --max-time 5 http://127.0.0.1:$port/metrics | grep -qx 'lockferry_monitor_records{node=\"nfs1\"} 1'"
scrape >"$tmp/metrics"
check "capture mode is inotify" grep -qx 'lockferry_capture_mode{mode="inotify"} 1' "$tmp/metrics"
check "one record written" grep -qx 'lockferry_records_written_total 1' "$tmp/metrics"
check "not fenced" grep -qx 'lockferry_fenced{node="nfs1"} 0' "$tmp/metrics"
check "reconcile has run" grep -q '^lockferry_reconcile_runs_total [1-9]' "$tmp/metrics"
check "served as Prometheus text 0.0.4" sh -c "curl -sS -o /dev/null -w '%{content_type}' http://127.0.0.1:$port/metrics | grep -q 'version=0.0.4'"

# lockferry migrate by this node shows up as the last migration (--force: nfs0 has no records).
"$lockferry" --store "dir://$tmp/store" migrate --from nfs0 --force --node nfs1 --statmon-dir "$tmp/nfs1/sm" --recognize none >/dev/null 2>&1
check "the last migration is exported" sh -c "curl -sS http://127.0.0.1:$port/metrics | grep -q '^lockferry_last_migration_duration_seconds{from=\"nfs0\",to=\"nfs1\"} '"
kill $pid
check "SIGTERM stops it" wait_for 5 sh -c "! kill -0 $pid 2>/dev/null"
check "the port is closed after stop" sh -c "! curl -s --max-time 2 http://127.0.0.1:$port/metrics >/dev/null"
check "lockferryd logged where it serves /metrics" grep -q "serving Prometheus metrics at http://127.0.0.1:$port/metrics" "$tmp/log"
finish
