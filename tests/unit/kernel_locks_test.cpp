// SPDX-License-Identifier: Apache-2.0
// The kernel's locks of lock manager processes, read from their fdinfo: this process as a
// manager holding POSIX and OFD locks, and the warning for unreadable fdinfo given once per
// manager by each reader (never carried from one reader to another).
#include "capture/kernel_locks.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "../support/fcntl_lock.h"
#include "dir_store_test_util.h"

namespace lockferry::capture {
namespace {

constexpr std::uint64_t kEof = LockRecord::kToEndOfFile;

using lockferry::test::set_lock;

// This process as a "lock manager": its POSIX locks (shown under both of its fds of the file,
// reported once) and the OFD locks of two open files (one also reached through a dup).
TEST(KernelSnapshot, ReadsAProcesssPosixAndOfdLocksOnce) {
  std::string dir = "/tmp/lockferry-kernel-XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/f";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
  const int fd_again = ::open(path.c_str(), O_RDWR);
  const int ofd1 = ::open(path.c_str(), O_RDWR);
  const int ofd2 = ::open(path.c_str(), O_RDWR);
  const int ofd1_dup = ::dup(ofd1);
  ASSERT_GE(ofd1_dup, 0);
  ASSERT_TRUE(set_lock(fd, F_SETLK, F_WRLCK, 0, 10));
  ASSERT_TRUE(set_lock(fd, F_SETLK, F_RDLCK, 100, 0));
  ASSERT_TRUE(set_lock(ofd1, F_OFD_SETLK, F_WRLCK, 20, 10));
  ASSERT_TRUE(set_lock(ofd2, F_OFD_SETLK, F_WRLCK, 40, 10));
  struct stat st {};
  ::stat(path.c_str(), &st);
  const std::uint64_t dev = (std::uint64_t{major(st.st_dev)} << 20) | minor(st.st_dev);
  const auto pid = static_cast<std::uint32_t>(::getpid());

  const auto snap = KernelLockReader().read("/proc", {{pid, "self"}, {2147483000u, "gone"}});
  ASSERT_EQ(snap.managers.size(), 2u);  // a process that is gone is covered, with no locks
  EXPECT_GT(snap.time_ns, 0);
  std::vector<std::tuple<bool, bool, std::uint64_t, std::uint64_t>> got;
  std::set<std::uint64_t> ofd_files;
  for (const auto& l : snap.locks) {
    EXPECT_EQ(l.manager_pid, pid);
    EXPECT_EQ(l.dev, dev);
    EXPECT_EQ(l.ino, st.st_ino);
    EXPECT_EQ(l.path, path);
    if (l.ofd) ofd_files.insert(l.file_id);
    got.emplace_back(l.ofd, l.write, l.start, l.end);
  }
  std::sort(got.begin(), got.end());
  const decltype(got) want{
      {false, false, 100, kEof}, {false, true, 0, 9}, {true, true, 20, 29}, {true, true, 40, 49}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(ofd_files.size(), 2u);  // two open files, though three fds show OFD locks
  for (int f : {fd, fd_again, ofd1, ofd2, ofd1_dup}) ::close(f);
  std::filesystem::remove_all(dir);
}

// How often `what` was logged.
std::size_t count_in(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A manager whose fdinfo cannot be read (a file where the directory should be: ENOTDIR) is left
// out of the snapshot and warned about once per reader: the reconcile timer does not repeat it,
// and a new reader (another capture, another test) warns again.
TEST(KernelSnapshot, UnreadableFdinfoIsWarnedOncePerReader) {
  testing::TempDir proc;
  std::filesystem::create_directories(proc / "4242/fd");
  testing::write_raw_file(proc / "4242/stat", "4242 (ganesha.nfsd) S 1 4242 4242 0 -1 4194560 0\n");
  testing::write_raw_file(proc / "4242/fd/3", "");
  testing::write_raw_file(proc / "4242/fdinfo", "not a directory");
  const std::map<std::uint32_t, std::string> managers{{4242, "ganesha.nfsd"}};
  const std::string kWarning = "cannot read the open files of lock manager ganesha.nfsd (pid 4242)";
  testing::LogCapture log;
  KernelLockReader first;
  for (int i = 0; i < 3; ++i) {
    const auto snap = first.read(proc.path(), managers);
    EXPECT_TRUE(snap.managers.empty()) << "cannot look must not read as holds no locks";
  }
  EXPECT_EQ(count_in(log.text(), kWarning), 1u);
  KernelLockReader second;
  EXPECT_TRUE(second.read(proc.path(), managers).managers.empty());
  EXPECT_EQ(count_in(log.text(), kWarning), 2u);
}

// Kernel lockd has no open files: its locks are the lines of /proc/locks with its pid. This is
// /proc/locks as measured in the Debian 6.1 guest (lockd pid 162 holding three NLM clients'
// locks, an flock of another process), plus another process's POSIX lock and a blocked request
// of lockd's, which are not lockd's held locks.
TEST(KernelSnapshot, AKernelThreadsLocksAreItsLinesOfProcLocks) {
  testing::TempDir proc;
  std::filesystem::create_directories(proc / "162");
  testing::write_raw_file(proc / "162/stat", "162 (lockd) S 2 0 0 0 -1 2129984 0 0\n");
  testing::write_raw_file(proc / "locks",
                          "1: POSIX  ADVISORY  WRITE 162 07:00:14 0 99\n"
                          "2: POSIX  ADVISORY  READ 162 07:00:13 10 19\n"
                          "3: POSIX  ADVISORY  WRITE 162 07:00:12 0 99\n"
                          "3: -> POSIX  ADVISORY  WRITE 162 07:00:12 0 9\n"
                          "4: FLOCK  ADVISORY  WRITE 154 00:1f:7 0 EOF\n"
                          "5: POSIX  ADVISORY  WRITE 1620 07:00:12 200 EOF\n");
  KernelLockReader reader;
  const auto snap = reader.read(proc.path(), {{162, "lockd"}});
  EXPECT_EQ(snap.managers, (std::map<std::uint32_t, std::string>{{162, "lockd"}}));
  EXPECT_EQ(snap.kernel_threads, (std::set<std::uint32_t>{162}));
  std::vector<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, bool>> got;
  for (const auto& l : snap.locks) {
    EXPECT_EQ(l.manager_pid, 162u);
    EXPECT_FALSE(l.ofd);
    EXPECT_EQ(l.dev, (std::uint64_t{7} << 20) | 0);
    EXPECT_EQ(l.path, "");  // /proc/locks has no paths
    got.emplace_back(l.ino, l.start, l.end, l.write);
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (decltype(got){{12, 0, 99, true}, {13, 10, 19, false}, {14, 0, 99, true}}));
}

TEST(KernelSnapshot, AKernelThreadIsNotCoveredWithoutProcLocks) {
  testing::TempDir proc;
  std::filesystem::create_directories(proc / "162");
  testing::write_raw_file(proc / "162/stat", "162 (lockd) S 2 0 0 0 -1 2129984 0 0\n");
  KernelLockReader reader;
  const auto snap = reader.read(proc.path(), {{162, "lockd"}});
  EXPECT_TRUE(snap.managers.empty()) << "cannot look must not read as holds no locks";
  EXPECT_TRUE(snap.locks.empty());
}

}  // namespace
}  // namespace lockferry::capture
