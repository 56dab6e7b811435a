// SPDX-License-Identifier: Apache-2.0
// Hostile client and file names on their way from a monitor directory through the store to the
// adoptive server's monitor directory: whatever the name (../, absolute, NUL, newline, 4 KiB,
// not UTF-8, a planted symlink), nothing is ever written outside the directories it belongs in,
// and the good records next to it still make it through.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "dir_store_test_util.h"
#include "failover/migration.h"
#include "failover/replayer.h"

namespace lockferry {
namespace {

using testing::dir_names;
using testing::make_record;
using testing::read_raw_file;
using testing::TempDir;

const std::vector<std::string>& hostile_names() {
  static const std::vector<std::string> names{"../escaped",
                                              "../../../../tmp/escaped",
                                              "/tmp/escaped-absolute",
                                              "a/b",
                                              "x/",
                                              "./x",
                                              ".",
                                              "..",
                                              ".hidden",
                                              ".x.new",
                                              "x\ny",
                                              "x\rfake log line",
                                              std::string("nul\0name", 8),
                                              " leading-space",
                                              "tab\there",
                                              "del\x7f",
                                              std::string(256, 'n'),
                                              std::string(4096, 'n'),
                                              std::string(4097, '.'),
                                              "latin1-\xe9t\xe9",
                                              "overlong-\xc0\xaf",
                                              "surrogate-\xed\xa0\x80",
                                              "truncated-\xe2\x82",
                                              ""};
  return names;
}

TEST(HostileNames, ReplayRefusesEveryHostileFileNameAndWritesTheGoodRecord) {
  TempDir tmp;
  const std::string sm = tmp / "nfs/sm";
  std::filesystem::create_directories(sm);
  std::vector<MonitorRecord> records;
  for (const auto& bad : hostile_names()) {
    auto r = make_record("nodeA", "192.0.2.101");
    r.file_name = bad;
    records.push_back(r);
  }
  records.push_back(make_record("nodeA", "192.0.2.102"));
  auto report = failover::replay(records, failover::ReplayOptions{sm, false});
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->written, 1u);
  // Records sharing a (bad) file name are one file: count refusals per distinct name.
  std::set<std::string> distinct(hostile_names().begin(), hostile_names().end());
  EXPECT_EQ(report->refused, distinct.size());
  EXPECT_EQ(dir_names(sm), std::vector<std::string>{"192.0.2.102"});
  EXPECT_EQ(dir_names(tmp / "nfs"), std::vector<std::string>{"sm"});
  EXPECT_EQ(dir_names(tmp.path()), std::vector<std::string>{"nfs"});
  EXPECT_FALSE(std::filesystem::exists("/tmp/escaped-absolute"));
}

TEST(HostileNames, ReplayRefusesHostileNamesInsideTheRecord) {
  TempDir tmp;
  const std::string sm = tmp / "sm";
  std::filesystem::create_directories(sm);
  std::vector<MonitorRecord> records;
  for (const std::string& bad :
       std::vector<std::string>{"../../etc/passwd", "a b", "x\ny", std::string("n\0ul", 4),
                                std::string(1025, 'm'), std::string("\xff\xfe", 2)}) {
    auto r = make_record("nodeA", "192.0.2.150");
    r.file_name = "client" + std::to_string(records.size());
    r.mon_name = bad;
    r.raw.clear();
    records.push_back(r);
  }
  auto report = failover::replay(records, failover::ReplayOptions{sm, false});
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->written, 0u);
  EXPECT_EQ(report->refused, records.size());
  EXPECT_TRUE(dir_names(sm).empty());
}

TEST(HostileNames, ReplayReplacesASymlinkPlantedInTheStatdDirectoryInsteadOfWritingThroughIt) {
  TempDir tmp;
  const std::string sm = tmp / "sm";
  std::filesystem::create_directories(sm);
  testing::write_raw_file(tmp / "victim", "precious\n");
  std::filesystem::create_symlink(tmp / "victim", sm + "/192.0.2.101");
  auto record = make_record("nodeA", "192.0.2.101");
  auto report = failover::replay({record}, failover::ReplayOptions{sm, false});
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(read_raw_file(tmp / "victim"), "precious\n");
  EXPECT_FALSE(std::filesystem::is_symlink(sm + "/192.0.2.101"));
  EXPECT_EQ(read_raw_file(sm + "/192.0.2.101"), record.raw);
}

