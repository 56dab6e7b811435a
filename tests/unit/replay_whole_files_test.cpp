// SPDX-License-Identifier: Apache-2.0
// Replay's guarantees on the fast path (records created unnamed and linked in): whole files only,
// even when the replaying process is SIGKILLed midway; statd's owner and mode 0600; existing and
// symlinked names replaced, never followed; a re-run completes an interrupted replay.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <map>
#include <thread>

#include "dir_store_test_util.h"
#include "failover/replayer.h"

namespace lockferry::failover {
namespace {

using testing::dir_names;
using testing::make_record;
using testing::read_raw_file;
using testing::TempDir;

std::vector<MonitorRecord> many_records(int n) {
  std::vector<MonitorRecord> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(
        make_record("nodeA", fmt::format("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)));
  }
  return out;
}

// Every file in `dir` is one of `records`, whole, with the owner and mode replay promises.
void expect_only_whole_records(const std::string& dir, const std::vector<MonitorRecord>& records,
                               uid_t uid, gid_t gid) {
  std::map<std::string, std::string> expected;
  for (const auto& r : records) expected[r.file_name] = r.raw;
  for (const auto& name : dir_names(dir)) {
    auto it = expected.find(name);
    ASSERT_NE(it, expected.end()) << "unexpected file " << name << " (a temp file left behind?)";
    EXPECT_EQ(read_raw_file(dir + "/" + name), it->second) << name << " is not whole";
    struct stat st {};
    ASSERT_EQ(::lstat((dir + "/" + name).c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode)) << name;
    EXPECT_EQ(st.st_mode & 07777, 0600u) << name;
    EXPECT_EQ(st.st_uid, uid) << name;
    EXPECT_EQ(st.st_gid, gid) << name;
  }
}

TEST(ReplayWholeFiles, AKilledReplayLeavesOnlyWholeRecordsAndARerunCompletesIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the records another owner";
  TempDir tmp;
  const std::string sm = tmp / "sm";
  std::filesystem::create_directories(sm);
  ASSERT_EQ(::chown(sm.c_str(), 4242, 4343), 0);
  const auto records = many_records(5000);

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto report = replay(records, ReplayOptions{sm, false});
    ::_exit(report.ok() ? 0 : 1);
  }
  // SIGKILL it once it is well under way (or after 10 s whatever happened).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (dir_names(sm).size() < 100 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ASSERT_GT(child, 0);  // never kill(0) or kill(-1)
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  const std::size_t left = dir_names(sm).size();
  if (WIFEXITED(status)) {
    std::cout << "note: the replay finished (" << left << " files) before it could be killed\n";
  } else {
    EXPECT_EQ(WTERMSIG(status), SIGKILL);
    EXPECT_GT(left, 0u);
    EXPECT_LT(left, records.size()) << "killed midway";
  }
  expect_only_whole_records(sm, records, 4242, 4343);

  auto again = replay(records, ReplayOptions{sm, false});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->refused, 0u);
  EXPECT_EQ(again->unchanged, left);
  EXPECT_EQ(again->written, records.size() - left);
  EXPECT_EQ(dir_names(sm).size(), records.size());
  expect_only_whole_records(sm, records, 4242, 4343);
}

TEST(ReplayWholeFiles, ADifferentRecordIsReplacedWholeWithStatdsOwnerAndMode) {
  TempDir tmp;
  const std::string sm = tmp / "sm";
  std::filesystem::create_directories(sm);
  struct stat dir_st {};
  ASSERT_EQ(::stat(sm.c_str(), &dir_st), 0);
  const auto record = make_record("nodeA", "192.0.2.101");
  testing::write_raw_file(sm + "/192.0.2.101", "garbage, half a line");
  ASSERT_EQ(::chmod((sm + "/192.0.2.101").c_str(), 0644), 0);
  auto report = replay({record}, ReplayOptions{sm, false});
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->written, 1u);
  expect_only_whole_records(sm, {record}, dir_st.st_uid, dir_st.st_gid);
}

TEST(ReplayWholeFiles, ASymlinkAtARecordNameIsReplacedNeverFollowed) {
  TempDir tmp;
  const std::string sm = tmp / "sm";
  std::filesystem::create_directories(sm);
  struct stat dir_st {};
  ASSERT_EQ(::stat(sm.c_str(), &dir_st), 0);
  const std::string outside = tmp / "outside";
  testing::write_raw_file(outside, "precious\n");
  ASSERT_EQ(::symlink(outside.c_str(), (sm + "/192.0.2.101").c_str()), 0);
  ASSERT_EQ(::symlink((tmp / "dangling").c_str(), (sm + "/192.0.2.102").c_str()), 0);
  const std::vector<MonitorRecord> records{make_record("nodeA", "192.0.2.101"),
                                           make_record("nodeA", "192.0.2.102")};
  auto report = replay(records, ReplayOptions{sm, false});
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->written, 2u);
  EXPECT_EQ(read_raw_file(outside), "precious\n");
  EXPECT_FALSE(std::filesystem::exists(tmp / "dangling"));
  expect_only_whole_records(sm, records, dir_st.st_uid, dir_st.st_gid);
}

TEST(ReplayWholeFiles, ManyRecordsAreAllWrittenOnceAndThenUnchanged) {
  TempDir tmp;
  const std::string sm = tmp / "sm";
  std::filesystem::create_directories(sm);
  struct stat dir_st {};
  ASSERT_EQ(::stat(sm.c_str(), &dir_st), 0);
  const auto records = many_records(500);
  auto first = replay(records, ReplayOptions{sm, false});
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->written, records.size());
  auto second = replay(records, ReplayOptions{sm, false});
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->written, 0u);
  EXPECT_EQ(second->unchanged, records.size());
  expect_only_whole_records(sm, records, dir_st.st_uid, dir_st.st_gid);
  EXPECT_EQ(dir_names(sm).size(), records.size());
}

}  // namespace
}  // namespace lockferry::failover
