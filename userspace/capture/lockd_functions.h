// SPDX-License-Identifier: Apache-2.0
// The kprobe lock hooks read kernel lockd's function arguments by position (a kprobe sees only
// registers): before they load, lockd's own BTF must show each of those functions taking the
// argument the programs expect at that position, or a changed signature would feed them garbage.
#pragma once

#include <string>

#include "lockferry/result.h"

namespace lockferry::capture {

// Checks the functions whose programs the kprobe set needs (nlmsvc_lock, nlmsvc_unlock,
// nlm_async_call) or, with `optional`, those it can do without (nlm_unlock_files), in
// /sys/kernel/btf/lockd against what bpf/lock_watch.bpf.c reads. Fails when lockd is not loaded
// or has no BTF (its structs' layouts come from it too).
Result<void> check_lockd_functions(bool optional = false);

// Whether kernel lockd runs in this kernel or ever can: the uprobe lock hook set leaves lockd's
// locks to its kprobes, which can only attach to a loaded lockd, so it is complete only when lockd
// is loaded (kprobes) or cannot be (none needed).
struct LockdPresence {
  enum class State { loaded, loadable, absent } state;
  std::string why;  // for logs: what showed it
};

// From /sys/module/lockd, /proc/modules (a kernel without module support), the running kernel's
// modules.dep and modules.builtin, then /boot/config-<release>; "loadable" when nothing rules
// lockd out (e.g. a sandbox that hides /lib/modules). `root` prefixes every path (tests).
LockdPresence lockd_presence(const std::string& root = "");

}  // namespace lockferry::capture
