// SPDX-License-Identifier: Apache-2.0
// Which lock hook set the lock capture takes: the kprobe set on kernel lockd's own functions
// where lockd is the only lock manager and the kernel allows kprobes (the Debian 6.1 guest;
// vm.bpf_tests requires it there), else the posix_lock_inode hooks. With the kprobe set, no
// program runs for anyone's fcntl; lockd's real NLM locks through it are vm.lockd_locks' (a knfsd
// server in the guest).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "../support/fcntl_lock.h"
#include "bpf_env.h"
#include "capture/bpf_probes.h"
#include "capture/lock_capture.h"
#include "capture/lock_hook_plan.h"
#include "capture/lockd_functions.h"
#include "lock_hook_env.h"

namespace lockferry::capture {
namespace {

using ::testing::HasSubstr;

struct Started {
  boost::asio::io_context io;
  std::unique_ptr<LockCapture> capture;
  std::string error;

  Started(LockHook hook, std::vector<std::string> managers) {
    LockOptions options;
    options.managers = std::move(managers);
    options.hook = hook;
    options.pin_dir.clear();
    options.owner_key_path.clear();
    auto started = LockCapture::start(io, options, nullptr, nullptr);
    if (started)
      capture = std::move(*started);
    else
      error = started.error().message;
  }
  ~Started() {
    if (capture) capture->stop();
  }
};

// auto with kernel lockd alone: the kprobe set wherever it loads, else tp_btf, saying why.
TEST(LockHookChoice, WithKernelLockdAloneAutoTakesItsKprobesWhereTheKernelAllowsThem) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  const std::string& kprobe_missing = test::lock_hook_set_unavailable_reason(LockHook::kprobe);
  Started s(LockHook::automatic, {kKernelLockdName});
  ASSERT_TRUE(s.capture) << s.error;
  const std::string reason = s.capture->hook_reason();
  if (kprobe_missing.empty()) {
    EXPECT_EQ(s.capture->hook(), LockHook::kprobe) << reason;
    EXPECT_THAT(reason, HasSubstr("nlmsvc_lock + nlmsvc_unlock"));
    EXPECT_THAT(reason, HasSubstr("posix_lock_inode not hooked"));
  } else {
    EXPECT_EQ(s.capture->hook(), LockHook::tp_btf) << reason;
    EXPECT_THAT(reason, HasSubstr("kprobe unavailable: "));
  }
}

// A userspace manager's locks are only seen in posix_lock_inode: the kprobe set is not even tried.
// auto prices the uprobe set before it takes it for a userspace manager: a uprobe's traps
// (breakpoint, single step, return trampoline) cost ~2 us on bare metal, but each may exit to the
// hypervisor in a virtual machine, and every lock call of the manager pays them. Where they cost
// too much, the posix_lock_inode hooks stay. The kprobe set is refused: it would not see Ganesha.
TEST(LockHookChoice, WithAUserspaceManagerAutoTakesTheUprobesOnlyWithinTheirBudget) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  auto cost = measure_fcntl_uprobe_ns();
  ASSERT_TRUE(cost) << cost.error().message;
  EXPECT_GT(*cost, 0.0);  // traps are never free
  std::cout << "a uprobe and a uretprobe on fcntl add " << *cost << " ns per call here\n";
  Started s(LockHook::automatic, {kKernelLockdName, "ganesha.nfsd"});
  ASSERT_TRUE(s.capture) << s.error;
  const std::string reason = s.capture->hook_reason();
  if (s.capture->hook() == LockHook::uprobe) {
    EXPECT_THAT(reason, HasSubstr("us to each of the managers' lock calls here"));
  } else {
    EXPECT_EQ(s.capture->hook(), LockHook::tp_btf);
    EXPECT_THAT(reason, HasSubstr("uprobe not tried: a uprobe and a uretprobe on fcntl add"));
  }
  // A cost far from the budget decides the same way however often it is measured.
  if (*cost > 2 * kUprobeBudgetNs) {
    EXPECT_EQ(s.capture->hook(), LockHook::tp_btf) << reason;
  }
  if (*cost < kUprobeBudgetNs / 2) {
    EXPECT_EQ(s.capture->hook(), LockHook::uprobe) << reason;
  }
  Started refused(LockHook::kprobe, {kKernelLockdName, "ganesha.nfsd"});
  EXPECT_FALSE(refused.capture);
  EXPECT_THAT(refused.error, HasSubstr("sees only kernel lockd's locks"));
}

