// SPDX-License-Identifier: Apache-2.0
// Recorder with group commit: the changes a capture delivers together become one batch put,
// nothing is acknowledged before the store returned, order and fencing are kept.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "dir_store_test_util.h"
#include "forwarding_store.h"
#include "record/recorder.h"

namespace lockferry::record {
namespace {

using testing::make_record;
using testing::TempDir;
using testing::write_raw_file;

// Forwards to a real store, counting batch calls; refuses files named `refuse` like a store
// refusing one record (the batch holding it fails as a whole).
class CountingStore final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::string refuse;
  int batches = 0;
  std::vector<std::size_t> batch_sizes;

  Result<void> put_monitor(const MonitorRecord& r) override { return put_monitor_file({r}); }
  Result<void> put_monitor_file(const std::vector<MonitorRecord>& records) override {
    if (!records.empty() && records.front().file_name == refuse)
      return make_error("refusing {}", refuse);
    return inner_.put_monitor_file(records);
  }
  Result<void> put_monitor_files(const std::vector<std::vector<MonitorRecord>>& files) override {
    ++batches;
    batch_sizes.push_back(files.size());
    for (const auto& f : files)
      if (!f.empty() && f.front().file_name == refuse) return make_error("refusing {}", refuse);
    return inner_.put_monitor_files(files);
  }
};

struct Fixture {
  TempDir tmp;
  std::string sm = tmp / "sm";
  std::unique_ptr<store::Store> real;
  std::unique_ptr<CountingStore> store;
  boost::asio::io_context io;
  Fixture() {
    std::filesystem::create_directories(sm);
    std::filesystem::create_directories(tmp / "store");
    real = testing::open_at(tmp / "store");
    store = std::make_unique<CountingStore>(*real);
  }
  FileChange written(const std::string& name) {
    return FileChange{FileChange::Kind::written, sm, name, 1, "rpc.statd", 0};
  }
  FileChange removed(const std::string& name) {
    return FileChange{FileChange::Kind::removed, sm, name, 1, "rpc.statd", 0};
  }
  std::string write(const std::string& name, const std::string& my_name = "server1") {
    auto r = make_record("x", name, 0, my_name);
    write_raw_file(sm + "/" + name, r.raw);
    return r.raw;
  }
  std::vector<std::string> stored() {
    std::vector<std::string> names;
    auto list = real->list_monitor("nodeA");
    EXPECT_TRUE(list.ok()) << list.error().message;
    if (list.ok())
      for (const auto& r : *list) names.push_back(r.file_name);
    return names;
  }
};

TEST(RecorderGroupCommit, ChangesDeliveredTogetherAreOneBatchAcknowledgedOnlyOnceStored) {
  Fixture f;
  Recorder recorder(*f.store, "nodeA", 0, f.io);
  std::vector<std::string> acknowledged;
  recorder.set_on_stored([&](const std::string& name) {
    // Acknowledged means durable: the store already holds it.
    auto list = f.real->list_monitor("nodeA");
    bool there = false;
    for (const auto& r : *list) there = there || r.file_name == name;
    EXPECT_TRUE(there) << name << " acknowledged before it was stored";
    acknowledged.push_back(name);
  });
  for (int i = 0; i < 5; ++i) {
    const std::string name = "192.0.2." + std::to_string(100 + i);
    f.write(name);
    recorder.on_change(f.written(name));
  }
  EXPECT_TRUE(f.stored().empty()) << "stored before the capture handler returned";
  EXPECT_EQ(recorder.stats().records_written, 0u);
  f.io.run();
  EXPECT_EQ(f.store->batches, 1);
  EXPECT_EQ(f.store->batch_sizes, std::vector<std::size_t>{5});
  EXPECT_EQ(f.stored().size(), 5u);
  EXPECT_EQ(acknowledged.size(), 5u);
  EXPECT_EQ(recorder.stats().records_written, 5u);

  // A later event is the next batch; an unchanged file is not rewritten.
  f.write("192.0.2.200");
  recorder.on_change(f.written("192.0.2.200"));
  recorder.on_change(f.written("192.0.2.100"));
  f.io.restart();
  f.io.run();
  EXPECT_EQ(f.store->batch_sizes, (std::vector<std::size_t>{5, 1}));
  EXPECT_EQ(recorder.stats().records_written, 6u);
}

TEST(RecorderGroupCommit, AFileRewrittenBeforeTheFlushIsStoredOnceWithItsLastContent) {
  Fixture f;
  Recorder recorder(*f.store, "nodeA", 0, f.io);
  f.write("client", "server1");
  recorder.on_change(f.written("client"));
  const std::string last = f.write("client", "server2");
  recorder.on_change(f.written("client"));
  f.io.run();
  auto list = f.real->list_monitor("nodeA");
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].raw, last);
  EXPECT_EQ(f.store->batch_sizes, std::vector<std::size_t>{1});
}

