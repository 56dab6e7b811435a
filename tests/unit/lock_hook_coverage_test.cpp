// SPDX-License-Identifier: Apache-2.0
// What decides whether the lock hook sets that cost other processes nothing are complete: whether
// kernel lockd is or can be in this kernel (lockd_presence), and which C library a manager
// process maps (mapped_c_library), each from files laid out as the kernel and /proc show them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>

#include <filesystem>
#include <string>

#include "capture/lockd_functions.h"
#include "capture/manager_uprobes.h"
#include "dir_store_test_util.h"

namespace lockferry::capture {
namespace {

namespace fs = std::filesystem;
using lockferry::testing::TempDir;
using lockferry::testing::write_raw_file;
using ::testing::HasSubstr;
using State = LockdPresence::State;

std::string release() {
  utsname u{};
  ::uname(&u);
  return u.release;
}

// A root with /proc/modules (a kernel that loads modules) and, if given, the running kernel's
// module lists and build configuration.
void make_root(const std::string& root, bool modules, const std::string& dep,
               const std::string& config) {
  fs::create_directories(root + "/proc");
  fs::create_directories(root + "/sys/module");
  if (modules) write_raw_file(root + "/proc/modules", "");
  if (!dep.empty()) {
    fs::create_directories(root + "/lib/modules/" + release());
    write_raw_file(root + "/lib/modules/" + release() + "/modules.dep", dep);
  }
  if (!config.empty()) {
    fs::create_directories(root + "/boot");
    write_raw_file(root + "/boot/config-" + release(), config);
  }
}

TEST(LockdPresence, LoadedWhenSysModuleHasIt) {
  TempDir dir;
  make_root(dir.path(), true, "", "");
  fs::create_directories(dir.path() + "/sys/module/lockd");
  EXPECT_EQ(lockd_presence(dir.path()).state, State::loaded);
}

// This project's host kernel: no module support, lockd not built in.
TEST(LockdPresence, AbsentFromAKernelThatLoadsNoModulesAndDoesNotBuildItIn) {
  TempDir dir;
  make_root(dir.path(), false, "", "");
  const auto p = lockd_presence(dir.path());
  EXPECT_EQ(p.state, State::absent);
  EXPECT_THAT(p.why, HasSubstr("no /proc/modules"));
}

TEST(LockdPresence, LoadableWhenTheKernelsModulesHaveIt) {
  TempDir dir;
  make_root(dir.path(), true, "kernel/fs/lockd/lockd.ko.xz: kernel/net/sunrpc/sunrpc.ko.xz\n", "");
  EXPECT_EQ(lockd_presence(dir.path()).state, State::loadable);
}

TEST(LockdPresence, AbsentWhenTheKernelsModulesDoNotHaveIt) {
  TempDir dir;
  make_root(dir.path(), true, "kernel/net/sunrpc/sunrpc.ko:\n", "");
  EXPECT_EQ(lockd_presence(dir.path()).state, State::absent);
}

TEST(LockdPresence, TheBuildConfigurationDecidesWhenTheModulesCannotBeRead) {
  TempDir a, b;
  make_root(a.path(), true, "", "# config\nCONFIG_LOCKD=m\nCONFIG_NFSD=m\n");
  EXPECT_EQ(lockd_presence(a.path()).state, State::loadable);
  make_root(b.path(), true, "", "# config\n# CONFIG_LOCKD is not set\n");
  EXPECT_EQ(lockd_presence(b.path()).state, State::absent);
}

// A sandbox that hides /lib/modules and /boot proves nothing: lockd may come.
TEST(LockdPresence, LoadableWhenNothingRulesItOut) {
  TempDir dir;
  make_root(dir.path(), true, "", "");
  const auto p = lockd_presence(dir.path());
  EXPECT_EQ(p.state, State::loadable);
  EXPECT_THAT(p.why, HasSubstr("unreadable"));
}

// /proc/<pid>/maps lines naming a C library by device and inode.
std::string maps_line(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return fmt::format("7f0000000000-7f0000001000 r-xp 00028000 {:02x}:{:02x} {} {}\n",
                     major(st.st_dev), minor(st.st_dev), st.st_ino, path);
}

TEST(MappedCLibrary, TheLibraryTheProcessMapsWhenItIsTheSameFileHere) {
  TempDir dir;
  const std::string libc = dir.path() + "/libc.so.6";
  write_raw_file(libc, "not really");
  fs::create_directories(dir.path() + "/42");
  write_raw_file(dir.path() + "/42/maps",
                 "55d000000000-55d000001000 r--p 00000000 00:00 0 [heap]\n" +
                     maps_line(dir.path() + "/libother.so") + maps_line(libc));
  auto found = mapped_c_library(dir.path(), 42);
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(found->probe_path, libc);
  EXPECT_EQ(found->shown, libc);
  // The mapped file itself, when /proc shows it, whatever the name says.
  fs::create_directories(dir.path() + "/42/map_files");
  write_raw_file(dir.path() + "/42/map_files/7f0000000000-7f0000001000", "");
  found = mapped_c_library(dir.path(), 42);
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(found->probe_path, dir.path() + "/42/map_files/7f0000000000-7f0000001000");
  EXPECT_EQ(found->shown, libc);
}

TEST(MappedCLibrary, AnotherFileOfThatNameIsRefusedAndNoLibraryIsAnError) {
  TempDir dir;
  const std::string libc = dir.path() + "/libc.so.6";
  write_raw_file(libc, "one");
  const std::string line = maps_line(libc);
  write_raw_file(libc + ".new", "another file, another inode");  // made while the first exists
  fs::rename(libc + ".new", libc);
  fs::create_directories(dir.path() + "/42");
  write_raw_file(dir.path() + "/42/maps", line);
  auto other = mapped_c_library(dir.path(), 42);
  ASSERT_FALSE(other);
  EXPECT_THAT(other.error().message, HasSubstr("not that file here"));
  write_raw_file(dir.path() + "/42/maps", "");
  auto none = mapped_c_library(dir.path(), 42);
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message, HasSubstr("no C library mapped"));
}

// x86_64 kernels 6.11 and 6.12 filter the uretprobe trampoline's system call (killing a
// seccomp-filtered process at its first probed return); earlier ones have no such call, later
// ones let it through, and other machines return from uretprobes by a trap.
TEST(UretprobeSeccomp, OnlyX86KernelsOf611And612) {
  EXPECT_TRUE(uretprobe_meets_seccomp("6.11.0-1-amd64", "x86_64"));
  EXPECT_TRUE(uretprobe_meets_seccomp("6.12.48+deb13-amd64", "x86_64"));
  EXPECT_FALSE(uretprobe_meets_seccomp("6.1.0-57-amd64", "x86_64"));
  EXPECT_FALSE(uretprobe_meets_seccomp("6.13.2", "x86_64"));
  EXPECT_FALSE(uretprobe_meets_seccomp("6.18.44-fc-v1252", "x86_64"));
  EXPECT_FALSE(uretprobe_meets_seccomp("6.12.48", "aarch64"));
  EXPECT_FALSE(uretprobe_meets_seccomp("garbage", "x86_64"));
}

}  // namespace
}  // namespace lockferry::capture
