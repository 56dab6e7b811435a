// SPDX-License-Identifier: Apache-2.0
// Which lock hook sets the lock capture tries, cheapest first, for the configured lock managers:
// the kprobe set on kernel lockd's own functions and the uprobe set in the userspace managers'
// processes cost the rest of the machine nothing; kprobe sees only kernel lockd's locks, so it
// is tried only when lockd is the one manager configured, and uprobe sees lockd's only through
// the same kprobes, so the capture refuses it where lockd may run but is not loaded.
#pragma once

#include <string>
#include <vector>

#include "capture/lock_capture.h"
#include "lockferry/result.h"

namespace lockferry::capture {

// Kernel lockd's process name (a kernel thread: its locks come from its NLM calls).
inline constexpr const char* kKernelLockdName = "lockd";

struct LockHookPlan {
  std::vector<LockHook> order;  // tried in this order; the first that loads and attaches wins
  std::string skipped;          // why a cheaper set is not tried ("" when none is skipped)
};

// A uprobe and a uretprobe on fcntl may add this much to every lock call of a userspace manager
// before auto prefers posix_lock_inode (which costs each lock call of every process ~35 ns, the
// manager's ~1 us): 2 % of the ~200 us an NLM LOCK takes NFS-Ganesha on this project's machines.
inline constexpr double kUprobeBudgetNs = 4000;

// The sets `requested` means for `managers`: auto -> kprobe (lockd alone), or uprobe (userspace
// managers) when `uprobe_ns` (measure_fcntl_uprobe_ns: an error says why it is unknown) is within
// kUprobeBudgetNs, then tp_btf, tracepoint; any other -> that one. Asking for kprobe with a
// manager other than lockd is an error: its locks would never be seen.
Result<LockHookPlan> plan_lock_hooks(LockHook requested, const std::vector<std::string>& managers,
                                     const Result<double>& uprobe_ns);

// Whether the kprobe set sees every lock of `managers`: they are kernel lockd only.
bool kprobe_hooks_cover(const std::vector<std::string>& managers);

}  // namespace lockferry::capture
