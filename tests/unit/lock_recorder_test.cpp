// SPDX-License-Identifier: Apache-2.0
// LockRecorder: a burst of lock changes becomes one store write, stop-time flush, fencing, and
// taking the stored table back after a restart.
#include "record/lock_recorder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>

#include "dir_store_test_util.h"

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

}  // namespace
}  // namespace lockferry::record
