// SPDX-License-Identifier: Apache-2.0
// LockRecorder: a burst of lock changes becomes one store write of only what changed, stop-time
// flush, fencing, and taking the stored table back after a restart.
#include "record/lock_recorder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>

#include "dir_store_test_util.h"
#include "forwarding_store.h"

namespace lockferry::record {
namespace {

using lockferry::testing::open_at;
using lockferry::testing::TempDir;
using namespace std::chrono_literals;

LockChange grant(std::uint64_t start, std::uint64_t end, std::uint32_t pid = 42,
                 std::uint64_t owner = 1) {
  LockChange c;
  c.kind = LockChange::Kind::granted;
  c.write = true;
  c.dev = 7;
  c.ino = 100;
  c.owner = owner;
  c.start = start;
  c.end = end;
  c.manager_comm = "ganesha.nfsd";
  c.manager_pid = pid;
  c.path = "/export/f";
  c.time_ns = 1;
  return c;
}

TEST(LockRecorder, ABurstOfChangesIsOneStoreWrite) {
  TempDir dir;
  auto store = open_at(dir.path());
  boost::asio::io_context io;
  LockRecorder recorder(io, *store, "nfs1", 0, 50ms);
  for (std::uint64_t i = 0; i < 1000; ++i) recorder.on_change(grant(i * 10, i * 10 + 4, 42, i));
  EXPECT_TRUE(store->list_locks("nfs1")->empty());  // nothing written synchronously
  io.run_for(200ms);
  EXPECT_EQ(recorder.stats().tables_written, 1u);
  EXPECT_EQ(recorder.stats().grants, 1000u);
  EXPECT_EQ(store->list_locks("nfs1")->size(), 1000u);
  EXPECT_FALSE(recorder.dirty());
}

TEST(LockRecorder, FlushWritesAtOnceAndOnlyWhenSomethingChanged) {
  TempDir dir;
  auto store = open_at(dir.path());
  boost::asio::io_context io;
  LockRecorder recorder(io, *store, "nfs1", 0, 10s);
  recorder.on_change(grant(0, 99));
  LockChange unlock = grant(40, 59);
  unlock.kind = LockChange::Kind::released;
  recorder.on_change(unlock);
  recorder.flush();
  auto locks = store->list_locks("nfs1");
  ASSERT_EQ(locks->size(), 2u);
  EXPECT_EQ((*locks)[0].end, 39u);
  EXPECT_EQ((*locks)[1].start, 60u);
  recorder.flush();
  EXPECT_EQ(recorder.stats().tables_written, 1u);
  recorder.stop();
}

TEST(LockRecorder, AFencedNodeStopsWritingItsTable) {
  TempDir dir;
  auto store = open_at(dir.path());
  auto adoptive = open_at(dir.path());
  boost::asio::io_context io;
  LockRecorder recorder(io, *store, "nfs1", 0, 10ms);
  recorder.on_change(grant(0, 9));
  recorder.flush();
  ASSERT_EQ(*adoptive->bump_epoch("nfs1", 0, "nfs2"), 1u);
  recorder.on_change(grant(20, 29));
  io.run_for(100ms);
  EXPECT_TRUE(recorder.stats().fenced);
  EXPECT_EQ(recorder.stats().store_errors, 0u);
  EXPECT_EQ(store->list_locks("nfs1")->size(), 1u);  // what the adoptive node took over stays
}

TEST(LockRecorder, AGoneManagersLocksAreForgotten) {
  TempDir dir;
  auto store = open_at(dir.path());
  boost::asio::io_context io;
  LockRecorder recorder(io, *store, "nfs1", 0, 10ms);
  recorder.on_change(grant(0, 9, 42, 1));
  recorder.on_change(grant(0, 9, 43, 2));
  recorder.on_manager_gone(42);
  io.run_for(100ms);
  auto locks = store->list_locks("nfs1");
  ASSERT_EQ(locks->size(), 1u);
  EXPECT_EQ((*locks)[0].manager_pid, 43u);
  EXPECT_EQ(recorder.stats().forgotten, 1u);
}

TEST(LockRecorder, RestoreKeepsOnlyLocksOfManagersStillRunning) {
  TempDir dir;
  auto store = open_at(dir.path());
  {
    boost::asio::io_context io;
    LockRecorder before(io, *store, "nfs1", 0);
    before.on_change(grant(0, 9, 42, 1));
    before.on_change(grant(0, 9, 43, 2));
    before.flush();
  }
  boost::asio::io_context io;
  LockRecorder after(io, *store, "nfs1", 0, 10ms);
  ASSERT_TRUE(after.restore([](std::uint32_t pid, const std::string& comm) {
    return pid == 43 && comm == "ganesha.nfsd";
  }));
  EXPECT_EQ(after.table().size(), 1u);
  io.run_for(100ms);  // the smaller table is written back
  auto locks = store->list_locks("nfs1");
  ASSERT_EQ(locks->size(), 1u);
  EXPECT_EQ((*locks)[0].manager_pid, 43u);
}

// Counts what reaches the store: whole tables and deltas, and the ranges each carried.
class CountingStore : public lockferry::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<void> put_locks(std::string_view node, std::uint64_t epoch,
                         const std::vector<LockRecord>& locks) override {
    ++tables;
    ranges += locks.size();
    if (refuse) return make_error("refused by the test");
    return inner_.put_locks(node, epoch, locks);
  }
  Result<void> update_locks(std::string_view node, std::uint64_t epoch,
                            const store::LockDelta& delta) override {
    ++deltas;
    ranges += delta.size();
    if (refuse) return make_error("refused by the test");
    return inner_.update_locks(node, epoch, delta);
  }
  int tables = 0;
  int deltas = 0;
  std::size_t ranges = 0;
  bool refuse = false;
};

LockChange release(std::uint64_t start, std::uint64_t end, std::uint32_t pid = 42,
                   std::uint64_t owner = 1) {
  LockChange c = grant(start, end, pid, owner);
  c.kind = LockChange::Kind::released;
  return c;
}

TEST(LockRecorder, OnlyTheChangedRangesAreWrittenNotTheTable) {
  TempDir dir;
  auto inner = open_at(dir.path());
  CountingStore store(*inner);
  boost::asio::io_context io;
  LockRecorder recorder(io, store, "nfs1", 0, 10s);
  for (std::uint64_t i = 0; i < 1000; ++i) recorder.on_change(grant(i * 10, i * 10 + 4, 42, i));
  recorder.flush();  // the first write: what the store holds is not known yet
  EXPECT_EQ(store.tables, 1);
  EXPECT_EQ(store.ranges, 1000u);

  // One NLM LOCK and one UNLOCK later: two ranges written, not 1,001.
  recorder.on_change(grant(50'000, 50'009, 42, 5000));
  recorder.flush();
  recorder.on_change(release(0, 4, 42, 0));
  recorder.flush();
  EXPECT_EQ(store.tables, 1);
  EXPECT_EQ(store.deltas, 2);
  EXPECT_EQ(store.ranges, 1002u);
  EXPECT_EQ(recorder.stats().tables_written, 3u);
  EXPECT_EQ(recorder.stats().deltas_written, 2u);
  EXPECT_EQ(recorder.stats().ranges_written, 1002u);
  // A split range is the changed range and the new piece.
  recorder.on_change(release(20, 21, 42, 2));
  recorder.flush();
  EXPECT_EQ(store.ranges, 1004u);
  // A change undone before the write writes nothing.
  recorder.on_change(grant(90'000, 90'009, 42, 9000));
  recorder.on_change(release(90'000, 90'009, 42, 9000));
  recorder.flush();
  EXPECT_EQ(store.deltas, 3);

  auto stored = inner->list_locks("nfs1");
  ASSERT_TRUE(stored.ok()) << stored.error().message;
  std::sort(stored->begin(), stored->end(), [](const LockRecord& a, const LockRecord& b) {
    return store::key_of(a) < store::key_of(b);
  });
  EXPECT_EQ(*stored, recorder.table().records("nfs1", 0));
}

TEST(LockRecorder, AfterAFailedWriteTheWholeTableIsWrittenAgain) {
  TempDir dir;
  auto inner = open_at(dir.path());
  CountingStore store(*inner);
  boost::asio::io_context io;
  LockRecorder recorder(io, store, "nfs1", 0, 10s);
  recorder.on_change(grant(0, 9, 42, 1));
  recorder.on_change(grant(0, 9, 42, 2));
  recorder.flush();
  store.refuse = true;
  recorder.on_change(grant(0, 9, 42, 3));
  recorder.flush();
  EXPECT_EQ(store.deltas, 1);
  EXPECT_EQ(recorder.stats().store_errors, 1u);
  store.refuse = false;
  recorder.flush();  // the store may hold anything now: the whole table
  EXPECT_EQ(store.tables, 2);
  EXPECT_EQ(inner->list_locks("nfs1")->size(), 3u);
  recorder.stop();
}

TEST(LockRecorder, ARestartedRecorderWritesOnlyWhatChangedSinceTheStoredTable) {
  TempDir dir;
  auto inner = open_at(dir.path());
  {
    boost::asio::io_context io;
    LockRecorder before(io, *inner, "nfs1", 0);
    for (std::uint64_t i = 0; i < 100; ++i) before.on_change(grant(0, 9, 42, i));
    before.on_change(grant(0, 9, 43, 1000));
    before.flush();
  }
  CountingStore store(*inner);
  boost::asio::io_context io;
  LockRecorder after(io, store, "nfs1", 0, 10s);
  ASSERT_TRUE(after.restore([](std::uint32_t pid, const std::string&) { return pid == 42; }));
  after.on_change(grant(0, 9, 42, 2000));
  after.flush();
  EXPECT_EQ(store.tables, 0);
  EXPECT_EQ(store.ranges, 2u);  // manager 43's range removed, one range added
  EXPECT_EQ(inner->list_locks("nfs1")->size(), 101u);
}

}  // namespace
}  // namespace lockferry::record
