// SPDX-License-Identifier: Apache-2.0
// Corrupt dir:// store documents found by fuzzing (tests/fuzz/fuzz_store_documents.cpp): each is
// refused with a message naming the file, and the good documents beside it are still read.
#include <gtest/gtest.h>

#include "dir_store_test_util.h"

namespace lockferry::store {
namespace {

using testing::TempDir;
using testing::make_record;
using testing::read_raw_file;
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
  const std::string crash = std::string(LOCKFERRY_TEST_DATA) + "/fuzz/store_documents/crash-out-of-range-integer.json";
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
  write_raw_file(path, replace_all(read_raw_file(path), "\"started_ns\": 1", "\"started_ns\": 9e99"));
  auto list = store->list_migrations();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->front().from_node, "nodeA");
}

}  // namespace
}  // namespace lockferry::store
