// SPDX-License-Identifier: Apache-2.0
// Which lock hook sets (capture::LockHook) the lock capture tests run with on this machine: those
// its kernel loads, and those LOCKFERRY_REQUIRE_HOOKS names (vm.bpf_tests requires every one in
// the Debian 6.1 guest), as bpf_env.h does for the monitor-record hook sets.
#pragma once

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <initializer_list>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bpf_env.h"
#include "capture/lock_capture.h"
#include "capture/lock_hook_plan.h"

namespace lockferry::test {

// The kprobe set hooks kernel lockd's functions: where the kernel has the lockd module but
// nothing loaded it yet (the guest), load it, as a knfsd server would have.
inline void load_lockd_module() {
  if (::access("/sys/module/lockd", F_OK) != 0)
    (void)!std::system("modprobe lockd >/dev/null 2>&1");
}

// Empty when lock hook set `hook` loads and attaches here (with kernel lockd as the manager, the
// only one the kprobe set takes, or for the uprobe set a userspace one); else why not. Tried
// once, then cached.
inline const std::string& lock_hook_set_unavailable_reason(capture::LockHook hook) {
  static std::map<capture::LockHook, std::string> reasons;
  if (auto it = reasons.find(hook); it != reasons.end()) return it->second;
  std::string& reason = reasons[hook];
  if (!bpf_unavailable_reason().empty()) return reason = bpf_unavailable_reason();
  if (hook == capture::LockHook::kprobe) load_lockd_module();
  boost::asio::io_context io;
  capture::LockOptions options;
  // The uprobe set is for userspace managers; the others see kernel lockd's locks too.
  options.managers = {hook == capture::LockHook::uprobe ? "lfprobe" : capture::kKernelLockdName};
  options.hook = hook;
  options.pin_dir.clear();
  options.owner_key_path.clear();
  auto started = capture::LockCapture::start(io, options, nullptr, nullptr);
  if (started)
    (*started)->stop();
  else
    reason = std::string(capture::to_string(hook)) +
             " lock hooks unavailable: " + started.error().message;
  return reason;
}

inline bool lock_hook_set_required(capture::LockHook hook) {
  return hook_name_required(capture::to_string(hook));
}

// For INSTANTIATE_TEST_SUITE_P: the lock hook sets of `sets` the kernel loads or that are
// required; a set refused here (kprobe on the 6.18 host) is no test at all, vm.bpf_tests runs it.
inline std::vector<capture::LockHook> lock_hook_sets_to_test(
    std::initializer_list<capture::LockHook> sets) {
  std::vector<capture::LockHook> out;
  for (auto hook : sets) {
    const std::string& why = lock_hook_set_unavailable_reason(hook);
    if (why.empty() || !bpf_unavailable_reason().empty() || lock_hook_set_required(hook)) {
      out.push_back(hook);
      continue;
    }
    static std::set<capture::LockHook> said;
    if (said.insert(hook).second)
      std::cerr << "lockferry_bpf_tests: the tests of the " << capture::to_string(hook)
                << " lock hook set are not run on this kernel (" << why
                << "); vm.bpf_tests runs them in the Debian 6.1 guest\n";
  }
  return out;
}

}  // namespace lockferry::test

// Skips (or, when required, fails) the current test if lock hook set `hook` cannot load here.
#define LOCKFERRY_REQUIRE_LOCK_HOOKS_OR_SKIP(hook)                                          \
  do {                                                                                      \
    LOCKFERRY_REQUIRE_BPF_OR_SKIP();                                                        \
    const std::string& why = ::lockferry::test::lock_hook_set_unavailable_reason(hook);     \
    if (!why.empty()) {                                                                     \
      if (::lockferry::test::lock_hook_set_required(hook))                                  \
        FAIL() << "LOCKFERRY_REQUIRE_HOOKS names " << ::lockferry::capture::to_string(hook) \
               << " but " << why;                                                           \
      GTEST_SKIP() << why;                                                                  \
    }                                                                                       \
  } while (0)
