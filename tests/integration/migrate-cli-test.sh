#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `lockferry migrate` as an operator runs it, against a dir:// and a sqlite:// store: a node the
# store has never heard of (a typo) is an error naming the nodes it knows (exit 1, nothing
# fenced, nothing recorded) unless --force; two migrations of one node started 0-30 ms apart:
# exactly one replays, the other exits 1 naming it. usage: migrate-cli-test.sh LOCKFERRY
source "$(dirname "$0")/lib.sh"
lockferry=$1
races=10

# dir:// store DIR gets one monitor record for each NODE (the documented layout, docs/stores.md).
seed() {
  local dir=$1 node; shift
  for node in "$@"; do
    mkdir -p "$dir/$node/monitor"
    cat >"$dir/$node/monitor/client-$node.json" <<DOC
{"format": 1, "node": "$node", "file_name": "client-$node", "records": [{"node": "$node",
 "epoch": 0, "file_name": "client-$node", "first_seen_ns": 1, "last_seen_ns": 2,
 "addr": "0100007f", "prog": 100021, "vers": 4, "proc": 16,
 "priv": "00000000000000000000000000000000", "mon_name": "client-$node", "my_name": "server1",
 "raw": "0100007f 000186b5 00000004 00000010 00000000000000000000000000000000 client-$node server1\n"}]}
DOC
  done
}
# migrate STORE FROM TO SM [OPTION...]
migrate() {
  local store=$1 from=$2 to=$3 sm=$4; shift 4
  mkdir -p "$sm"
  "$lockferry" --store "$store" migrate --from "$from" --node "$to" --statmon-dir "$sm" \
    --recognize none "$@"
}
race_nodes=()
for i in $(seq $races); do race_nodes+=("race$i"); done
seed "$tmp/seed" nodeA nodeC "${race_nodes[@]}"

for store in "dir://$tmp/dir-store" "sqlite://$tmp/sqlite/store.db"; do
  kind=${store%%:*}
  expect_rc 0 "$kind: the store is filled" "$lockferry" store migrate-data --from "dir://$tmp/seed" --to "$store"

  # --- a typo ---------------------------------------------------------------------------------
  expect_rc 1 "$kind: migrate --from a node the store never heard of" \
    migrate "$store" nodeAA nodeB "$tmp/$kind-sm-typo"
  check "$kind: ... says so and names the nodes the store knows" \
    grep -q "node nodeAA is unknown to the store.*The store knows these nodes: nodeA, nodeC, race1" "$tmp/last.out"
  check "$kind: ... fenced nothing and recorded no migration" \
    sh -c "! '$lockferry' --store '$store' nodes --json | grep -q nodeAA && ! '$lockferry' --store '$store' migrations --json | grep -q nodeAA"
  expect_rc 0 "$kind: --force adopts it on purpose" \
    migrate "$store" nodeAA nodeB "$tmp/$kind-sm-typo" --force
  expect_rc 0 "$kind: a node the store knows needs no --force" \
    migrate "$store" nodeA nodeB "$tmp/$kind-sm-a"

  # --- two adopters, one node -----------------------------------------------------------------
  one_winner=0
  for node in "${race_nodes[@]}"; do
    migrate "$store" "$node" nodeB "$tmp/$kind-$node-b" >"$tmp/$kind-$node-b.out" 2>&1 &
    b=$!
    sleep "0.0$((RANDOM % 3))$((RANDOM % 10))"
    migrate "$store" "$node" nodeC "$tmp/$kind-$node-c" >"$tmp/$kind-$node-c.out" 2>&1 &
    c=$!
    wait $b; rc_b=$?
    wait $c; rc_c=$?
    replayed=$(ls "$tmp/$kind-$node-b" "$tmp/$kind-$node-c" | grep -c "client-$node")
    if [ "$rc_b$rc_c" = 01 ] && [ "$replayed" = 1 ] && grep -q "was already adopted by nodeB" "$tmp/$kind-$node-c.out"; then
      one_winner=$((one_winner + 1))
    elif [ "$rc_b$rc_c" = 10 ] && [ "$replayed" = 1 ] && grep -q "was already adopted by nodeC" "$tmp/$kind-$node-b.out"; then
      one_winner=$((one_winner + 1))
    else
      echo "     | $node: exit codes $rc_b (nodeB) $rc_c (nodeC), replayed by $replayed:"
      sed 's/^/     | /' "$tmp/$kind-$node-b.out" "$tmp/$kind-$node-c.out"
    fi
  done
  check "$kind: $one_winner of $races races had exactly one adopter; the other was told who" \
    test "$one_winner" = "$races"
done
finish