// The uprobe set sees kernel lockd's locks only through lockd's kprobes: with lockd configured it
// takes them along where lockd is loaded (the guest), needs none where this kernel cannot have
// lockd (the host: no modules, not built in), and is refused where lockd could still be loaded.
TEST(LockHookChoice, TheUprobeSetCoversKernelLockdThroughItsKprobesOrNotAtAll) {
  LOCKFERRY_REQUIRE_LOCK_HOOKS_OR_SKIP(LockHook::uprobe);
  test::load_lockd_module();
  const LockdPresence lockd = lockd_presence();
  Started s(LockHook::uprobe, {kKernelLockdName, "ganesha.nfsd"});
  switch (lockd.state) {
    case LockdPresence::State::loaded:
      ASSERT_TRUE(s.capture) << s.error;
      EXPECT_THAT(s.capture->hook_reason(), HasSubstr("kernel lockd's locks through its kprobes"));
      break;
    case LockdPresence::State::absent:
      ASSERT_TRUE(s.capture) << s.error;
      EXPECT_THAT(s.capture->hook_reason(),
                  HasSubstr("kernel lockd needs no hook: it is not in this kernel"));
      break;
    case LockdPresence::State::loadable:
      EXPECT_FALSE(s.capture);
      EXPECT_THAT(s.error, HasSubstr("may be loaded later"));
      break;
  }
  // Without lockd configured, lockd's kprobes never load.
  Started ganesha(LockHook::uprobe, {"ganesha.nfsd"});
  ASSERT_TRUE(ganesha.capture) << ganesha.error;
  EXPECT_THAT(ganesha.capture->hook_reason(), ::testing::Not(HasSubstr("kernel lockd")));
}

class LockdKprobeHooks : public ::testing::TestWithParam<LockHook> {};

// The kprobe set alone: lockd's functions hooked, posix_lock_inode not, and a manager list that
// it cannot see is refused on reload (the running capture keeps lockd).
TEST_P(LockdKprobeHooks, HookOnlyLockdsFunctionsAndRefuseManagersTheyCannotSee) {
  LOCKFERRY_REQUIRE_LOCK_HOOKS_OR_SKIP(GetParam());
  Started s(GetParam(), {kKernelLockdName});
  ASSERT_TRUE(s.capture) << s.error;
  EXPECT_EQ(s.capture->hook(), LockHook::kprobe);
  const std::string reason = s.capture->hook_reason();
  EXPECT_THAT(reason, HasSubstr("nlm_async_call (blocked locks granted)"));
  EXPECT_THAT(reason, HasSubstr("posix_lock_inode not hooked"));
  EXPECT_EQ(s.capture->client_names().source, "nlm_host");  // lockd's BTF: client names

  // Another process's lock: nothing runs for it (no manager hit, no event).
  const std::string path = "/tmp/lockferry-lockd-hooks-" + std::to_string(::getpid());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(test::set_lock(fd, F_SETLK, F_WRLCK, 0, 10));
  ASSERT_TRUE(test::set_lock(fd, F_SETLK, F_UNLCK, 0, 10));
  ::close(fd);
  ::unlink(path.c_str());
  s.capture->poll();
  EXPECT_EQ(s.capture->counters().hits, 0u);
  EXPECT_EQ(s.capture->counters().changes, 0u);

  auto reload = s.capture->set_managers({kKernelLockdName, "ganesha.nfsd"}, {});
  ASSERT_FALSE(reload);
  EXPECT_THAT(reload.error().message, HasSubstr("see only kernel lockd's locks"));
}

INSTANTIATE_TEST_SUITE_P(Hooks, LockdKprobeHooks,
                         ::testing::ValuesIn(test::lock_hook_sets_to_test({LockHook::kprobe})),
                         [](const auto& info) { return std::string(to_string(info.param)); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LockdKprobeHooks);

}  // namespace
}  // namespace lockferry::capture
