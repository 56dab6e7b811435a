// SPDX-License-Identifier: Apache-2.0
// copy_store (`lockferry store migrate-data`): dir -> sqlite -> dir keeps everything, a second
// run changes nothing, and a destination that is not a copy of the source is left untouched.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dir_store_test_util.h"
#include "statmon/record.h"
#include "store/copy.h"
#include "store/store.h"

namespace lockferry::store {
namespace {

using lockferry::testing::make_record;
using lockferry::testing::TempDir;
using ::testing::HasSubstr;

std::unique_ptr<Store> open(const std::string& url) {
  auto store = open_store(url);
  EXPECT_TRUE(store.ok()) << store.error().message;
  return store.ok() ? std::move(*store) : nullptr;
}

LockRecord lock(const std::string& node, std::uint64_t epoch, std::uint64_t start) {
  LockRecord l;
  l.node = node;
  l.epoch = epoch;
  l.manager_comm = "lockd";
  l.manager_pid = 77;
  l.dev = 42;
  l.ino = 4242;
  l.path = "/export/f";
  l.start = start;
  l.end = start + 9;
  l.type = "read";
  l.owner = UINT64_MAX - start;
  l.owner_pid = 1234;
  l.granted_ns = 5;
  l.nlm_host = "client1";
  return l;
}

// A store as a real cluster leaves it: nfs1 adopted by nfs2 (records older than its epoch), a
// statd file with two lines, lock tables, a node with nothing but an epoch, migrations.
void fill(Store& store) {
  ASSERT_TRUE(store.put_monitor(make_record("nfs1", "client-a", 0)).ok());
  std::vector<MonitorRecord> two{make_record("nfs1", "client-b", 0, "nfs1"),
                                 make_record("nfs1", "client-b", 0, "nfs1-alias")};
  ASSERT_TRUE(store.put_monitor_file(two).ok());
  ASSERT_TRUE(store.put_locks("nfs1", 0, {lock("nfs1", 0, 0), lock("nfs1", 0, 100)}).ok());
  ASSERT_EQ(*store.bump_epoch("nfs1", 0, "nfs2"), 1u);
  ASSERT_EQ(*store.bump_epoch("nfs1", 1, "nfs3"), 2u);
  ASSERT_TRUE(store.put_monitor(make_record("nfs2", "client-c", 0)).ok());
  ASSERT_TRUE(store.put_locks("nfs2", 0, {}).ok());
  ASSERT_EQ(*store.bump_epoch("nfs3", 0, "nfs2"), 1u);
  ASSERT_TRUE(
      store.put_migration({"nfs1", "nfs2", 1, 100, 200, 2, "192.0.2.10", "sm-notify", "ok"}).ok());
  ASSERT_TRUE(
      store.put_migration({"nfs1", "nfs3", 2, 300, 0, 2, "192.0.2.10", "none", "running"}).ok());
}

void expect_same(Store& a, Store& b) {
  auto nodes = a.list_nodes();
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(*nodes, *b.list_nodes());
  for (const auto& node : *nodes) {
    SCOPED_TRACE(node);
    EXPECT_EQ(*a.list_monitor(node), *b.list_monitor(node));
    EXPECT_EQ(*a.list_locks(node), *b.list_locks(node));
    EXPECT_EQ(*a.fence(node), *b.fence(node));  // the epoch and who set it
  }
  EXPECT_EQ(*a.list_migrations(), *b.list_migrations());
}

TEST(StoreCopy, DirToSqliteToDirKeepsEverything) {
  TempDir dir;
  auto source = open("dir://" + dir / "source");
  auto middle = open("sqlite://" + dir / "store.db");
  auto back = open("dir://" + dir / "back");
  ASSERT_TRUE(source && middle && back);
  fill(*source);

  auto first = copy_store(*source, *middle);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first->verified);
  EXPECT_EQ(first->nodes, 3u);
  EXPECT_EQ(first->monitor_files, 3u);
  EXPECT_EQ(first->monitor_records, 4u);
  EXPECT_EQ(first->lock_records, 2u);
  EXPECT_EQ(first->epoch_bumps, 3u);
  EXPECT_EQ(first->migrations, 2u);
  expect_same(*source, *middle);

  auto second = copy_store(*middle, *back);
  ASSERT_TRUE(second.ok()) << second.error().message;
  expect_same(*source, *back);
  EXPECT_EQ(*back->fence("nfs1"), (Fence{2, "nfs3"}));
  // Fencing came along: nfs1's old epoch is refused in the copy as in the original.
  EXPECT_EQ(back->put_monitor(make_record("nfs1", "late", 1)).error().code, kErrFenced);
}

TEST(StoreCopy, RunningItAgainChangesNothing) {
  TempDir dir;
  auto source = open("dir://" + dir / "source");
  auto dest = open("sqlite://" + dir / "store.db");
  fill(*source);
  ASSERT_TRUE(copy_store(*source, *dest).ok());
  auto again = copy_store(*source, *dest);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->verified);
  EXPECT_EQ(again->monitor_files, 0u);
  EXPECT_EQ(again->epoch_bumps, 0u);
  EXPECT_EQ(again->migrations, 0u);
  EXPECT_EQ(again->unchanged, 4u);  // three monitor files and nfs1's lock table
}

TEST(StoreCopy, FinishesAnInterruptedCopy) {
  TempDir dir;
  auto source = open("dir://" + dir / "source");
  auto dest = open("sqlite://" + dir / "store.db");
  fill(*source);
  // As if an earlier run stopped after one record.
  ASSERT_TRUE(dest->put_monitor(source->list_monitor("nfs1")->front()).ok());
  auto report = copy_store(*source, *dest);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->unchanged, 1u);
  expect_same(*source, *dest);
}

TEST(StoreCopy, RefusesADestinationThatIsNotACopyOfTheSource) {
  TempDir dir;
  auto source = open("dir://" + dir / "source");
  fill(*source);

  auto other_node = open("sqlite://" + dir / "a.db");
  ASSERT_TRUE(other_node->put_monitor(make_record("nfs9", "client")).ok());
  auto r = copy_store(*source, *other_node);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("already holds node 'nfs9'"));
  EXPECT_TRUE(other_node->list_monitor("nfs1")->empty()) << "nothing may be written";

  auto ahead = open("sqlite://" + dir / "b.db");
  ASSERT_EQ(*ahead->bump_epoch("nfs3", 0, "nfs2"), 1u);
  ASSERT_EQ(*ahead->bump_epoch("nfs3", 1, "nfs2"), 2u);
  r = copy_store(*source, *ahead);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("destination is newer"));

  auto extra = open("dir://" + dir / "c");
  ASSERT_TRUE(extra->put_monitor(make_record("nfs1", "client-zzz")).ok());
  r = copy_store(*source, *extra);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("client-zzz"));
  EXPECT_EQ(extra->list_monitor("nfs1")->size(), 1u);
}

}  // namespace
}  // namespace lockferry::store
