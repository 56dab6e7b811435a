// SPDX-License-Identifier: Apache-2.0
// The kprobe lock hooks read kernel lockd's function arguments by position (a kprobe sees only
// registers): before they load, lockd's own BTF must show each of those functions taking the
// argument the programs expect at that position, or a changed signature would feed them garbage.
#pragma once

#include "lockferry/result.h"

namespace lockferry::capture {

// Checks the functions whose programs the kprobe set needs (nlmsvc_lock, nlmsvc_unlock,
// nlm_async_call) or, with `optional`, those it can do without (nlm_unlock_files), in
// /sys/kernel/btf/lockd against what bpf/lock_watch.bpf.c reads. Fails when lockd is not loaded
// or has no BTF (its structs' layouts come from it too).
Result<void> check_lockd_functions(bool optional = false);

}  // namespace lockferry::capture
