// SPDX-License-Identifier: Apache-2.0
// The dir:// store's fencing epochs and its safety with several writer processes at once.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/files.h"
#include "dir_store_test_util.h"
#include "store/store.h"

namespace lockferry::store {
namespace {

using lockferry::testing::dir_names;
using lockferry::testing::LogCapture;
using lockferry::testing::make_record;
using lockferry::testing::open_at;
using lockferry::testing::run_in_processes;
using lockferry::testing::TempDir;
using ::testing::HasSubstr;

TEST(DirStore, BumpEpochIsACompareAndSet) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->epoch("nfs1"), 0u);
  auto bumped = store->bump_epoch("nfs1", 0, "nfs2");
  ASSERT_TRUE(bumped.ok()) << bumped.error().message;
  EXPECT_EQ(*bumped, 1u);
  EXPECT_EQ(*store->epoch("nfs1"), 1u);

  auto stale = store->bump_epoch("nfs1", 0, "nfs2");
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, kErrFenced);
  EXPECT_THAT(stale.error().message, HasSubstr("already 1"));

  EXPECT_EQ(*store->bump_epoch("nfs1", 1, "nfs2"), 2u);
  EXPECT_EQ(*store->epoch("nfs1"), 2u);
  EXPECT_EQ(*store->epoch("nfs2"), 0u);  // per node
  EXPECT_FALSE(store->bump_epoch("nfs1", 5, "nfs2").ok());
  EXPECT_EQ(*store->epoch("nfs1"), 2u);
}

TEST(DirStore, RefusesWritesFromAFencedNode) {
  TempDir dir;
  auto primary = open_at(dir.path());
  auto adoptive = open_at(dir.path());
  ASSERT_TRUE(primary && adoptive);
  ASSERT_TRUE(primary->put_monitor(make_record("nfs1", "client", 0)).ok());

  ASSERT_EQ(*adoptive->bump_epoch("nfs1", 0, "nfs2"), 1u);  // nfs2 adopts nfs1

  auto late_put = primary->put_monitor(make_record("nfs1", "late-client", 0));
  ASSERT_FALSE(late_put.ok());
  EXPECT_EQ(late_put.error().code, kErrFenced);
  EXPECT_THAT(late_put.error().message, HasSubstr("adopted (epoch 1)"));
  EXPECT_THAT(late_put.error().message, HasSubstr("stops writing"));
  auto late_delete = primary->delete_monitor("nfs1", "client", 0);
  ASSERT_FALSE(late_delete.ok());
  EXPECT_EQ(late_delete.error().code, kErrFenced);

  auto listed = adoptive->list_monitor("nfs1");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].file_name, "client");
  EXPECT_TRUE(adoptive->put_monitor(make_record("nfs1", "client2", 1)).ok());
  EXPECT_TRUE(adoptive->delete_monitor("nfs1", "client", 1).ok());
}

TEST(DirStore, ConcurrentWriterProcessesLoseNothingAndCorruptNothing) {
  TempDir dir;
  ASSERT_TRUE(open_at(dir.path()));
  constexpr int kProcs = 4, kEach = 40;
  auto codes = run_in_processes(kProcs, [&](int p) {
    auto store = open_store("dir://" + dir.path());
    if (!store.ok()) return 3;
    for (int i = 0; i < kEach; ++i) {
      auto own = make_record("nfs1", "client-" + std::to_string(p) + "-" + std::to_string(i));
      auto shared = make_record("nfs1", "shared", 0, "writer" + std::to_string(p));
      if (!(*store)->put_monitor(own).ok() || !(*store)->put_monitor(shared).ok()) return 1;
      if (i % 10 == 0 && !(*store)->list_monitor("nfs1").ok()) return 2;
    }
    return 0;
  });
  EXPECT_EQ(codes, std::vector<int>(kProcs, 0));

  LogCapture log;
  auto store = open_at(dir.path());
  auto listed = store->list_monitor("nfs1");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), static_cast<std::size_t>(kProcs * kEach + 1));
  std::set<std::string> names;
  for (const auto& r : *listed) names.insert(r.file_name);
  EXPECT_EQ(names.size(), listed->size());
  EXPECT_EQ(log.text(), "") << "a record was corrupt";
  for (const auto& name : dir_names(dir / "nfs1/monitor")) {
    EXPECT_FALSE(files::is_atomic_write_temp_name(name)) << "leftover " << name;
  }
}

}  // namespace
}  // namespace lockferry::store
