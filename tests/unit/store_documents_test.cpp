// SPDX-License-Identifier: Apache-2.0
// Corrupt dir:// store documents found by fuzzing (tests/fuzz/fuzz_store_documents.cpp): each is
// refused with a message naming the file, and the good documents beside it are still read.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "dir_store_test_util.h"
#include "store/document_limits.h"

namespace lockferry::store {
namespace {

using testing::make_record;
using testing::read_raw_file;
using testing::TempDir;
using testing::write_raw_file;

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size())
    text.replace(at, from.size(), to);
  return text;
}

// A number past 2^64 parses as a double; reading it as an integer field was undefined behaviour.
TEST(StoreDocuments, NumbersThatAreNotSixtyFourBitIntegersAreRefused) {
  TempDir tmp;
  auto store = testing::open_at(tmp / "store");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->put_monitor(make_record("nodeA", "192.0.2.1")).ok());
  ASSERT_TRUE(store->put_monitor(make_record("nodeA", "192.0.2.2")).ok());
  const std::string doc_path = tmp / "store/nodeA/monitor/192.0.2.2.json";
  const std::string doc = read_raw_file(doc_path);
  for (const std::string number : {"18446744073709551616", "1e3", "1.5", "-0.0"}) {
    write_raw_file(doc_path, replace_all(doc, "\"epoch\": 0", "\"epoch\": " + number));
    testing::LogCapture log;
    auto records = store->list_monitor("nodeA");
    ASSERT_TRUE(records.ok()) << records.error().message;
    ASSERT_EQ(records->size(), 1u) << number;
    EXPECT_EQ(records->front().file_name, "192.0.2.1");
    EXPECT_NE(log.text().find("192.0.2.2.json"), std::string::npos) << log.text();
    EXPECT_NE(log.text().find("not a 64-bit integer"), std::string::npos) << log.text();
  }
}

TEST(StoreDocuments, ALockTableWithAnOutOfRangeNumberIsAnErrorNamingIt) {
  TempDir tmp;
  auto store = testing::open_at(tmp / "store");
  ASSERT_NE(store, nullptr);
  std::filesystem::create_directories(tmp / "store/nodeA");
  const std::string crash =
      std::string(LOCKFERRY_TEST_DATA) + "/fuzz/store_documents/crash-out-of-range-integer.json";
  write_raw_file(tmp / "store/nodeA/locks.json", read_raw_file(crash));
  auto locks = store->list_locks("nodeA");
  ASSERT_FALSE(locks.ok());
  EXPECT_NE(locks.error().message.find("locks.json"), std::string::npos) << locks.error().message;
}

TEST(StoreDocuments, AMigrationWithAnOutOfRangeEpochIsSkipped) {
  TempDir tmp;
  auto store = testing::open_at(tmp / "store");
  ASSERT_NE(store, nullptr);
  MigrationRecord m{"nodeA", "nodeB", 1, 1, 2, 3, "192.0.2.10", "none", "ok"};
  ASSERT_TRUE(store->put_migration(m).ok());
  m.from_node = "nodeC";
  ASSERT_TRUE(store->put_migration(m).ok());
  const std::string path = tmp / "store/migrations/nodeC-1.json";
  write_raw_file(path,
                 replace_all(read_raw_file(path), "\"started_ns\": 1", "\"started_ns\": 9e99"));
  auto list = store->list_migrations();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->front().from_node, "nodeA");
}

// Peak resident memory of this process (VmHWM), in bytes.
std::size_t peak_rss() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("VmHWM:")) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

// A 40 MB locks.json of nested arrays took lockferryd to 1.5 GB when it was parsed into a DOM.
// It is refused by its text, naming the file, and costs little more than reading it.
TEST(StoreDocuments, ADeeplyNestedLockTableIsRefusedBeforeItIsParsed) {
  TempDir tmp;
  auto store = testing::open_at(tmp / "store");
  ASSERT_NE(store, nullptr);
  std::filesystem::create_directories(tmp / "store/nodeA");
  constexpr std::size_t kDepth = 20'000'000;
  write_raw_file(tmp / "store/nodeA/locks.json",
                 std::string(kDepth, '[') + std::string(kDepth, ']'));
  const std::size_t before = peak_rss();
  const auto t0 = std::chrono::steady_clock::now();
  auto locks = store->list_locks("nodeA");
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(locks.ok());
  EXPECT_NE(locks.error().message.find("locks.json"), std::string::npos) << locks.error().message;
  EXPECT_NE(locks.error().message.find("nested more than 8 levels deep"), std::string::npos)
      << locks.error().message;
  // Reading the 40 MB text is all it costs (generous: the DOM took over 1 GB).
  EXPECT_LT(peak_rss() - before, std::size_t{300} << 20);
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(StoreDocuments, MillionsOfTinyValuesAreRefusedToo) {
  TempDir tmp;
  auto store = testing::open_at(tmp / "store");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->put_monitor(make_record("nodeA", "192.0.2.1")).ok());
  std::filesystem::create_directories(tmp / "store/nodeA");
  std::string flat = "{\"format\": 1, \"node\": \"nodeA\", \"locks\": [0";
  for (int i = 0; i < 1'000'000; ++i) flat += ",0";
  flat += "]}";
  write_raw_file(tmp / "store/nodeA/locks.json", flat);
  auto locks = store->list_locks("nodeA");
  ASSERT_FALSE(locks.ok());
  EXPECT_NE(locks.error().message.find("values in"), std::string::npos) << locks.error().message;
  // A nested monitor document is skipped with a warning naming it; the good one is still read.
  ASSERT_TRUE(store->put_monitor(make_record("nodeA", "192.0.2.2")).ok());
  write_raw_file(tmp / "store/nodeA/monitor/192.0.2.2.json",
                 std::string(100, '[') + std::string(100, ']'));
  testing::LogCapture log;
  auto records = store->list_monitor("nodeA");
  ASSERT_TRUE(records.ok()) << records.error().message;
  ASSERT_EQ(records->size(), 1u);
  EXPECT_NE(log.text().find("192.0.2.2.json: nested more than"), std::string::npos) << log.text();
}

TEST(StoreDocuments, RealDocumentsAreWellWithinTheLimits) {
  TempDir tmp;
  auto store = testing::open_at(tmp / "store");
  ASSERT_NE(store, nullptr);
  // Locks with every text field empty are the densest table the store writes.
  std::vector<LockRecord> locks;
  for (std::uint64_t i = 0; i < 20000; ++i) {
    LockRecord l;
    l.node = "n";
    l.manager_comm = "";
    l.path = "";
    l.start = i;
    l.end = i;
    l.type = "read";
    locks.push_back(l);
  }
  ASSERT_TRUE(store->put_locks("n", 0, locks).ok());
  auto back = store->list_locks("n");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->size(), locks.size());
  EXPECT_TRUE(check_document_shape(read_raw_file(tmp / "store/n/locks.json"), "locks.json").ok());
  // Strings may hold brackets and escaped quotes: they are not structure.
  EXPECT_TRUE(check_document_shape(R"({"a": "[[[[[[[[[[[[\"[[[[[[[", "b": [1]})", "x").ok());
  EXPECT_FALSE(check_document_shape("[[[[[[[[[1]]]]]]]]]", "x").ok());
  EXPECT_TRUE(check_document_shape("[[[[[[[[1]]]]]]]]", "x").ok());
}

}  // namespace
}  // namespace lockferry::store
