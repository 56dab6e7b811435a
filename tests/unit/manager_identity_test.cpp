// SPDX-License-Identifier: Apache-2.0
// Who counts as a lock manager: kernel threads, and root's processes running a lock manager
// binary. A process that only took the name (any user can) does not, in a /proc tree made by
// the test and for real processes.
#include "capture/manager_identity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "dir_store_test_util.h"

namespace lockferry::capture {
namespace {

using lockferry::testing::TempDir;
using lockferry::testing::write_raw_file;
using procfs::read_proc_stat;
using procfs::read_process_identity;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

constexpr std::uint64_t kPfKthread = 0x00200000;

// A /proc/<pid> with the files why_not_a_manager reads; `exe` is where /proc/<pid>/exe points.
void fake_process(const TempDir& proc, std::uint32_t pid, std::uint32_t uid, const std::string& exe,
                  std::uint64_t flags = 0x400100, std::uint32_t ppid = 1) {
  const std::string dir = proc / std::to_string(pid);
  fs::create_directories(dir);
  // The comm holds a space and a ')' on purpose: the fields after it are found from the last ')'.
  write_raw_file(dir + "/stat", fmt::format("{} (ganesha) x) S {} {} {} 0 -1 {} 0 0 0 0\n", pid,
                                            ppid, pid, pid, flags));
  write_raw_file(dir + "/status", fmt::format("Name:\tganesha.nfsd\nUmask:\t0022\nState:\tS\n"
                                              "Uid:\t{0}\t{0}\t{0}\t{0}\nGid:\t0\t0\t0\t0\n",
                                              uid));
  if (!exe.empty()) fs::create_symlink(exe, dir + "/exe");
}

std::string why(const TempDir& proc, std::uint32_t pid, const std::vector<std::string>& binaries) {
  return why_not_a_manager(read_process_identity(proc.path(), pid), binaries);
}

class ManagerIdentity : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(root / "usr/bin");
    fs::create_directories(root / "home/mallory");
    write_raw_file(binary, "ELF");
    write_raw_file(other, "ELF");
  }
  TempDir root;
  TempDir proc;
  const std::string binary = root / "usr/bin/ganesha.nfsd";
  const std::string other = root / "home/mallory/ganesha.nfsd";
};

TEST_F(ManagerIdentity, RootRunningTheManagerBinaryIsOne) {
  fake_process(proc, 900, 0, binary);
  EXPECT_EQ(why(proc, 900, {binary}), "");
}

TEST_F(ManagerIdentity, AnotherUserWithTheNameAndEvenTheBinaryIsNot) {
  fake_process(proc, 901, 65534, binary);
  EXPECT_THAT(why(proc, 901, {binary}), HasSubstr("runs as uid 65534"));
  fake_process(proc, 902, 1000, other);
  EXPECT_THAT(why(proc, 902, {binary}), HasSubstr("not root"));
}

TEST_F(ManagerIdentity, RootRunningAnotherBinaryIsNot) {
  fake_process(proc, 903, 0, other);
  const std::string reason = why(proc, 903, {binary});
  EXPECT_THAT(reason, HasSubstr(other));
  EXPECT_THAT(reason, HasSubstr("not one of the lock manager binaries (" + binary + ")"));
  EXPECT_THAT(why(proc, 903, {}), HasSubstr("none configured"));
}

TEST_F(ManagerIdentity, KernelLockdIsAKernelThreadWithoutAnExecutable) {
  fake_process(proc, 12, 0, "", 0x208040 | kPfKthread, 2);
  EXPECT_EQ(why(proc, 12, {binary}), "");
  // Without PF_KTHREAD the same process is a user process whose executable cannot be read.
  fake_process(proc, 13, 0, "", 0x400100, 2);
  EXPECT_THAT(why(proc, 13, {binary}), HasSubstr("executable cannot be read"));
}

TEST_F(ManagerIdentity, AnUpgradedBinaryStillCountsAndSoDoesAnotherPathToTheSameFile) {
  // The package was upgraded under the running manager: /proc shows "<path> (deleted)".
  fake_process(proc, 904, 0, binary + " (deleted)");
  EXPECT_EQ(why(proc, 904, {binary}), "");
  // /usr/sbin -> /usr/bin (merged /usr): the configured path names the same file.
  fs::create_directory_symlink(root / "usr/bin", root / "usr/sbin");
  fake_process(proc, 905, 0, binary);
  EXPECT_EQ(why(proc, 905, {root / "usr/sbin/ganesha.nfsd"}), "");
  // But a file merely named the same elsewhere does not, deleted or not.
  fake_process(proc, 906, 0, other + " (deleted)");
  EXPECT_NE(why(proc, 906, {binary}), "");
}

TEST_F(ManagerIdentity, AProcessThatIsGoneIsNot) {
  EXPECT_EQ(why(proc, 907, {binary}), "it is gone");
  fs::create_directories(proc / "908");  // exited while we looked: no stat
  EXPECT_EQ(why(proc, 908, {binary}), "it is gone");
}

TEST(ManagerIdentityOfRealProcesses, ThisTestIsOneOnlyAsRootAndWhenItsBinaryIsListed) {
  const auto self = static_cast<std::uint32_t>(::getpid());
  const std::string exe = fs::read_symlink("/proc/self/exe").string();
  const auto me = read_process_identity("/proc", self);
  ASSERT_TRUE(me.exists);
  EXPECT_FALSE(me.kernel_thread);
  EXPECT_EQ(me.exe, exe);
  if (::getuid() == 0 && ::geteuid() == 0)
    EXPECT_EQ(why_not_a_manager(me, {exe}), "");
  else
    EXPECT_THAT(why_not_a_manager(me, {exe}), HasSubstr("not root"));
  EXPECT_NE(why_not_a_manager(me, kDefaultManagerBinaries), "");
  // kthreadd (pid 2 outside of containers) is a kernel thread.
  const auto kthreadd = read_process_identity("/proc", 2);
  if (kthreadd.exists && read_proc_stat("/proc", 2)->ppid == 0) {
    EXPECT_TRUE(kthreadd.kernel_thread);
    EXPECT_EQ(why_not_a_manager(kthreadd, {}), "");
  }
}

}  // namespace
}  // namespace lockferry::capture
