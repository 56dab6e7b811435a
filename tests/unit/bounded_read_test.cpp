// SPDX-License-Identifier: Apache-2.0
// files::read_file_bounded costs what the file holds, not what the limit allows: the store reads
// every monitor document with a 1 MiB limit and lock tables with 256 MiB, on every reconcile.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/files.h"
#include "dir_store_test_util.h"

namespace lockferry::files {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#else
constexpr bool kAsan = false;
#endif

TEST(BoundedRead, ASmallFileUnderAHugeLimitNeedsNoHugeBuffer) {
  if (kAsan) GTEST_SKIP() << "ASan reserves terabytes of address space: RLIMIT_AS cannot be used";
  testing::TempDir tmp;
  testing::write_raw_file(tmp / "small", "0100007f 000186b5 00000004 00000010\n");
  // In a child limited to 512 MiB more address space than it has now, a 4 GiB limit must not
  // make the read allocate 4 GiB.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(30);
    rlimit lim{};
    ::getrlimit(RLIMIT_AS, &lim);
    std::ifstream status("/proc/self/statm");
    std::size_t pages = 0;
    status >> pages;
    lim.rlim_cur = pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) + (512u << 20);
    ::setrlimit(RLIMIT_AS, &lim);
    try {
      auto r = read_file_bounded(tmp / "small", std::size_t{4} << 30);
      ::_exit(r.ok() && r->size() == 36 ? 0 : 1);
    } catch (const std::bad_alloc&) {
      ::_exit(2);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2 = the read tried to allocate its whole limit";
}

TEST(BoundedRead, LimitsStillHoldForFilesAtAndPastThem) {
  testing::TempDir tmp;
  testing::write_raw_file(tmp / "exact", std::string(4096, 'x'));
  testing::write_raw_file(tmp / "over", std::string(4097, 'x'));
  testing::write_raw_file(tmp / "empty", "");
  auto exact = read_file_bounded(tmp / "exact", 4096);
  ASSERT_TRUE(exact.ok()) << exact.error().message;
  EXPECT_EQ(exact->size(), 4096u);
  EXPECT_FALSE(read_file_bounded(tmp / "over", 4096).ok());
  auto empty = read_file_bounded(tmp / "empty", 4096);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(BoundedRead, AFileThatGrowsPastWhatFstatSawIsReadWhole) {
  // /proc files report size 0 and then hold text: the buffer must grow past fstat's size.
  auto r = read_file_bounded("/proc/self/status", 1 << 20);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->find("Name:"), std::string::npos);
  EXPECT_FALSE(read_file_bounded("/proc/self/status", 16).ok())
      << "and is still refused past the limit";
}

}  // namespace
}  // namespace lockferry::files
