#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The CLI speaks the control protocol and reads stores and settings: it must not load libbpf (nor
# carry the BPF loaders), so it runs where BPF is unavailable and stays small.
# Usage: cli-links-no-libbpf-test.sh LOCKFERRY_BINARY
set -euo pipefail

cli=$1
needed=$(readelf -d "$cli")
if grep -qi 'libbpf' <<<"$needed"; then
  echo "FAIL: $cli needs libbpf:" >&2
  grep -i 'NEEDED' <<<"$needed" >&2
  exit 1
fi
# ldd also shows what the needed libraries pull in.
libs=$(ldd "$cli")
if grep -qi 'libbpf' <<<"$libs"; then
  echo "FAIL: ldd $cli shows libbpf:" >&2
  echo "$libs" >&2
  exit 1
fi
# No BPF loader code either (a static link of libbpf would not show in ldd).
symbols=$(nm -C "$cli")
if grep -qE ' [TtWw] (bpf_object__|ring_buffer__|lockferry::capture::(start_bpf|LockCapture))' <<<"$symbols"; then
  echo "FAIL: $cli contains BPF loader code:" >&2
  grep -E ' [TtWw] (bpf_object__|ring_buffer__|lockferry::capture::(start_bpf|LockCapture))' <<<"$symbols" | head >&2
  exit 1
fi
echo "ok: $cli links no libbpf and no BPF loader"
