// SPDX-License-Identifier: Apache-2.0
// The kernel's own view of locks: /proc/locks and fdinfo "lock:" lines (real lines captured on
// the development machine, kernel 6.18, and the live /proc/locks), and kernel threads.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "procfs/locks.h"
#include "procfs/process.h"

namespace lockferry::procfs {
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
  // This process holds a lock, so the live file has at least one line, and every line with an
  // inode parses.
  char path[] = "/tmp/lockferry-proclocks-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  ASSERT_EQ(::fcntl(fd, F_SETLK, &fl), 0);
  auto text = read_proc_file("/proc/locks");
  ASSERT_TRUE(text) << text.error().message;
  std::size_t lines = 0;
  for (std::string_view rest = *text; !rest.empty();) {
    const auto nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    ++lines;
    if (line.find("<none>") == std::string_view::npos) {
      EXPECT_TRUE(parse_proc_lock_line(line)) << line;
    }
  }
  EXPECT_GE(lines, 1u);
  EXPECT_EQ(parse_proc_locks(*text).empty(), false);
  ::close(fd);
  ::unlink(path);
  auto missing = read_proc_file("/nonexistent/locks");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_NE(missing.error().message.find("/nonexistent/locks"), std::string::npos);
}

TEST(ProcComm, IsTheNameWithoutItsNewline) {
  std::string comm;
  std::getline(std::ifstream("/proc/self/comm"), comm);
  EXPECT_EQ(read_comm("/proc", static_cast<std::uint32_t>(::getpid())), comm);
  EXPECT_EQ(read_comm("/proc", 2147483000u), "");  // no such process
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

}  // namespace
}  // namespace lockferry::procfs
