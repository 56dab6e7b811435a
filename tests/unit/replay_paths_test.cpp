// SPDX-License-Identifier: Apache-2.0
// Replay where statd's user can change the path (RHEL: /var/lib/nfs/statd/sm, parent owned by
// rpcuser): a swap of sm/ for a link during a replay of thousands of records never makes root
// write anywhere else, and parents another user owns are refused with what to fix. Also: every
// file name statd can write (up to 255 bytes) is replayed byte-exact.
#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <thread>

#include "dir_store_test_util.h"
#include "failover/recognizer.h"
#include "failover/replayer.h"

namespace lockferry::failover {
namespace {

using testing::dir_names;
using testing::everything_under;
using ::testing::HasSubstr;
using testing::make_record;
using testing::read_raw_file;
using testing::TempDir;

constexpr uid_t kNobody = 65534;

TEST(ReplayPaths, SwappingTheDirectoryForALinkDuringReplayNeverRedirectsAWrite) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: replay chowns records to statd's user";
  TempDir tmp;
  // RHEL's layout: the parent of sm/ belongs to statd's user, who can rename entries in it.
  const std::string parent = tmp / "statd";
  const std::string sm = parent + "/sm";
  const std::string outside = tmp / "outside";  // where the attacker wants root to write
  std::filesystem::create_directories(sm);
  std::filesystem::create_directories(outside);
  ASSERT_EQ(::chmod(parent.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(sm.c_str(), 0700), 0);
  ASSERT_EQ(::chown(parent.c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(::chown(sm.c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (parent + "/sm-link").c_str()), 0);

  // The attacker: swaps sm and the link atomically, as fast as it can, for the whole replay.
  std::atomic<bool> stop{false};
  std::atomic<long> swaps{0};
  std::thread attacker([&] {
    const int dirfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (!stop.load()) {
      if (::renameat2(dirfd, "sm", dirfd, "sm-link", RENAME_EXCHANGE) == 0) ++swaps;
    }
    ::close(dirfd);
  });

  int succeeded = 0, refused = 0;
  std::string refusal;
  for (int round = 0; round < 20 && (succeeded < 3 || refused < 3); ++round) {
    std::vector<MonitorRecord> records;
    for (int i = 0; i < 2000; ++i)
      records.push_back(make_record("nodeA", fmt::format("10.{}.{}.{}", round, i / 256, i % 256)));
    auto report = replay(records, ReplayOptions{sm, false});
    if (report.ok()) {
      ++succeeded;
      EXPECT_EQ(report->written + report->unchanged, records.size());
    } else {
      ++refused;
      refusal = report.error().message;
    }
  }
  stop = true;
  attacker.join();

  EXPECT_EQ(everything_under(outside), std::vector<std::string>{})
      << "root wrote outside statd's directory";
  EXPECT_GT(swaps.load(), 0);
  EXPECT_GT(succeeded, 0) << "no replay ran while the attacker swapped";
  if (refused > 0) {
    EXPECT_THAT(refusal, HasSubstr("symbolic link"));
  }
  // Every record replayed landed in statd's real directory, owned by its user.
  const std::string real = std::filesystem::is_symlink(sm) ? parent + "/sm-link" : sm;
  std::size_t files = 0;
  for (const auto& name : dir_names(real)) {
    struct stat st {};
    ASSERT_EQ(::lstat((real + "/" + name).c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode)) << name;
    EXPECT_EQ(st.st_uid, kNobody) << name;
    ++files;
  }
  EXPECT_EQ(files, 2000u * static_cast<std::size_t>(succeeded));
  std::cout << "replays that ran: " << succeeded << ", refused (a link at the time): " << refused
            << ", swaps: " << swaps.load() << "\n";
}

TEST(ReplayPaths, AParentOfAnotherUserIsRefusedNamingItsPathAndOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another user";
  TempDir tmp;
  const std::string parent = tmp / "nfs";
  const std::string sm = parent + "/sm";
  std::filesystem::create_directories(sm);
  ASSERT_EQ(::chmod(parent.c_str(), 0755), 0);
  ASSERT_EQ(::chown(parent.c_str(), kNobody, kNobody), 0);  // sm/ stays root's: not statd's user
  auto report = replay({make_record("nodeA", "192.0.2.101")}, ReplayOptions{sm, false});
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.error().message, HasSubstr("its parent " + parent + " is owned by "));
  EXPECT_THAT(report.error().message, HasSubstr("uid 65534"));
  EXPECT_TRUE(dir_names(sm).empty());
}

TEST(ReplayPaths, AWorldWritableStatdDirectoryIsRefused) {
  TempDir tmp;
  const std::string sm = tmp / "sm";
  std::filesystem::create_directories(sm);
  ASSERT_EQ(::chmod(sm.c_str(), 0777), 0);
  auto report = replay({make_record("nodeA", "192.0.2.101")}, ReplayOptions{sm, false});
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.error().message, HasSubstr("chmod go-w " + sm));
  EXPECT_TRUE(dir_names(sm).empty());
}

TEST(ReplayPaths, EveryFileNameStatdCanWriteIsReplayedByteExact) {
  TempDir tmp;
  const std::string sm = tmp / "sm";
  std::filesystem::create_directories(sm);
  std::string label(63, 'h');
  const std::vector<std::string> names{
      label + "." + label + "." + label + "." + std::string(61, 'h'), std::string(251, 'a'),
      std::string(255, 'z')};
  std::vector<MonitorRecord> records;
  for (const auto& name : names) records.push_back(make_record("nodeA", name));
  auto report = replay(records, ReplayOptions{sm, false});
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->written, names.size());
  EXPECT_EQ(report->refused, 0u);
  for (const auto& r : records) EXPECT_EQ(read_raw_file(sm + "/" + r.file_name), r.raw);
  // Replaced by the slower path (the name exists with other content): still byte-exact.
  auto changed = make_record("nodeA", std::string(255, 'z'), 0, "other-server");
  report = replay({changed}, ReplayOptions{sm, false});
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(read_raw_file(sm + "/" + changed.file_name), changed.raw);
  EXPECT_EQ(dir_names(sm).size(), names.size()) << "no temp file left";
}

// sm-notify starts as root in the state directory: one that others could change is refused
// before anything runs, with what to fix.
TEST(RecognizePaths, AStateDirectoryOthersCanChangeIsRefusedBeforeAnythingRuns) {
  TempDir tmp;
  const std::string state = tmp / "nfs";
  std::filesystem::create_directories(state + "/sm.bak");
  ASSERT_EQ(::chmod(state.c_str(), 0777), 0);
  RecognizeOptions o;
  o.method = RecognizeMethod::sm_notify;
  o.service_ip = "192.0.2.10";
  o.state_dir = state;
  o.clients = {"192.0.2.101"};
  o.command = {"sh", "-c", "touch " + tmp / "ran"};
  auto report = recognize(o);
  EXPECT_FALSE(report.ok);
  EXPECT_THAT(report.message, HasSubstr("chmod go-w " + state));
  EXPECT_FALSE(std::filesystem::exists(tmp / "ran"));

  ASSERT_EQ(::chmod(state.c_str(), 0755), 0);
  report = recognize(o);
  EXPECT_TRUE(report.ok) << report.message;
  EXPECT_TRUE(std::filesystem::exists(tmp / "ran"));
  EXPECT_EQ(report.notified, std::vector<std::string>{"192.0.2.101"});
}

}  // namespace
}  // namespace lockferry::failover
