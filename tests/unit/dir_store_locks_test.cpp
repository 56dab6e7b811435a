// SPDX-License-Identifier: Apache-2.0
// The dir:// store's lock tables: whole-table replacement, fencing, and corrupt tables.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dir_store_test_util.h"
#include "store/store.h"

namespace lockferry::store {
namespace {

using lockferry::testing::dir_names;
using lockferry::testing::make_lock;
using lockferry::testing::open_at;
using lockferry::testing::read_raw_file;
using lockferry::testing::run_in_processes;
using lockferry::testing::TempDir;
using lockferry::testing::write_raw_file;
using ::testing::HasSubstr;

TEST(DirStoreLocks, ANodeWithoutATableHasNoLocks) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  auto locks = store->list_locks("nfs1");
  ASSERT_TRUE(locks.ok()) << locks.error().message;
  EXPECT_TRUE(locks->empty());
}

TEST(DirStoreLocks, PutReplacesTheWholeTableAndRoundTripsEveryField) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  std::vector<LockRecord> first{make_lock("nfs1", 0, 0, 39), make_lock("nfs1", 0, 60, 99),
                                make_lock("nfs1", 0, 100, LockRecord::kToEndOfFile, "read")};
  first[2].nlm_host = "client-a.example";
  first[2].path = "/päth with spaces/\"quoted\"";
  ASSERT_TRUE(store->put_locks("nfs1", 0, first).ok());
  auto listed = store->list_locks("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(*listed, first);

  // Compacted: the next put is the whole current state, not an addition.
  std::vector<LockRecord> second{make_lock("nfs1", 0, 5, 6, "read")};
  ASSERT_TRUE(store->put_locks("nfs1", 0, second).ok());
  EXPECT_EQ(*store->list_locks("nfs1"), second);
  ASSERT_TRUE(store->put_locks("nfs1", 0, {}).ok());
  EXPECT_TRUE(store->list_locks("nfs1")->empty());

  // One file per node, no temp files left behind; other nodes are separate.
  EXPECT_EQ(dir_names(dir / "nfs1"), std::vector<std::string>{"locks.json"});
  EXPECT_TRUE(store->list_locks("nfs2")->empty());
  auto nodes = store->list_nodes();
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ(*nodes, std::vector<std::string>{"nfs1"});
}

TEST(DirStoreLocks, TheTableIsOneLockPerLine) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(
      store->put_locks("nfs1", 0, {make_lock("nfs1", 0, 0, 9), make_lock("nfs1", 0, 20, 29)}).ok());
  const std::string text = read_raw_file(dir / "nfs1/locks.json");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4) << text;
  EXPECT_THAT(text, HasSubstr("\"start\":20"));
}

TEST(DirStoreLocks, AFencedNodeCannotReplaceItsTable) {
  TempDir dir;
  auto primary = open_at(dir.path());
  auto adoptive = open_at(dir.path());
  ASSERT_TRUE(primary && adoptive);
  ASSERT_TRUE(primary->put_locks("nfs1", 0, {make_lock("nfs1", 0, 0, 9)}).ok());
  ASSERT_EQ(*adoptive->bump_epoch("nfs1", 0, "nfs2"), 1u);

  auto late = primary->put_locks("nfs1", 0, {});
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, kErrFenced);
  EXPECT_THAT(late.error().message, HasSubstr("lock table"));
  EXPECT_EQ(adoptive->list_locks("nfs1")->size(), 1u);  // what the adoptive node found stays

  // The adoptive node writes with the new epoch.
  ASSERT_TRUE(adoptive->put_locks("nfs1", 1, {make_lock("nfs1", 1, 0, 0)}).ok());
  EXPECT_EQ(adoptive->list_locks("nfs1")->front().epoch, 1u);
}

TEST(DirStoreLocks, RefusesLocksOfAnotherNodeOrEpochAndBadRanges) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  EXPECT_THAT(store->put_locks("nfs1", 0, {make_lock("nfs2", 0, 0, 9)}).error().message,
              HasSubstr("names node 'nfs2'"));
  EXPECT_FALSE(store->put_locks("nfs1", 1, {make_lock("nfs1", 0, 0, 9)}).ok());
  EXPECT_THAT(store->put_locks("nfs1", 0, {make_lock("nfs1", 0, 10, 9)}).error().message,
              HasSubstr("ends before it starts"));
  EXPECT_THAT(
      store->put_locks("nfs1", 0, {make_lock("nfs1", 0, 0, 9, "exclusive")}).error().message,
      HasSubstr("neither read nor write"));
  EXPECT_FALSE(store->put_locks("../x", 0, {}).ok());
  EXPECT_TRUE(store->list_locks("nfs1")->empty());  // nothing was written
}

TEST(DirStoreLocks, ACorruptTableIsAnErrorNamingTheFile) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_locks("nfs1", 0, {make_lock("nfs1", 0, 0, 9)}).ok());
  const std::string path = dir / "nfs1/locks.json";
  for (const std::string& bad :
       {std::string("{\"format\": 1, \"node\": \"nfs1\", \"locks\": [{\"node\": \"nfs1\"}]}"),
        std::string("not json"), std::string("{\"format\": 9, \"node\": \"nfs1\", \"locks\": []}"),
        std::string("{\"format\": 1, \"node\": \"nfs2\", \"locks\": []}")}) {
    write_raw_file(path, bad);
    auto listed = store->list_locks("nfs1");
    ASSERT_FALSE(listed.ok()) << bad;
    EXPECT_THAT(listed.error().message, HasSubstr(path)) << bad;
  }
}

TEST(DirStoreLocks, ConcurrentWritersEachLandAWholeTable) {
  TempDir dir;
  auto codes = run_in_processes(4, [&](int i) {
    auto store = store::open_store("dir://" + dir.path());
    if (!store) return 2;
    for (int round = 0; round < 20; ++round) {
      std::vector<LockRecord> table;
      for (int k = 0; k <= i; ++k) table.push_back(make_lock("nfs1", 0, k * 10, k * 10 + 5));
      if (!(*store)->put_locks("nfs1", 0, table)) return 1;
    }
    return 0;
  });
  EXPECT_EQ(codes, std::vector<int>(4, 0));
  auto store = open_at(dir.path());
  auto listed = store->list_locks("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_GE(listed->size(), 1u);
  EXPECT_LE(listed->size(), 4u);
  EXPECT_EQ(dir_names(dir / "nfs1"), std::vector<std::string>{"locks.json"});
}

}  // namespace
}  // namespace lockferry::store
