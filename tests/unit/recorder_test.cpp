// SPDX-License-Identifier: Apache-2.0
// Recorder: file changes and reconcile scans of a monitor directory, into a real dir:// store.
#include "record/recorder.h"

#include <gtest/gtest.h>

#include "dir_store_test_util.h"

namespace lockferry::record {
namespace {

using testing::make_record;
using testing::TempDir;
using testing::write_raw_file;

struct Fixture {
  TempDir tmp;
  std::string sm = tmp / "sm";
  std::unique_ptr<store::Store> store;
  Fixture() {
    std::filesystem::create_directories(sm);
    std::filesystem::create_directories(tmp / "store");
    store = testing::open_at(tmp / "store");
  }
  FileChange written(const std::string& name) {
    return FileChange{FileChange::Kind::written, sm, name, 1, "rpc.statd", 0};
  }
  std::vector<std::string> stored(const std::string& node = "nodeA") {
    std::vector<std::string> names;
    auto list = store->list_monitor(node);
    EXPECT_TRUE(list.ok()) << list.error().message;
    if (!list.ok()) return names;
    for (const auto& r : *list) names.push_back(r.file_name);
    return names;
  }
};

TEST(Recorder, AWrittenRecordReachesTheStoreWithItsNodeAndEpoch) {
  Fixture f;
  auto rec = make_record("x", "192.0.2.101");
  write_raw_file(f.sm + "/192.0.2.101", rec.raw);
  Recorder recorder(*f.store, "nodeA", 0);
  recorder.on_change(f.written("192.0.2.101"));
  auto list = f.store->list_monitor("nodeA");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].raw, rec.raw);
  EXPECT_EQ((*list)[0].mon_name, "192.0.2.101");
  EXPECT_GT((*list)[0].first_seen_ns, 0);
  EXPECT_EQ(recorder.stats().records_written, 1u);
}

TEST(Recorder, EveryLineOfAMultiLineStatdFileIsRecorded) {
  Fixture f;
  const std::string real =
      testing::read_raw_file(std::string(LOCKFERRY_TEST_DATA) + "/statd/198.51.100.2.record");
  write_raw_file(f.sm + "/198.51.100.2", real);
  Recorder recorder(*f.store, "nodeA", 0);
  recorder.on_change(f.written("198.51.100.2"));
  auto list = f.store->list_monitor("nodeA");
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].raw + (*list)[1].raw, real);
  ASSERT_TRUE(recorder.reconcile({f.sm}).ok());
  EXPECT_EQ(recorder.stats().records_written, 1u) << "an unchanged file is not rewritten";
}

TEST(Recorder, AGarbageFileIsIgnoredAndTheLastGoodRecordKept) {
  Fixture f;
  auto rec = make_record("x", "192.0.2.101");
  write_raw_file(f.sm + "/192.0.2.101", rec.raw);
  Recorder recorder(*f.store, "nodeA", 0);
  recorder.on_change(f.written("192.0.2.101"));
  write_raw_file(f.sm + "/192.0.2.101", std::string("\x7f"
                                                    "ELF\0\0garbage",
                                                    12));
  recorder.on_change(f.written("192.0.2.101"));
  EXPECT_EQ(recorder.stats().bad_records, 1u);
  auto list = f.store->list_monitor("nodeA");
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].raw, rec.raw);
}

TEST(Recorder, ARemovedRecordLeavesTheStore) {
  Fixture f;
  write_raw_file(f.sm + "/192.0.2.101", make_record("x", "192.0.2.101").raw);
  Recorder recorder(*f.store, "nodeA", 0);
  recorder.on_change(f.written("192.0.2.101"));
  recorder.on_change(FileChange{FileChange::Kind::removed, f.sm, "192.0.2.101", 1, "", 0});
  EXPECT_TRUE(f.stored().empty());
}

TEST(Recorder, StatdTempFilesAreNotRecords) {
  Fixture f;
  write_raw_file(f.sm + "/.192.0.2.101.new", make_record("x", "192.0.2.101").raw);
  Recorder recorder(*f.store, "nodeA", 0);
  recorder.on_change(f.written(".192.0.2.101.new"));
  ASSERT_TRUE(recorder.reconcile({f.sm}).ok());
  EXPECT_TRUE(f.stored().empty());
}

TEST(Recorder, DebiansStatdTempCopyIsNotARecordButAClientNamedDotNewIs) {
  Fixture f;
  write_raw_file(f.sm + "/192.0.2.101.new", make_record("x", "192.0.2.101").raw);
  write_raw_file(f.sm + "/odd.new", make_record("x", "odd.new").raw);
  Recorder recorder(*f.store, "nodeA", 0);
  ASSERT_TRUE(recorder.reconcile({f.sm}).ok());
  EXPECT_EQ(f.stored(), std::vector<std::string>{"odd.new"});
}

TEST(Recorder, ReconcileMakesTheStoreMatchTheDirectoryExactly) {
  Fixture f;
  // In the store but gone from disk (missed unlink), on disk but not stored (missed create).
  ASSERT_TRUE(f.store->put_monitor(make_record("nodeA", "192.0.2.199")).ok());
  write_raw_file(f.sm + "/192.0.2.101", make_record("x", "192.0.2.101").raw);
  write_raw_file(f.sm + "/192.0.2.102", make_record("x", "192.0.2.102").raw);
  write_raw_file(f.sm + "/junk", "not a record\n");
  Recorder recorder(*f.store, "nodeA", 0);
  auto repairs = recorder.reconcile({f.sm});
  ASSERT_TRUE(repairs.ok()) << repairs.error().message;
  EXPECT_EQ(*repairs, 3u);
  EXPECT_EQ(f.stored(), (std::vector<std::string>{"192.0.2.101", "192.0.2.102"}));
  EXPECT_EQ(recorder.stats().bad_records, 1u);
  auto again = recorder.reconcile({f.sm});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u) << "a second scan finds nothing to repair";
}

TEST(Recorder, AnUnreadableDirectoryDeletesNothing) {
  Fixture f;
  ASSERT_TRUE(f.store->put_monitor(make_record("nodeA", "192.0.2.101")).ok());
  Recorder recorder(*f.store, "nodeA", 0);
  auto repairs = recorder.reconcile({f.tmp / "missing"});
  ASSERT_FALSE(repairs.ok());
  EXPECT_EQ(f.stored(), std::vector<std::string>{"192.0.2.101"});
}

TEST(Recorder, AFencedNodeStopsWriting) {
  Fixture f;
  ASSERT_TRUE(f.store->bump_epoch("nodeA", 0, "nodeB").ok());  // nodeB adopted nodeA
  write_raw_file(f.sm + "/192.0.2.101", make_record("x", "192.0.2.101").raw);
  Recorder recorder(*f.store, "nodeA", 0);
  recorder.on_change(f.written("192.0.2.101"));
  EXPECT_TRUE(recorder.stats().fenced);
  EXPECT_TRUE(f.stored().empty());
  EXPECT_EQ(recorder.stats().store_errors, 0u) << "fencing is not a store failure";
}

}  // namespace
}  // namespace lockferry::record