TEST(RecorderGroupCommit, ARemovalAfterAQueuedWriteWins) {
  Fixture f;
  Recorder recorder(*f.store, "nodeA", 0, f.io);
  f.write("client");
  f.write("other");
  recorder.on_change(f.written("client"));
  recorder.on_change(f.written("other"));
  recorder.on_change(f.removed("client"));
  f.io.run();
  EXPECT_EQ(f.stored(), std::vector<std::string>{"other"});
  EXPECT_EQ(recorder.stats().records_deleted, 1u);
}

TEST(RecorderGroupCommit, OneRefusedFileDoesNotKeepTheOthersOut) {
  Fixture f;
  f.store->refuse = "192.0.2.102";
  Recorder recorder(*f.store, "nodeA", 0, f.io);
  for (int i = 0; i < 4; ++i) {
    const std::string name = "192.0.2." + std::to_string(100 + i);
    f.write(name);
    recorder.on_change(f.written(name));
  }
  f.io.run();
  EXPECT_EQ(f.stored(), (std::vector<std::string>{"192.0.2.100", "192.0.2.101", "192.0.2.103"}));
  EXPECT_EQ(recorder.stats().records_written, 3u);
  EXPECT_EQ(recorder.stats().store_errors, 1u);
  EXPECT_NE(recorder.stats().last_error.find("192.0.2.102"), std::string::npos);

  // The next reconcile retries it (and stores it once the store accepts it).
  f.store->refuse.clear();
  auto repairs = recorder.reconcile({f.sm});
  ASSERT_TRUE(repairs.ok()) << repairs.error().message;
  EXPECT_EQ(*repairs, 1u);
  EXPECT_EQ(f.stored().size(), 4u);
}

TEST(RecorderGroupCommit, AFencedBatchStoresNothingAndStopsTheRecorder) {
  Fixture f;
  ASSERT_TRUE(f.real->bump_epoch("nodeA", 0, "nodeB").ok());  // another node adopted nodeA
  Recorder recorder(*f.store, "nodeA", 0, f.io);
  f.write("a");
  f.write("b");
  recorder.on_change(f.written("a"));
  recorder.on_change(f.written("b"));
  f.io.run();
  EXPECT_TRUE(recorder.stats().fenced);
  EXPECT_TRUE(f.stored().empty());
  EXPECT_EQ(recorder.stats().store_errors, 0u) << "fencing is not a store failure";
  EXPECT_EQ(f.store->batches, 1) << "no per-file retries once fenced";
}

TEST(RecorderGroupCommit, FlushStoresAtOnceAndAPostedFlushOutlivingTheRecorderIsHarmless) {
  Fixture f;
  {
    Recorder recorder(*f.store, "nodeA", 0, f.io);
    f.write("a");
    recorder.on_change(f.written("a"));
    recorder.flush();
    EXPECT_EQ(f.stored(), std::vector<std::string>{"a"});
    f.write("b");
    recorder.on_change(f.written("b"));  // queued; the recorder goes away before io runs
  }
  f.io.run();
  EXPECT_EQ(f.stored(), std::vector<std::string>{"a"});
}

TEST(RecorderGroupCommit, AReconcileAfterARestartStoresThousandsOfFilesInBatches) {
  Fixture f;
  for (int i = 0; i < 600; ++i) f.write("client-" + std::to_string(1000 + i));
  Recorder recorder(*f.store, "nodeA", 0, f.io);
  auto repairs = recorder.reconcile({f.sm});
  ASSERT_TRUE(repairs.ok()) << repairs.error().message;
  EXPECT_EQ(*repairs, 600u);
  EXPECT_EQ(f.stored().size(), 600u);
  EXPECT_EQ(f.store->batch_sizes, (std::vector<std::size_t>{256, 256, 88}));
}

}  // namespace
}  // namespace lockferry::record
