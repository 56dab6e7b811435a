// SPDX-License-Identifier: Apache-2.0
// Recorder out of file descriptors: a monitor record that cannot be read for want of a descriptor
// (EMFILE) is read again as soon as one is free, never dropped as a bad file until the next
// reconcile interval.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include "dir_store_test_util.h"
#include "record/recorder.h"

namespace lockferry::record {
namespace {

using namespace std::chrono_literals;
using testing::make_record;
using testing::TempDir;
using testing::write_raw_file;

// Takes every free descriptor of this process (under a lowered soft RLIMIT_NOFILE) until release().
class DescriptorExhaustion {
 public:
  DescriptorExhaustion() {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit low = saved_;
    low.rlim_cur = std::min<rlim_t>(saved_.rlim_cur, 256);
    ::setrlimit(RLIMIT_NOFILE, &low);
    for (int fd; (fd = ::dup(STDIN_FILENO)) >= 0;) held_.push_back(fd);
    exhausted_ = errno == EMFILE;
  }
  ~DescriptorExhaustion() { release(); }
  bool exhausted() const { return exhausted_; }
  void release() {
    for (int fd : held_) ::close(fd);
    held_.clear();
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<int> held_;
  bool exhausted_ = false;
};

struct Fixture {
  TempDir tmp;
  std::string sm = tmp / "sm";
  std::unique_ptr<store::Store> store;
  boost::asio::io_context io;
  Fixture() {
    std::filesystem::create_directories(sm);
    std::filesystem::create_directories(tmp / "store");
    store = testing::open_at(tmp / "store");
    write_raw_file(sm + "/192.0.2.101", make_record("x", "192.0.2.101").raw);
  }
  std::size_t stored() {
    auto list = store->list_monitor("nodeA");
    EXPECT_TRUE(list.ok()) << list.error().message;
    return list.ok() ? list->size() : 0;
  }
  // Runs the loop until the record is stored, 5 s at most.
  bool stored_within_5s() {
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (stored() == 0 && std::chrono::steady_clock::now() < until) io.run_for(50ms);
    return stored() == 1;
  }
};

TEST(RecorderOutOfDescriptors, AWrittenRecordIsReadAgainOnceADescriptorIsFree) {
  LOCKFERRY_SKIP_IF_SANITIZED_WITHOUT_DESCRIPTORS();
  Fixture f;
  Recorder recorder(*f.store, "nodeA", 0, f.io);
  DescriptorExhaustion exhaustion;
  ASSERT_TRUE(exhaustion.exhausted());
  recorder.on_change(FileChange{FileChange::Kind::written, f.sm, "192.0.2.101", 1, "rpc.statd", 0});
  f.io.run_for(500ms);  // retries meanwhile find no descriptor either
  EXPECT_EQ(recorder.stats().bad_records, 0u) << "a record read without a descriptor is not bad";
  EXPECT_GT(recorder.stats().descriptor_retries, 0u);
  exhaustion.release();
  EXPECT_TRUE(f.stored_within_5s()) << "the record waited for the next reconcile interval";
}

TEST(RecorderOutOfDescriptors, AReconcileScanWithoutADescriptorIsRunAgainSoon) {
  LOCKFERRY_SKIP_IF_SANITIZED_WITHOUT_DESCRIPTORS();
  Fixture f;
  Recorder recorder(*f.store, "nodeA", 0, f.io);
  {
    DescriptorExhaustion exhaustion;
    ASSERT_TRUE(exhaustion.exhausted());
    EXPECT_FALSE(recorder.reconcile({f.sm}).ok());
  }
  EXPECT_TRUE(f.stored_within_5s()) << "the failed scan waited for the next reconcile interval";
}

}  // namespace
}  // namespace lockferry::record
