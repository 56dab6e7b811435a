// SPDX-License-Identifier: Apache-2.0
// The kernel's own view of locks: /proc/locks and fdinfo "lock:" lines (real lines captured on
// the development machine, kernel 6.18), and a snapshot of this process's own POSIX and OFD locks.
#include "capture/lock_kernel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace lockferry::capture {
namespace {

constexpr std::uint64_t kEof = LockRecord::kToEndOfFile;
constexpr std::uint64_t kDevFe00 = std::uint64_t{0xfe} << 20;  // fe:00, kernel encoding

// cat /proc/locks, with a lease, a flock, OFD and POSIX locks and a blocked POSIX request.
constexpr const char* kProcLocks =
    "1: LEASE  ACTIVE    READ 2313 fe:00:10953096 0 EOF\n"
    "2: FLOCK  ADVISORY  WRITE 2313 fe:00:10953095 0 EOF\n"
    "3: OFDLCK ADVISORY  READ -1 fe:00:10953089 200 209\n"
    "4: OFDLCK ADVISORY  WRITE -1 fe:00:10953089 50 59\n"
    "5: POSIX  ADVISORY  READ 2313 fe:00:10953089 100 EOF\n"
    "6: POSIX  ADVISORY  WRITE 2313 fe:00:10953089 5 14\n"
    "6: -> POSIX  ADVISORY  WRITE 2354 fe:00:10953089 7 7\n";

// cat /proc/2313/fdinfo/3 of the process holding the POSIX locks above.
constexpr const char* kFdinfo =
    "pos:\t0\n"
    "flags:\t02100002\n"
    "mnt_id:\t27\n"
    "ino:\t10953089\n"
    "lock:\t1: POSIX  ADVISORY  WRITE 2313 fe:00:10953089 5 14\n"
    "lock:\t2: POSIX  ADVISORY  READ 2313 fe:00:10953089 100 EOF\n";

TEST(ProcLocks, ParsesEveryKindOfLine) {
  const auto locks = parse_proc_locks(kProcLocks);
  ASSERT_EQ(locks.size(), 7u);
  EXPECT_EQ(locks[0], (ProcLock{1, false, "LEASE", "READ", 2313, kDevFe00, 10953096, 0, kEof}));
  EXPECT_EQ(locks[1], (ProcLock{2, false, "FLOCK", "WRITE", 2313, kDevFe00, 10953095, 0, kEof}));
  EXPECT_EQ(locks[2], (ProcLock{3, false, "OFDLCK", "READ", -1, kDevFe00, 10953089, 200, 209}));
  EXPECT_EQ(locks[3], (ProcLock{4, false, "OFDLCK", "WRITE", -1, kDevFe00, 10953089, 50, 59}));
  EXPECT_EQ(locks[4], (ProcLock{5, false, "POSIX", "READ", 2313, kDevFe00, 10953089, 100, kEof}));
  EXPECT_EQ(locks[5], (ProcLock{6, false, "POSIX", "WRITE", 2313, kDevFe00, 10953089, 5, 14}));
  // A blocked request is not a held lock: marked, so readers can skip it.
  EXPECT_EQ(locks[6], (ProcLock{6, true, "POSIX", "WRITE", 2354, kDevFe00, 10953089, 7, 7}));
}

TEST(ProcLocks, ParsesFdinfoLockLinesAndSkipsTheRest) {
  const auto locks = parse_proc_locks(kFdinfo);
  ASSERT_EQ(locks.size(), 2u);
  EXPECT_EQ(locks[0], (ProcLock{1, false, "POSIX", "WRITE", 2313, kDevFe00, 10953089, 5, 14}));
  EXPECT_EQ(locks[1], (ProcLock{2, false, "POSIX", "READ", 2313, kDevFe00, 10953089, 100, kEof}));
}

TEST(ProcLocks, DeviceNumbersAreHexAndBecomeTheKernelEncoding) {
  // sda1 = 8:1, a dm device 253:17 (fd:11), an NFS mount 0:52 (00:34).
  auto a = parse_proc_lock_line("1: POSIX  ADVISORY  WRITE 7 08:01:42 0 0");
  auto b = parse_proc_lock_line("1: POSIX  ADVISORY  WRITE 7 fd:11:42 0 0");
  auto c = parse_proc_lock_line("1: POSIX  ADVISORY  WRITE 7 00:34:42 9223372036854775806 EOF");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->dev, (8u << 20) | 1u);
  EXPECT_EQ(b->dev, (253u << 20) | 17u);
  EXPECT_EQ(c->dev, 52u);
  EXPECT_EQ(c->start, 9223372036854775806u);
}

TEST(ProcLocks, MalformedLinesAreNotLocks) {
  for (const char* line :
       {"", "pos:\t0", "lock:", "1: POSIX  ADVISORY  WRITE",
        "x: POSIX  ADVISORY  WRITE 1 08:01:2 0 1", "1: POSIX  ADVISORY  WRITE 1 <none>:0 0 EOF",
        "1: POSIX  ADVISORY  WRITE 1 08:01:2 0 ten", "1: POSIX  ADVISORY  WRITE 1 zz:01:2 0 1"})
    EXPECT_FALSE(parse_proc_lock_line(line)) << line;
}

TEST(ProcLocks, ReadsTheRealFile) {
  auto locks = read_proc_locks();
  ASSERT_TRUE(locks) << locks.error().message;
  auto missing = read_proc_locks("/nonexistent/locks");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/locks"), std::string::npos);
}

TEST(KernelThreads, AreToldFromProcesses) {
  EXPECT_FALSE(is_kernel_thread("/proc", static_cast<std::uint32_t>(::getpid())));
  // kthreadd is pid 2 outside of containers.
  std::FILE* f = std::fopen("/proc/2/comm", "r");
  char comm[32] = {};
  if (f && std::fgets(comm, sizeof comm, f) && std::string(comm) == "kthreadd\n") {
    EXPECT_TRUE(is_kernel_thread("/proc", 2));
  }
  if (f) std::fclose(f);
}

bool set_lock(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return ::fcntl(fd, cmd, &fl) == 0;
}

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

  const auto snap = read_kernel_locks("/proc", {{pid, "self"}, {2147483000u, "gone"}});
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

}  // namespace
}  // namespace lockferry::capture
