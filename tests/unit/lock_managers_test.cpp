// SPDX-License-Identifier: Apache-2.0
// Finding lock manager processes by name in a /proc tree, and checking configured names.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "capture/lock_capture.h"
#include "capture/lock_hook_plan.h"
#include "dir_store_test_util.h"

namespace lockferry::capture {
namespace {

using lockferry::testing::TempDir;
using lockferry::testing::write_raw_file;
using ::testing::HasSubstr;

void fake_process(const TempDir& proc, const std::string& pid, const std::string& comm) {
  std::filesystem::create_directories(proc / pid);
  write_raw_file(proc / (pid + "/comm"), comm + "\n");
}

TEST(LockManagers, FoundByExactProcessNameSortedByPid) {
  TempDir proc;
  fake_process(proc, "900", "ganesha.nfsd");
  fake_process(proc, "12", "lockd");
  fake_process(proc, "13", "lockdx");       // not a prefix match
  fake_process(proc, "14", "ganesha.nfs");  // nor a truncation
  fake_process(proc, "15", "bash");
  fake_process(proc, "self", "ganesha.nfsd");        // not a pid
  fake_process(proc, "77", "lockd");                 // our own pid: excluded
  std::filesystem::create_directories(proc / "16");  // a process that exited mid-scan: no comm
  const auto found = find_manager_processes(proc.path(), {"lockd", "ganesha.nfsd"}, 77);
  EXPECT_EQ(found, (std::vector<ManagerProcess>{{12, "lockd"}, {900, "ganesha.nfsd"}}));
  EXPECT_TRUE(find_manager_processes(proc / "missing", {"lockd"}).empty());
}

TEST(LockManagers, NamesMustFitTheKernelsProcessName) {
  EXPECT_TRUE(check_manager_names({"lockd", "ganesha.nfsd"}));
  EXPECT_THAT(check_manager_names({"a-very-long-daemon-name"}).error().message,
              HasSubstr("use 'a-very-long-dae'"));
  EXPECT_FALSE(check_manager_names({""}));
  EXPECT_FALSE(check_manager_names({"a/b"}));
  EXPECT_FALSE(check_manager_names(std::vector<std::string>(17, "x")));
}

TEST(LockManagers, HookNames) {
  EXPECT_EQ(*lock_hook_from_string("tp_btf"), LockHook::tp_btf);
  EXPECT_EQ(*lock_hook_from_string("tracepoint"), LockHook::tracepoint);
  EXPECT_EQ(*lock_hook_from_string("kprobe"), LockHook::kprobe);
  EXPECT_EQ(*lock_hook_from_string("uprobe"), LockHook::uprobe);
  EXPECT_EQ(*lock_hook_from_string("auto"), LockHook::automatic);
  EXPECT_THAT(lock_hook_from_string("fentry").error().message,
              HasSubstr("auto, uprobe, kprobe, tp_btf or tracepoint"));
}

// What a uprobe on fcntl costs on bare metal (~2 us) and in this project's nested VMs (~40 us).
const Result<double> kCheapUprobes = 2000.0;
const Result<double> kDearUprobes = 40000.0;

// The kprobe set on kernel lockd's functions and the uprobe set in the userspace managers cost
// other processes nothing: auto tries kprobe first when lockd is the one manager, else uprobe
// (which takes lockd's kprobes along where lockd runs: the capture refuses it where it cannot).
TEST(LockHookPlan, AutoTriesTheHooksThatCostOtherProcessesNothingFirst) {
  auto lockd_only = plan_lock_hooks(LockHook::automatic, {"lockd"}, kCheapUprobes);
  ASSERT_TRUE(lockd_only);
  EXPECT_EQ(lockd_only->order,
            (std::vector<LockHook>{LockHook::kprobe, LockHook::tp_btf, LockHook::tracepoint}));
  EXPECT_EQ(lockd_only->skipped, "");

  auto both = plan_lock_hooks(LockHook::automatic, {"lockd", "ganesha.nfsd"}, kCheapUprobes);
  ASSERT_TRUE(both);
  EXPECT_EQ(both->order,
            (std::vector<LockHook>{LockHook::uprobe, LockHook::tp_btf, LockHook::tracepoint}));
  EXPECT_EQ(both->skipped, "");
  auto ganesha = plan_lock_hooks(LockHook::automatic, {"ganesha.nfsd"}, kCheapUprobes);
  ASSERT_TRUE(ganesha);
  EXPECT_EQ(ganesha->order, both->order);

  // Where the uprobes' traps cost more than the budget, or their cost is unknown, posix_lock_inode.
  auto dear = plan_lock_hooks(LockHook::automatic, {"lockd", "ganesha.nfsd"}, kDearUprobes);
  ASSERT_TRUE(dear);
  EXPECT_EQ(dear->order, (std::vector<LockHook>{LockHook::tp_btf, LockHook::tracepoint}));
  EXPECT_THAT(dear->skipped, HasSubstr("uprobe not tried: a uprobe and a uretprobe on fcntl add "
                                       "40.0 us to every lock call of ganesha.nfsd here, over "
                                       "the 4 us budget"));
  auto unknown = plan_lock_hooks(LockHook::automatic, {"ganesha.nfsd"},
                                 make_error("the kernel has no uprobe PMU"));
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->order, dear->order);
  EXPECT_EQ(unknown->skipped, "uprobe not tried: the kernel has no uprobe PMU");
  // An explicit uprobe is taken whatever it costs.
  auto explicit_uprobe = plan_lock_hooks(LockHook::uprobe, {"ganesha.nfsd"}, kDearUprobes);
  ASSERT_TRUE(explicit_uprobe);
  EXPECT_EQ(explicit_uprobe->order, std::vector<LockHook>{LockHook::uprobe});
  EXPECT_FALSE(kprobe_hooks_cover({"lockd", "ganesha.nfsd"}));
  EXPECT_FALSE(kprobe_hooks_cover({}));
  EXPECT_TRUE(kprobe_hooks_cover({"lockd"}));
}

TEST(LockHookPlan, AnExplicitHookIsTheOnlyOneTriedAndKprobeRefusesUserspaceManagers) {
  auto tp = plan_lock_hooks(LockHook::tracepoint, {"lockd"}, kCheapUprobes);
  ASSERT_TRUE(tp);
  EXPECT_EQ(tp->order, std::vector<LockHook>{LockHook::tracepoint});
  auto kprobe = plan_lock_hooks(LockHook::kprobe, {"lockd"}, kCheapUprobes);
  ASSERT_TRUE(kprobe);
  EXPECT_EQ(kprobe->order, std::vector<LockHook>{LockHook::kprobe});
  auto refused = plan_lock_hooks(LockHook::kprobe, {"lockd", "ganesha.nfsd"}, kCheapUprobes);
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("sees only kernel lockd's locks"));
  EXPECT_THAT(refused.error().message, HasSubstr("ganesha.nfsd"));
}

}  // namespace
}  // namespace lockferry::capture
