#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The example keepalived.conf in docs/integration.md passes `keepalived --config-test`.
# usage: keepalived-conf-test.sh DOCS_INTEGRATION_MD
source "$(dirname "$0")/lib.sh"
doc=$1
command -v keepalived >/dev/null || skip "keepalived not installed (apt-get install keepalived)"
awk '/^# \/etc\/keepalived\/keepalived.conf on nfs2/{f=1} f&&/^```/{exit} f' "$doc" >"$tmp/keepalived.conf"
check "the example was found in $doc" grep -q "vrrp_instance" "$tmp/keepalived.conf"
check "the example uses lockferry-notify" grep -q "lockferry-notify --from nfs1" "$tmp/keepalived.conf"
keepalived --config-test -f "$tmp/keepalived.conf" >"$tmp/out" 2>&1; rc=$?
cat "$tmp/out"
check "keepalived --config-test accepts it (exit $rc)" test $rc = 0
# And it really checks: a broken copy is refused.
sed 's/virtual_router_id 51/virtual_router_id 999/' "$tmp/keepalived.conf" >"$tmp/bad.conf"
check "keepalived --config-test refuses a broken copy" sh -c "! keepalived --config-test -f '$tmp/bad.conf' >/dev/null 2>&1"
finish