TEST(HostileNames, TheStoreRefusesToStoreHostileNamesAndWritesNothingOutsideItsRoot) {
  TempDir tmp;
  const std::string root = tmp / "store";
  auto store = testing::open_at(root);
  ASSERT_NE(store, nullptr);
  for (const auto& bad : hostile_names()) {
    auto r = make_record("nodeA", "192.0.2.101");
    r.file_name = bad;
    EXPECT_FALSE(store->put_monitor(r).ok()) << statmon::printable(bad);
    EXPECT_FALSE(store->delete_monitor("nodeA", bad, 0).ok()) << statmon::printable(bad);
    auto n = make_record(bad, "192.0.2.101");
    EXPECT_FALSE(store->put_monitor(n).ok()) << "node " << statmon::printable(bad);
    EXPECT_FALSE(store->list_monitor(bad).ok()) << "node " << statmon::printable(bad);
  }
  EXPECT_EQ(dir_names(tmp.path()), std::vector<std::string>{"store"});
  EXPECT_TRUE(dir_names(root).empty() || dir_names(root) == std::vector<std::string>{"nodeA"});
  EXPECT_FALSE(std::filesystem::exists("/tmp/escaped-absolute"));
}

TEST(HostileNames, DocumentsPlantedInTheStoreUnderTheWrongNameAreSkippedByTheMigration) {
  TempDir tmp;
  const std::string root = tmp / "store";
  const std::string sm = tmp / "sm";
  std::filesystem::create_directories(sm);
  auto store = testing::open_at(root);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->put_monitor(make_record("nodeA", "192.0.2.101")).ok());
  const std::string good_doc = read_raw_file(root + "/nodeA/monitor/192.0.2.101.json");
  // The same document under names that disagree with what it says inside, and documents whose
  // inner file_name is hostile.
  auto planted = [&](const std::string& name, const std::string& content) {
    testing::write_raw_file(root + "/nodeA/monitor/" + name, content);
  };
  planted("other.json", good_doc);
  std::string escaping = good_doc;
  for (std::size_t at; (at = escaping.find("\"192.0.2.101\"")) != std::string::npos;)
    escaping.replace(at, 13, "\"../../escaped\"");
  planted("escaping.json", escaping);
  planted("..json", good_doc);
  planted(std::string("bin\xff.json"), good_doc);

  failover::MigrateOptions options;
  options.from_node = "nodeA";
  options.to_node = "nodeB";
  options.statmon_dir = sm;
  options.recognize.method = failover::RecognizeMethod::none;
  auto report = failover::migrate(*store, options);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->records, 1u);
  EXPECT_EQ(dir_names(sm), std::vector<std::string>{"192.0.2.101"});
  EXPECT_EQ(dir_names(tmp.path()), (std::vector<std::string>{"sm", "store"}));
  EXPECT_FALSE(std::filesystem::exists(tmp / "escaped"));
}

TEST(HostileNames, AMigrationOfAHostileNodeNameIsRefused) {
  TempDir tmp;
  auto store = testing::open_at(tmp / "store");
  ASSERT_NE(store, nullptr);
  for (const std::string& bad :
       std::vector<std::string>{"../nodeA", "/etc", "migrations", "", "a/b", "x\ny"}) {
    failover::MigrateOptions options;
    options.from_node = bad;
    options.to_node = "nodeB";
    options.statmon_dir = tmp / "sm";
    options.recognize.method = failover::RecognizeMethod::none;
    EXPECT_FALSE(failover::migrate(*store, options).ok()) << statmon::printable(bad);
  }
  EXPECT_EQ(dir_names(tmp.path()), std::vector<std::string>{"store"});
}

}  // namespace
}  // namespace lockferry
