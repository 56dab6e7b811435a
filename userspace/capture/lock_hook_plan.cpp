// SPDX-License-Identifier: Apache-2.0
// The order of lock hook sets; see lock_hook_plan.h.
#include "capture/lock_hook_plan.h"

#include <fmt/format.h>

namespace lockferry::capture {
namespace {

// The managers the kprobe set cannot see, for messages.
std::vector<std::string> userspace_managers(const std::vector<std::string>& managers) {
  std::vector<std::string> out;
  for (const auto& m : managers)
    if (m != kKernelLockdName) out.push_back(m);
  return out;
}

}  // namespace

bool kprobe_hooks_cover(const std::vector<std::string>& managers) {
  return !managers.empty() && userspace_managers(managers).empty();
}

Result<LockHookPlan> plan_lock_hooks(LockHook requested, const std::vector<std::string>& managers,
                                     const Result<double>& uprobe_ns) {
  const auto others = userspace_managers(managers);
  if (requested == LockHook::kprobe && !kprobe_hooks_cover(managers))
    return make_error(
        "locks.hook = kprobe sees only kernel lockd's locks, but the lock managers include {}: "
        "use hook = auto (or tp_btf) or managers = [\"lockd\"]",
        fmt::join(others, ", "));
  if (requested != LockHook::automatic) return LockHookPlan{{requested}, {}};
  if (kprobe_hooks_cover(managers))
    return LockHookPlan{{LockHook::kprobe, LockHook::tp_btf, LockHook::tracepoint}, {}};
  // Userspace managers: uprobes in their processes, with lockd's kprobes when lockd needs them
  // (the capture refuses the set where it cannot see lockd's locks), where their traps are cheap.
  if (uprobe_ns && *uprobe_ns <= kUprobeBudgetNs)
    return LockHookPlan{{LockHook::uprobe, LockHook::tp_btf, LockHook::tracepoint}, {}};
  return LockHookPlan{
      {LockHook::tp_btf, LockHook::tracepoint},
      uprobe_ns
          ? fmt::format("uprobe not tried: a uprobe and a uretprobe on fcntl add {:.1f} us to "
                        "every lock call of {} here, over the {:.0f} us budget",
                        *uprobe_ns / 1000, fmt::join(others, ", "), kUprobeBudgetNs / 1000)
          : "uprobe not tried: " + uprobe_ns.error().message};
}

}  // namespace lockferry::capture
