// SPDX-License-Identifier: Apache-2.0
// One behaviour for every store backend: the same tests run against dir://, sqlite:// and
// postgresql:// (a real server started by pg_test_server.h), with real processes for races,
// concurrent writers and a writer killed in the middle of its writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "dir_store_test_util.h"
#include "failover/migration.h"
#include "forwarding_store.h"
#include "pg_test_server.h"
#include "statmon/record.h"
#include "store/store.h"

namespace lockferry::store {
namespace {

using lockferry::testing::dir_names;
using lockferry::testing::make_lock;
using lockferry::testing::make_record;
using lockferry::testing::read_raw_file;
using lockferry::testing::run_in_processes;
using lockferry::testing::TempDir;
using lockferry::testing::write_raw_file;
using ::testing::HasSubstr;

// --- the backends -------------------------------------------------------------------------

struct DirBackend {
  static constexpr const char* kName = "dir";
  Result<std::string> make_url() { return "dir://" + dir_.path() + "/store"; }
  TempDir dir_;
};

struct SqliteBackend {
  static constexpr const char* kName = "sqlite";
  Result<std::string> make_url() { return "sqlite://" + dir_.path() + "/store.db"; }
  TempDir dir_;
};

struct PgBackend {
  static constexpr const char* kName = "postgresql";
  Result<std::string> make_url() {
    std::string why;
    auto* server = lockferry::testing::PgTestServer::instance(&why);
    if (server == nullptr) return make_error("{}", why);
    return server->create_database();
  }
};

template <typename Backend>
class StoreConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = backend_.make_url();
    if (!url) {
      if (lockferry::testing::pg_required())
        FAIL() << url.error().message << " (LOCKFERRY_REQUIRE_E2E/BPF=1: not skipping)";
      GTEST_SKIP() << url.error().message;
    }
    url_ = *url;
    store_ = open();
    ASSERT_TRUE(store_);
  }

  // SQLite must not have a connection open across fork() (its per-process lock bookkeeping
  // would be copied into the child), so tests that fork close theirs first.
  void close_before_fork() { store_.reset(); }

  std::unique_ptr<Store> open() {
    auto store = open_store(url_);
    EXPECT_TRUE(store.ok()) << url_ << ": " << store.error().message;
    return store.ok() ? std::move(*store) : nullptr;
  }

  Backend backend_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

struct BackendName {
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};

using Backends = ::testing::Types<DirBackend, SqliteBackend, PgBackend>;
TYPED_TEST_SUITE(StoreConformance, Backends, BackendName);

// --- records --------------------------------------------------------------------------------

std::vector<MonitorRecord> make_file(const std::string& node, const std::string& file_name,
                                     std::size_t lines, std::uint64_t epoch = 0,
                                     const std::string& tag = "server") {
  std::vector<MonitorRecord> out;
  for (std::size_t i = 0; i < lines; ++i) {
    auto r = make_record(node, file_name, epoch, tag + "-" + std::to_string(i));
    r.mon_name = file_name + (i == 0 ? "" : "-alias" + std::to_string(i));
    r.raw = statmon::format_record(r);
    out.push_back(r);
  }
  return out;
}

MigrationRecord make_migration(const std::string& from, std::uint64_t epoch, std::int64_t started) {
  return MigrationRecord{from, "nfs2",       epoch,       started, started + 5'000'000,
                         3,    "192.0.2.10", "sm-notify", "ok"};
}

// --- a writer killed at an arbitrary moment ------------------------------------------------

struct KilledWriter {
  int seen = 0;         // writes the writer reported finished before the kill
  bool killed = false;  // false: it exited by itself first, with exit_code
  int exit_code = 0;
};

// Forks a writer that opens the store at `url` and calls write(store, i) for i = first,
// first + 1, ... (exit 1 once one fails), reporting each finished write through a pipe; kills
// it with SIGKILL once it reported `ticks` writes (or 30 s passed) and then `then` more: at
// whatever point of a write it is. The parent must hold no store connection (a forked
// PostgreSQL or SQLite handle would be shared).
KilledWriter kill_a_writer(const std::string& url, std::uint64_t first,
                           const std::function<bool(Store&, std::uint64_t)>& write, int ticks,
                           std::chrono::microseconds then) {
  KilledWriter out;
  int progress[2];
  if (::pipe(progress) != 0) return out;
  const pid_t pid = ::fork();
  if (pid < 0) return out;
  if (pid == 0) {
    ::alarm(60);
    ::close(progress[0]);
    auto store = open_store(url);
    if (!store.ok()) ::_exit(3);
    for (std::uint64_t i = first;; ++i) {
      if (!write(**store, i)) ::_exit(1);
      char c = 'x';
      if (::write(progress[1], &c, 1) != 1) ::_exit(2);
    }
  }
  ::close(progress[1]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (out.seen < ticks && std::chrono::steady_clock::now() < deadline) {
    pollfd p{progress[0], POLLIN, 0};
    if (::poll(&p, 1, 1000) > 0) {
      char buf[64];
      const ssize_t n = ::read(progress[0], buf, sizeof buf);
      if (n <= 0) break;
      out.seen += static_cast<int>(n);
    }
  }
  std::this_thread::sleep_for(then);
  ::kill(pid, SIGKILL);  // pid > 0: never anything but the child forked here
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(progress[0]);
  out.killed = WIFSIGNALED(status);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
  return out;
}

// --- put / list / delete --------------------------------------------------------------------

TYPED_TEST(StoreConformance, StoresListsAndDeletesMonitorRecordsWithEveryField) {
  auto& store = *this->store_;
  auto a = make_record("nfs1", "client-b.example");
  auto b = make_record("nfs1", "10.0.0.5");
  auto c = make_record("nfs2", "fd00::2");
  a.addr = 0xffffffff;
  a.priv = {255, 0, 254, 1, 253, 2, 252, 3, 251, 4, 250, 5, 249, 6, 248, 7};
  a.raw = statmon::format_record(a);
  for (const auto* r : {&a, &b, &c}) ASSERT_TRUE(store.put_monitor(*r).ok());

  auto listed = store.list_monitor("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(*listed, (std::vector<MonitorRecord>{b, a}));  // sorted by file name
  EXPECT_EQ(*store.list_nodes(), (std::vector<std::string>{"nfs1", "nfs2"}));

  ASSERT_TRUE(store.delete_monitor("nfs1", "10.0.0.5", 0).ok());
  EXPECT_EQ(*store.list_monitor("nfs1"), std::vector<MonitorRecord>{a});
  EXPECT_EQ(*store.list_monitor("nfs2"), std::vector<MonitorRecord>{c});

  // Another handle on the same store (another node) sees the same.
  auto other = this->open();
  ASSERT_TRUE(other);
  EXPECT_EQ(*other->list_monitor("nfs1"), std::vector<MonitorRecord>{a});
}

TYPED_TEST(StoreConformance, PutsAndDeletesAreIdempotent) {
  auto& store = *this->store_;
  auto r = make_record("nfs1", "client");
  ASSERT_TRUE(store.put_monitor(r).ok());
  ASSERT_TRUE(store.put_monitor(r).ok());
  r.my_name = "server2";
  r.raw = statmon::format_record(r);
  r.last_seen_ns += 1;
  ASSERT_TRUE(store.put_monitor(r).ok());
  EXPECT_EQ(*store.list_monitor("nfs1"), std::vector<MonitorRecord>{r});

  ASSERT_TRUE(store.delete_monitor("nfs1", "client", 0).ok());
  EXPECT_TRUE(store.delete_monitor("nfs1", "client", 0).ok());
  EXPECT_TRUE(store.delete_monitor("never-seen", "client", 0).ok());
  EXPECT_TRUE(store.list_monitor("nfs1")->empty());
  EXPECT_TRUE(store.list_monitor("never-seen")->empty());

  std::vector<LockRecord> locks{make_lock("nfs1", 0, 0, 9)};
  ASSERT_TRUE(store.put_locks("nfs1", 0, locks).ok());
  ASSERT_TRUE(store.put_locks("nfs1", 0, locks).ok());
  EXPECT_EQ(*store.list_locks("nfs1"), locks);

  auto m = make_migration("nfs1", 1, 100);
  ASSERT_TRUE(store.put_migration(m).ok());
  ASSERT_TRUE(store.put_migration(m).ok());
  EXPECT_EQ(*store.list_migrations(), std::vector<MigrationRecord>{m});
}

TYPED_TEST(StoreConformance, AStatdFileWithSeveralLinesIsStoredAndReplacedWhole) {
  auto& store = *this->store_;
  auto three = make_file("nfs1", "client-m", 3);
  ASSERT_TRUE(store.put_monitor_file(three).ok());
  ASSERT_TRUE(store.put_monitor(make_record("nfs1", "client-a")).ok());
  ASSERT_TRUE(store.put_monitor(make_record("nfs1", "client-z")).ok());

  auto listed = store.list_monitor("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 5u);
  EXPECT_EQ((*listed)[0].file_name, "client-a");
  EXPECT_EQ(std::vector<MonitorRecord>(listed->begin() + 1, listed->begin() + 4), three);
  EXPECT_EQ((*listed)[4].file_name, "client-z");

  // Fewer lines now: the old third line must not survive.
  auto one = make_file("nfs1", "client-m", 1, 0, "again");
  ASSERT_TRUE(store.put_monitor_file(one).ok());
  listed = store.list_monitor("nfs1");
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[1], one[0]);

  // The lines of one write must belong together; an empty write is not a delete.
  auto mixed = make_file("nfs1", "client-x", 2);
  mixed[1].epoch = 7;
  EXPECT_FALSE(store.put_monitor_file(mixed).ok());
  mixed = make_file("nfs1", "client-x", 2);
  mixed[1].file_name = "client-y";
  EXPECT_FALSE(store.put_monitor_file(mixed).ok());
  EXPECT_FALSE(store.put_monitor_file({}).ok());
  EXPECT_EQ(store.list_monitor("nfs1")->size(), 3u);

  ASSERT_TRUE(store.delete_monitor("nfs1", "client-m", 0).ok());
  EXPECT_EQ(store.list_monitor("nfs1")->size(), 2u);
}

TYPED_TEST(StoreConformance, ARecordWhoseRawLineDisagreesWithItsFieldsIsRefused) {
  auto r = make_record("nfs1", "client");
  r.raw = "0100007f 000186b5 00000004 00000010 0102 client other\n";
  EXPECT_FALSE(this->store_->put_monitor(r).ok());
  r.raw.clear();  // filled in from the fields
  ASSERT_TRUE(this->store_->put_monitor(r).ok());
  EXPECT_EQ(this->store_->list_monitor("nfs1")->at(0).raw, statmon::format_record(r));
}

// --- lock tables ----------------------------------------------------------------------------

TYPED_TEST(StoreConformance, LockTablesAreReplacedWholeAndKeepEveryField) {
  auto& store = *this->store_;
  EXPECT_TRUE(store.list_locks("nfs1")->empty());
  std::vector<LockRecord> first{make_lock("nfs1", 0, 0, 39), make_lock("nfs1", 0, 60, 99),
                                make_lock("nfs1", 0, 100, LockRecord::kToEndOfFile, "read")};
  first[2].nlm_host = "client-a.example";
  first[2].client_addr = "198.51.100.7";
  first[2].server_addr = "2001:db8::10";
  first[2].path = "/päth with spaces/\"quoted\"";
  first[1].dev = UINT64_MAX;
  first[1].ino = UINT64_MAX - 1;
  first[1].owner_pid = INT32_MIN;
  first[1].manager_pid = UINT32_MAX;
  ASSERT_TRUE(store.put_locks("nfs1", 0, first).ok());
  auto listed = store.list_locks("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  // Listed in key order (dev UINT64_MAX last), whatever order it was put in.
  auto sorted = first;
  sort_locks(sorted);
  ASSERT_NE(sorted, first);
  EXPECT_EQ(*listed, sorted);

  std::vector<LockRecord> second{make_lock("nfs1", 0, 5, 6, "read")};
  ASSERT_TRUE(store.put_locks("nfs1", 0, second).ok());
  EXPECT_EQ(*store.list_locks("nfs1"), second);
  ASSERT_TRUE(store.put_locks("nfs1", 0, {}).ok());
  EXPECT_TRUE(store.list_locks("nfs1")->empty());
  EXPECT_TRUE(store.list_locks("nfs2")->empty());
  EXPECT_EQ(*store.list_nodes(), std::vector<std::string>{"nfs1"});
}

TYPED_TEST(StoreConformance, ALockTableMustBeOneNodesAtOneEpoch) {
  auto& store = *this->store_;
  std::vector<LockRecord> locks{make_lock("nfs1", 0, 0, 9), make_lock("nfs2", 0, 10, 19)};
  EXPECT_FALSE(store.put_locks("nfs1", 0, locks).ok());
  locks = {make_lock("nfs1", 0, 0, 9), make_lock("nfs1", 3, 10, 19)};
  EXPECT_FALSE(store.put_locks("nfs1", 0, locks).ok());
  locks = {make_lock("nfs1", 0, 20, 10)};
  EXPECT_FALSE(store.put_locks("nfs1", 0, locks).ok());
  locks = {make_lock("nfs1", 0, 0, 10, "exclusive")};
  EXPECT_FALSE(store.put_locks("nfs1", 0, locks).ok());
  EXPECT_TRUE(store.list_locks("nfs1")->empty());
}

// --- lock deltas ----------------------------------------------------------------------------

// A lock of `owner` on file `ino` at [start, start + 9].
LockRecord delta_lock(std::uint64_t epoch, std::uint64_t ino, std::uint64_t owner,
                      std::uint64_t start) {
  auto l = make_lock("nfs1", epoch, start, start + 9);
  l.ino = ino;
  l.owner = owner;
  return l;
}

TYPED_TEST(StoreConformance, ALockDeltaChangesOnlyItsRangesAndKeepsEveryField) {
  auto& store = *this->store_;
  std::vector<LockRecord> table{delta_lock(0, 1, 7, 0), delta_lock(0, 1, 7, 20),
                                delta_lock(0, 2, 8, 0)};
  ASSERT_TRUE(store.put_locks("nfs1", 0, table).ok());

  LockDelta delta;
  delta.removed = {key_of(table[0]), LockKey{9, 9, 9, 9}};  // a key the table lacks is ignored
  auto changed = table[1];
  changed.end = LockRecord::kToEndOfFile;
  changed.type = "read";
  changed.nlm_host = "client-a.example";
  changed.path = "/päth with spaces/\"quoted\"";
  auto added = delta_lock(0, UINT64_MAX, UINT64_MAX, UINT64_MAX - 9);
  added.owner_pid = INT32_MIN;
  added.manager_pid = UINT32_MAX;
  delta.put = {changed, added};
  auto updated = store.update_locks("nfs1", 0, delta);
  ASSERT_TRUE(updated.ok()) << updated.error().message;

  // Listed in key order, whatever the writes.
  const std::vector<LockRecord> expected{changed, table[2], added};
  auto listed = store.list_locks("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(*listed, expected);
  std::vector<LockRecord> applied = table;
  apply_lock_delta(applied, delta);
  sort_locks(applied);
  EXPECT_EQ(applied, expected);
  EXPECT_EQ(*this->open()->list_locks("nfs1"), expected);  // another connection, another node

  // An empty delta changes nothing; a delta onto no table starts one.
  ASSERT_TRUE(store.update_locks("nfs1", 0, {}).ok());
  EXPECT_EQ(*store.list_locks("nfs1"), expected);
  ASSERT_TRUE(store.update_locks("nfs2", 0, {{}, {make_lock("nfs2", 0, 0, 1)}}).ok());
  EXPECT_EQ(*store.list_locks("nfs2"), std::vector<LockRecord>{make_lock("nfs2", 0, 0, 1)});
  // A whole table replaces everything the deltas made.
  ASSERT_TRUE(store.put_locks("nfs1", 0, {table[0]}).ok());
  EXPECT_EQ(*store.list_locks("nfs1"), std::vector<LockRecord>{table[0]});
}

TYPED_TEST(StoreConformance, ALockDeltaMustBeItsNodesAtItsEpochAndIsFencedLikeATable) {
  auto primary = this->open();
  auto adoptive = this->open();
  const std::vector<LockRecord> table{delta_lock(0, 1, 7, 0)};
  ASSERT_TRUE(primary->put_locks("nfs1", 0, table).ok());
  EXPECT_FALSE(primary->update_locks("nfs1", 0, {{}, {make_lock("nfs2", 0, 0, 9)}}).ok());
  EXPECT_FALSE(primary->update_locks("nfs1", 0, {{}, {delta_lock(3, 1, 7, 0)}}).ok());
  EXPECT_FALSE(primary->update_locks("nfs1", 0, {{}, {make_lock("nfs1", 0, 20, 10)}}).ok());
  EXPECT_FALSE(primary->update_locks("../x", 0, {}).ok());
  EXPECT_EQ(*primary->list_locks("nfs1"), table);

  ASSERT_EQ(*adoptive->bump_epoch("nfs1", 0, "nfs2"), 1u);  // nfs2 adopts nfs1
  auto late = primary->update_locks("nfs1", 0, {{key_of(table[0])}, {delta_lock(0, 1, 7, 50)}});
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, kErrFenced);
  EXPECT_EQ(primary->update_locks("nfs1", 0, {}).error().code, kErrFenced);
  // The adoptive node's view (what it audits) is the table frozen at the adoption.
  EXPECT_EQ(*adoptive->list_locks("nfs1"), table);
  EXPECT_TRUE(adoptive->update_locks("nfs1", 1, {{key_of(table[0])}, {}}).ok());
  EXPECT_TRUE(adoptive->list_locks("nfs1")->empty());
}

TYPED_TEST(StoreConformance, ManyLockDeltasEndAtTheSameTableAsAppliedInMemory) {
  auto& store = *this->store_;
  std::mt19937_64 random(15);
  std::vector<LockRecord> model;
  // Enough deltas of big enough lines that dir:// compacts its journal several times.
  for (int round = 0; round < 400; ++round) {
    LockDelta delta;
    for (int k = 0; k < 3 && !model.empty(); ++k)
      delta.removed.push_back(key_of(model[random() % model.size()]));
    for (int k = 0; k < 4; ++k) {
      auto l = delta_lock(0, random() % 8, random() % 4, (random() % 64) * 10);
      l.granted_ns = round;
      delta.put.push_back(l);
    }
    if (round == 200) {  // a whole table in the middle starts over
      ASSERT_TRUE(store.put_locks("nfs1", 0, model).ok());
      continue;
    }
    auto updated = store.update_locks("nfs1", 0, delta);
    ASSERT_TRUE(updated.ok()) << "round " << round << ": " << updated.error().message;
    apply_lock_delta(model, delta);
  }
  sort_locks(model);
  auto listed = store.list_locks("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(*listed, model);
  EXPECT_EQ(*this->open()->list_locks("nfs1"), model);
}

TYPED_TEST(StoreConformance, AWriterKilledMidLockDeltasLeavesAWholeTableAndCanBeContinued) {
  const std::string url = this->url_;
  this->close_before_fork();
  // Generation i's table: 1 + (i * 37) % 50 ranges of owner i. Each delta removes generation
  // i-1's ranges and puts generation i's, so any table but a whole generation is a torn delta.
  auto generation = [](std::uint64_t i) {
    std::vector<LockRecord> out;
    for (std::uint64_t k = 0; k < 1 + (i * 37) % 50; ++k)
      out.push_back(delta_lock(0, 1, i, k * 10));
    return out;
  };
  for (int round = 0; round < 3; ++round) {
    const KilledWriter w = kill_a_writer(
        url, 1,
        [&](Store& st, std::uint64_t i) {
          if (i == 1 && !st.put_locks("nfs1", 0, generation(0)).ok()) return false;
          LockDelta delta;
          for (const auto& l : generation(i - 1)) delta.removed.push_back(key_of(l));
          delta.put = generation(i);
          return st.update_locks("nfs1", 0, delta).ok();
        },
        10 + 7 * round, std::chrono::microseconds(700 * round + 300));
    ASSERT_TRUE(w.killed) << "writer exited " << w.exit_code << " before the kill";
    ASSERT_GE(w.seen, 10) << "the writer made no progress";
    const int seen = w.seen;

    lockferry::testing::LogCapture log;
    auto store = this->open();
    auto locks = store->list_locks("nfs1");
    ASSERT_TRUE(locks.ok()) << locks.error().message;
    ASSERT_FALSE(locks->empty());
    const std::uint64_t owner = locks->front().owner;
    EXPECT_GE(owner, static_cast<std::uint64_t>(seen)) << "an acknowledged delta was lost";
    EXPECT_EQ(*locks, generation(owner)) << "a partial delta";
    // The next writer (a restarted daemon) continues with deltas on top of what it found.
    LockDelta next;
    for (const auto& l : *locks) next.removed.push_back(key_of(l));
    next.put = {delta_lock(0, 2, 1, 0)};
    auto updated = store->update_locks("nfs1", 0, next);
    ASSERT_TRUE(updated.ok()) << updated.error().message;
    EXPECT_EQ(*store->list_locks("nfs1"), next.put);
    EXPECT_EQ(log.text(), "") << "something was corrupt";
    store.reset();  // closed before the next fork
  }
}

// --- fencing --------------------------------------------------------------------------------

TYPED_TEST(StoreConformance, BumpEpochIsACompareAndSetThatNamesItsAdopter) {
  auto& store = *this->store_;
  EXPECT_EQ(*store.epoch("nfs1"), 0u);
  EXPECT_EQ(*store.fence("nfs1"), Fence{});
  auto bumped = store.bump_epoch("nfs1", 0, "nfs2");
  ASSERT_TRUE(bumped.ok()) << bumped.error().message;
  EXPECT_EQ(*bumped, 1u);
  EXPECT_EQ(*store.fence("nfs1"), (Fence{1, "nfs2"}));
  // The loser learns the epoch and who set it.
  auto stale = store.bump_epoch("nfs1", 0, "nfs3");
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, kErrFenced);
  EXPECT_THAT(stale.error().message, HasSubstr("already 1 (nfs2 adopted it first)"));
  // A retry by the winner itself is no exception: the compare-and-set decides alone.
  EXPECT_EQ(store.bump_epoch("nfs1", 0, "nfs2").error().code, kErrFenced);
  EXPECT_EQ(*store.bump_epoch("nfs1", 1, "nfs3"), 2u);
  EXPECT_FALSE(store.bump_epoch("nfs1", 5, "nfs3").ok());
  EXPECT_EQ(*store.epoch("nfs1"), 2u);
  EXPECT_EQ(*store.fence("nfs1"), (Fence{2, "nfs3"}));
  EXPECT_EQ(*store.epoch("nfs2"), 0u);
  EXPECT_EQ(*store.fence("nfs2"), Fence{});
  // Another connection (another node) sees the same fence.
  EXPECT_EQ(*this->open()->fence("nfs1"), (Fence{2, "nfs3"}));
  // An adopter's name is checked like a node's.
  EXPECT_FALSE(store.bump_epoch("nfs1", 2, "../evil").ok());
  EXPECT_EQ(*store.fence("nfs1"), (Fence{2, "nfs3"}));
  // A node with only an epoch is a node of the store.
  EXPECT_EQ(*store.list_nodes(), std::vector<std::string>{"nfs1"});
}

TYPED_TEST(StoreConformance, WritesWithAStaleEpochAreFenced) {
  auto primary = this->open();
  auto adoptive = this->open();
  ASSERT_TRUE(primary && adoptive);
  auto kept = make_record("nfs1", "client", 0);
  std::vector<LockRecord> locks{make_lock("nfs1", 0, 0, 9)};
  ASSERT_TRUE(primary->put_monitor(kept).ok());
  ASSERT_TRUE(primary->put_locks("nfs1", 0, locks).ok());

  ASSERT_EQ(*adoptive->bump_epoch("nfs1", 0, "nfs2"), 1u);  // nfs2 adopts nfs1

  auto late_put = primary->put_monitor(make_record("nfs1", "late-client", 0));
  ASSERT_FALSE(late_put.ok());
  EXPECT_EQ(late_put.error().code, kErrFenced);
  EXPECT_THAT(late_put.error().message, HasSubstr("adopted (epoch 1)"));
  auto late_file = primary->put_monitor_file(make_file("nfs1", "client", 2, 0));
  EXPECT_EQ(late_file.error().code, kErrFenced);
  auto late_delete = primary->delete_monitor("nfs1", "client", 0);
  ASSERT_FALSE(late_delete.ok());
  EXPECT_EQ(late_delete.error().code, kErrFenced);
  auto late_locks = primary->put_locks("nfs1", 0, {});
  ASSERT_FALSE(late_locks.ok());
  EXPECT_EQ(late_locks.error().code, kErrFenced);

  EXPECT_EQ(*adoptive->list_monitor("nfs1"), std::vector<MonitorRecord>{kept});
  EXPECT_EQ(*adoptive->list_locks("nfs1"), locks);
  // The adoptive node, at the new epoch, may write.
  EXPECT_TRUE(adoptive->put_monitor(make_record("nfs1", "client2", 1)).ok());
  EXPECT_TRUE(adoptive->delete_monitor("nfs1", "client", 1).ok());
  EXPECT_TRUE(adoptive->put_locks("nfs1", 1, {make_lock("nfs1", 1, 0, 1)}).ok());
  // A newer epoch than the store's is not fenced (the writer learned of a bump first).
  EXPECT_TRUE(adoptive->put_monitor(make_record("nfs1", "client3", 5)).ok());
}

TYPED_TEST(StoreConformance, BumpEpochRacedByManyProcessesHasExactlyOneWinner) {
  const std::string url = this->url_;
  this->close_before_fork();
  TempDir said;
  for (int round = 0; round < 8; ++round) {
    const std::string node = "nfs" + std::to_string(round);
    auto codes = run_in_processes(6, [&](int i) {
      auto store = open_store(url);
      if (!store.ok()) return 3;
      auto bumped = (*store)->bump_epoch(node, 0, "adopter" + std::to_string(i));
      if (bumped.ok()) return *bumped == 1 ? 0 : 4;
      write_raw_file(said / std::to_string(i), bumped.error().message);
      return bumped.error().code == kErrFenced ? 1 : 2;
    });
    int winners = 0, winner = -1;
    for (int i = 0; i < static_cast<int>(codes.size()); ++i) {
      EXPECT_TRUE(codes[i] == 0 || codes[i] == 1) << "exit code " << codes[i];
      if (codes[i] == 0) ++winners, winner = i;
    }
    ASSERT_EQ(winners, 1) << node;
    const std::string name = "adopter" + std::to_string(winner);
    EXPECT_EQ(*this->open()->fence(node), (Fence{1, name})) << node;
    for (int i = 0; i < static_cast<int>(codes.size()); ++i) {
      if (i == winner) continue;
      EXPECT_THAT(read_raw_file(said / std::to_string(i)), HasSubstr(name + " adopted it first"));
    }
  }
}

// --- one adopter (failover::migrate racing itself) -------------------------------------------

// What an adoptive node does in these races: the whole migration of `node` into its own statd
// directory, recognition off, through a store that pauses where the race is decided.
Result<failover::MigrateReport> adopt(Store& store, const std::string& node,
                                      const std::string& adopter, const std::string& sm) {
  failover::MigrateOptions o;
  o.from_node = node;
  o.to_node = adopter;
  o.statmon_dir = sm;
  o.recognize.method = failover::RecognizeMethod::none;
  return failover::migrate(store, o);
}

// Widens the windows on purpose: a random pause between reading the fence and the
// compare-and-set, and after a won compare-and-set, before the migration record is written (the
// window issue 12 found: a second adopter read the new epoch there, found no migration record
// and fenced again).
class PausingStore final : public lockferry::testing::ForwardingStore {
 public:
  PausingStore(Store& inner, unsigned seed) : ForwardingStore(inner), rng_(seed) {}
  // Adopters start up to 8 ms apart (issue 12: two `migrate` 0-30 ms apart), so that some read
  // the fence while another one is inside its window.
  void stagger() { pause(8000); }
  Result<Fence> fence(std::string_view node) override {
    auto found = inner_.fence(node);
    pause(3000);
    return found;
  }
  Result<std::uint64_t> bump_epoch(std::string_view node, std::uint64_t expected,
                                   std::string_view adopter) override {
    auto bumped = inner_.bump_epoch(node, expected, adopter);
    if (bumped.ok()) pause(10'000);
    return bumped;
  }

 private:
  void pause(unsigned max_us) {
    std::this_thread::sleep_for(std::chrono::microseconds(rng_() % max_us));
  }
  std::mt19937 rng_;
};

// Freezes its process (SIGSTOP) the moment it has won the fence, as an adopter that the
// scheduler, swap or a debugger stops right there.
class FreezingStore final : public lockferry::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<std::uint64_t> bump_epoch(std::string_view node, std::uint64_t expected,
                                   std::string_view adopter) override {
    auto bumped = inner_.bump_epoch(node, expected, adopter);
    if (bumped.ok()) ::raise(SIGSTOP);
    return bumped;
  }
};

// How one adopter of a race ended: won (the migration ran, ok) or the error it got.
struct Outcome {
  bool won = false;
  std::string message;
};

Outcome outcome_of(const Result<failover::MigrateReport>& report) {
  if (!report.ok()) return {false, report.error().message};
  return {report->ok, report->message};
}

std::vector<MonitorRecord> seed_node(Store& store, const std::string& node) {
  std::vector<MonitorRecord> all;
  for (const std::string client : {"client-a", "client-b"}) {
    auto file = make_file(node, client, 1);
    EXPECT_TRUE(store.put_monitor_file(file).ok());
    all.insert(all.end(), file.begin(), file.end());
  }
  return all;
}

// Exactly one adopter won; every other one was told who did; the store names the winner in the
// fence and in the only migration record of `node`; only the winner's statd directory was written.
void expect_one_adopter(Store& store, const std::string& node, const std::vector<Outcome>& outcomes,
                        const std::vector<std::string>& sms) {
  std::vector<int> winners;
  for (int i = 0; i < static_cast<int>(outcomes.size()); ++i)
    if (outcomes[i].won) winners.push_back(i);
  ASSERT_EQ(winners.size(), 1u) << node << ": " << winners.size() << " adopters replayed it";
  const std::string winner = "adopter" + std::to_string(winners[0]);
  for (int i = 0; i < static_cast<int>(outcomes.size()); ++i) {
    if (i == winners[0]) continue;
    EXPECT_THAT(outcomes[i].message, HasSubstr("was already adopted by " + winner)) << node;
    EXPECT_TRUE(dir_names(sms[i]).empty()) << node << ": loser adopter" << i << " replayed";
  }
  EXPECT_EQ(dir_names(sms[winners[0]]), (std::vector<std::string>{"client-a", "client-b"}));
  EXPECT_EQ(*store.fence(node), (Fence{1, winner})) << node;
  auto migrations = store.list_migrations();
  ASSERT_TRUE(migrations.ok()) << migrations.error().message;
  std::vector<MigrationRecord> of_node;
  for (const auto& m : *migrations)
    if (m.from_node == node) of_node.push_back(m);
  ASSERT_EQ(of_node.size(), 1u) << node;
  EXPECT_EQ(of_node[0].to_node, winner);
  EXPECT_EQ(of_node[0].epoch, 1u);
  EXPECT_EQ(of_node[0].result, "ok");
}

std::vector<std::string> make_statmon_dirs(const TempDir& tmp, const std::string& node, int n) {
  std::vector<std::string> sms;
  for (int i = 0; i < n; ++i) {
    sms.push_back(tmp / (node + "-sm" + std::to_string(i)));
    std::filesystem::create_directories(sms.back());
  }
  return sms;
}

constexpr int kAdopters = 4;
constexpr int kRaces = 10;

TYPED_TEST(StoreConformance, AdoptersRacingInThreadsHaveExactlyOneWinnerNamedToTheOthers) {
  TempDir tmp;
  for (int race = 0; race < kRaces; ++race) {
    const std::string node = "nfs-t" + std::to_string(race);
    seed_node(*this->store_, node);
    const auto sms = make_statmon_dirs(tmp, node, kAdopters);
    std::vector<Outcome> outcomes(kAdopters);
    std::atomic<int> waiting{kAdopters};
    std::vector<std::thread> threads;
    for (int i = 0; i < kAdopters; ++i) {
      threads.emplace_back([&, i] {
        // Each adopter has its own connection, as each node has.
        auto store = open_store(this->url_);
        waiting.fetch_sub(1);
        while (waiting.load() > 0) std::this_thread::yield();
        if (!store.ok()) {
          outcomes[i] = {false, store.error().message};
          return;
        }
        PausingStore paused(**store, static_cast<unsigned>(race * kAdopters + i));
        paused.stagger();
        outcomes[i] = outcome_of(adopt(paused, node, "adopter" + std::to_string(i), sms[i]));
      });
    }
    for (auto& t : threads) t.join();
    expect_one_adopter(*this->store_, node, outcomes, sms);
  }
}

TYPED_TEST(StoreConformance, AdoptersRacingInProcessesHaveExactlyOneWinnerNamedToTheOthers) {
  TempDir tmp;
  for (int race = 0; race < kRaces; ++race) {
    const std::string node = "nfs-p" + std::to_string(race);
    seed_node(*this->store_, node);
    const auto sms = make_statmon_dirs(tmp, node, kAdopters);
    this->close_before_fork();
    auto codes = run_in_processes(kAdopters, [&](int i) {
      auto store = open_store(this->url_);
      if (!store.ok()) return 3;
      PausingStore paused(**store, static_cast<unsigned>(::getpid()));
      paused.stagger();
      const Outcome o = outcome_of(adopt(paused, node, "adopter" + std::to_string(i), sms[i]));
      write_raw_file(tmp / (node + "-said" + std::to_string(i)), o.message);
      return o.won ? 0 : 1;
    });
    this->store_ = this->open();
    ASSERT_TRUE(this->store_);
    std::vector<Outcome> outcomes;
    for (int i = 0; i < kAdopters; ++i) {
      EXPECT_TRUE(codes[i] == 0 || codes[i] == 1) << "adopter" << i << " exit code " << codes[i];
      outcomes.push_back(
          {codes[i] == 0, read_raw_file(tmp / (node + "-said" + std::to_string(i)))});
    }
    expect_one_adopter(*this->store_, node, outcomes, sms);
  }
}

TYPED_TEST(StoreConformance, AnAdopterFrozenRightAfterItsFenceIsStillTheOnlyOneThatAdopts) {
  // Issue 12's reproduction, made deterministic: adopter0 is stopped the moment its new epoch is
  // in the store (before its migration record is), adopter1 runs its whole migration, then
  // adopter0 resumes.
  TempDir tmp;
  const std::string node = "nfs1";
  seed_node(*this->store_, node);
  const auto sms = make_statmon_dirs(tmp, node, 2);
  this->close_before_fork();
  const pid_t first = ::fork();
  ASSERT_GE(first, 0);
  if (first == 0) {
    ::alarm(60);
    auto store = open_store(this->url_);
    if (!store.ok()) ::_exit(3);
    FreezingStore freezing(**store);
    const Outcome o = outcome_of(adopt(freezing, node, "adopter0", sms[0]));
    write_raw_file(tmp / "said0", o.message);
    ::_exit(o.won ? 0 : 1);
  }
  // Whatever happens below, the child does not outlive the test (and once reaped, its pid is
  // never signalled: it may belong to another process by then).
  bool reaped = false;
  std::shared_ptr<void> reap(nullptr, [&reaped, first](void*) {
    if (!reaped && ::kill(first, SIGKILL) == 0) ::waitpid(first, nullptr, 0);
  });
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  pid_t changed = 0;
  while ((changed = ::waitpid(first, &status, WUNTRACED | WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  reaped = changed == first && !WIFSTOPPED(status);
  ASSERT_TRUE(changed == first && WIFSTOPPED(status))
      << "adopter0 never won its fence: " << read_raw_file(tmp / "said0");

  this->store_ = this->open();
  ASSERT_TRUE(this->store_);
  const Outcome second = outcome_of(adopt(*this->store_, node, "adopter1", sms[1]));
  EXPECT_FALSE(second.won);
  EXPECT_THAT(second.message, HasSubstr("was already adopted by adopter0 at epoch 1"));
  EXPECT_THAT(second.message, HasSubstr("adopting it right now"));

  ASSERT_EQ(::kill(first, SIGCONT), 0);
  ASSERT_EQ(::waitpid(first, &status, 0), first);
  reaped = true;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << read_raw_file(tmp / "said0");
  expect_one_adopter(*this->store_, node, {{WEXITSTATUS(status) == 0, ""}, second}, sms);
}

TYPED_TEST(StoreConformance, MigratingANodeTheStoreNeverHeardOfIsRefusedNamingTheKnownNodes) {
  auto& store = *this->store_;
  seed_node(store, "nfs1");
  ASSERT_TRUE(store.put_locks("nfs3", 0, {}).ok());  // a node with an (empty) lock table only
  TempDir tmp;
  const auto sms = make_statmon_dirs(tmp, "x", 1);
  auto typo = adopt(store, "nfs11", "nfs2", sms[0]);
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(typo.error().message, HasSubstr("node nfs11 is unknown to the store"));
  EXPECT_THAT(typo.error().message, HasSubstr("The store knows these nodes: nfs1, nfs3"));
  EXPECT_THAT(typo.error().message, HasSubstr("--force"));
  // Nothing changed: no fence, no migration, no new node.
  EXPECT_EQ(*store.fence("nfs11"), Fence{});
  EXPECT_TRUE(store.list_migrations()->empty());
  EXPECT_EQ(*store.list_nodes(), (std::vector<std::string>{"nfs1", "nfs3"}));

  // A node with history but no records is no typo; neither is one adopted on purpose.
  auto known = adopt(store, "nfs3", "nfs2", sms[0]);
  ASSERT_TRUE(known.ok()) << known.error().message;
  EXPECT_EQ(known->epoch, 1u);
  failover::MigrateOptions o;
  o.from_node = "nfs11";
  o.to_node = "nfs2";
  o.statmon_dir = sms[0];
  o.recognize.method = failover::RecognizeMethod::none;
  o.adopt_unknown = true;
  auto on_purpose = failover::migrate(store, o);
  ASSERT_TRUE(on_purpose.ok()) << on_purpose.error().message;
  EXPECT_TRUE(on_purpose->ok);
  EXPECT_EQ(on_purpose->records, 0u);
  EXPECT_EQ(*store.fence("nfs11"), (Fence{1, "nfs2"}));
}

// --- several processes ----------------------------------------------------------------------

TYPED_TEST(StoreConformance, ProcessesOpeningTheStoreAtOnceAllSucceed) {
  // Not through this->store_: a fresh location, so the first opens create it (and its schema).
  std::string url = this->url_;
  if (url.rfind("dir://", 0) == 0)
    url += "-fresh";
  else if (url.rfind("sqlite://", 0) == 0)
    url.replace(url.size() - 3, 3, "-fresh.db");
  else {
    auto fresh = lockferry::testing::PgTestServer::instance(nullptr)->create_database();
    ASSERT_TRUE(fresh.ok()) << fresh.error().message;
    url = *fresh;
  }
  this->close_before_fork();
  auto codes = run_in_processes(5, [&](int p) {
    auto store = open_store(url);
    if (!store.ok()) return 1;
    return (*store)->put_monitor(make_record("nfs" + std::to_string(p), "client")).ok() ? 0 : 2;
  });
  EXPECT_EQ(codes, std::vector<int>(5, 0));
  auto store = open_store(url);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->list_nodes()->size(), 5u);
}

TYPED_TEST(StoreConformance, ConcurrentWriterProcessesLoseNothingAndCorruptNothing) {
  constexpr int kProcs = 4, kEach = 30;
  const std::string url = this->url_;
  this->close_before_fork();
  auto codes = run_in_processes(kProcs, [&](int p) {
    auto store = open_store(url);
    if (!store.ok()) return 3;
    for (int i = 0; i < kEach; ++i) {
      auto own = make_record("nfs1", "client-" + std::to_string(p) + "-" + std::to_string(i));
      auto shared = make_file("nfs1", "shared", 1 + (i + p) % 3, 0, "writer" + std::to_string(p));
      if (!(*store)->put_monitor(own).ok() || !(*store)->put_monitor_file(shared).ok()) return 1;
      std::vector<LockRecord> locks;
      for (int k = 0; k <= i % 5; ++k) locks.push_back(make_lock("nfs1", 0, k * 10, k * 10 + 5));
      if (!(*store)->put_locks("nfs1", 0, locks).ok()) return 4;
      if (i % 10 == 0 && !(*store)->list_monitor("nfs1").ok()) return 2;
    }
    return 0;
  });
  EXPECT_EQ(codes, std::vector<int>(kProcs, 0));

  lockferry::testing::LogCapture log;
  auto listed = this->open()->list_monitor("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  std::map<std::string, std::vector<MonitorRecord>> files;
  for (const auto& r : *listed) files[r.file_name].push_back(r);
  EXPECT_EQ(files.size(), static_cast<std::size_t>(kProcs * kEach + 1));
  // The shared file is one writer's whole write, never lines of two writes mixed.
  const auto& shared = files["shared"];
  ASSERT_FALSE(shared.empty());
  const std::string writer = shared[0].my_name.substr(0, shared[0].my_name.find('-'));
  for (std::size_t i = 0; i < shared.size(); ++i)
    EXPECT_EQ(shared[i].my_name, writer + "-" + std::to_string(i));
  auto locks = this->open()->list_locks("nfs1");
  ASSERT_TRUE(locks.ok()) << locks.error().message;
  EXPECT_FALSE(locks->empty());
  EXPECT_EQ(log.text(), "") << "a record was corrupt";
}

// A writer killed (SIGKILL) in the middle of its writes leaves each monitor file and the lock
// table either as before or as after one whole write, and the store usable by the next writer.
TYPED_TEST(StoreConformance, AWriterKilledMidWriteLeavesNothingHalfWritten) {
  const std::string url = this->url_;
  this->close_before_fork();
  for (int round = 0; round < 3; ++round) {
    const KilledWriter w = kill_a_writer(
        url, 0,
        [](Store& st, std::uint64_t i) {
          // Generation i: a file of 1-3 lines tagged g<i>, and a table of 1-200 locks owned by i.
          auto file = make_file("nfs1", "client-" + std::to_string(i % 4), 1 + i % 3, 0,
                                "g" + std::to_string(i));
          std::vector<LockRecord> locks;
          for (std::uint64_t k = 0; k < 1 + (i * 37) % 200; ++k) {
            auto l = make_lock("nfs1", 0, k * 10, k * 10 + 5);
            l.owner = i;
            locks.push_back(l);
          }
          if (!st.put_monitor_file(file).ok() || !st.put_locks("nfs1", 0, locks).ok()) return false;
          if (i % 8 == 7) (void)st.delete_monitor("nfs1", "client-3", 0);
          return true;
        },
        10 + 7 * round, std::chrono::microseconds(1500 * round + 300));
    ASSERT_TRUE(w.killed) << "writer exited " << w.exit_code << " before the kill";
    ASSERT_GE(w.seen, 10) << "the writer made no progress";

    lockferry::testing::LogCapture log;
    auto store = this->open();
    auto listed = store->list_monitor("nfs1");
    ASSERT_TRUE(listed.ok()) << listed.error().message;
    std::map<std::string, std::vector<MonitorRecord>> files;
    for (const auto& r : *listed) files[r.file_name].push_back(r);
    EXPECT_GE(files.size(), 3u);
    for (const auto& [name, lines] : files) {
      if (name.rfind("client-", 0) != 0) continue;  // "after-the-crash" of the previous round
      const std::string gen = lines[0].my_name.substr(0, lines[0].my_name.find('-'));
      const std::uint64_t g = std::stoull(gen.substr(1));
      ASSERT_EQ(lines.size(), 1 + g % 3) << name << " holds a partial write of " << gen;
      for (std::size_t i = 0; i < lines.size(); ++i)
        EXPECT_EQ(lines[i].my_name, gen + "-" + std::to_string(i)) << name;
    }
    auto locks = store->list_locks("nfs1");
    ASSERT_TRUE(locks.ok()) << locks.error().message;
    ASSERT_FALSE(locks->empty());
    const std::uint64_t owner = locks->front().owner;
    EXPECT_EQ(locks->size(), 1 + (owner * 37) % 200) << "a partial lock table";
    for (const auto& l : *locks) EXPECT_EQ(l.owner, owner);
    EXPECT_EQ(log.text(), "") << "a record was corrupt";

    // Nothing stays locked by the dead writer.
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(store->put_monitor(make_record("nfs1", "after-the-crash")).ok());
    ASSERT_TRUE(store->put_locks("nfs1", 0, {}).ok());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
    store.reset();  // closed before the next fork
  }
}

// --- sizes and names ------------------------------------------------------------------------

TYPED_TEST(StoreConformance, LargeValuesRoundTrip) {
  auto& store = *this->store_;
  // The longest names statd can write into one line (1095 bytes), and the longest file name.
  MonitorRecord big = make_record("n" + std::string(199, 'x'), std::string(250, 'f'));
  big.mon_name = std::string(600, 'm');
  big.my_name = std::string(1095 - 69 - 600 - 2, 'y');
  big.raw = statmon::format_record(big);
  ASSERT_EQ(big.raw.size(), statmon::kMaxLineBytes);
  ASSERT_TRUE(store.put_monitor(big).ok());
  EXPECT_EQ(*store.list_monitor(big.node), std::vector<MonitorRecord>{big});

  std::vector<LockRecord> locks;
  for (std::uint64_t i = 0; i < 3000; ++i) {
    auto l = make_lock("nfs1", 0, i * 100, i * 100 + 99, i % 2 ? "read" : "write");
    l.path = "/srv/" + std::string(1000, 'p') + std::to_string(i);
    locks.push_back(l);
  }
  locks.back().path = "/" + std::string(4095, 'q');
  ASSERT_TRUE(store.put_locks("nfs1", 0, locks).ok());
  auto listed = store.list_locks("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(*listed, locks);

  auto m = make_migration("nfs1", 1, 1);
  m.result = std::string(20000, 'r');
  ASSERT_TRUE(store.put_migration(m).ok());
  EXPECT_EQ(*store.list_migrations(), std::vector<MigrationRecord>{m});
}

// statd writes any file name up to NAME_MAX (255 bytes; a legal host name reaches 253), and a
// record the store cannot keep is a client whose locks are lost at failover.
TYPED_TEST(StoreConformance, EveryFileNameStatdCanWriteRoundTripsByteExact) {
  auto& store = *this->store_;
  std::string label(63, 'h');
  const std::string host253 = label + "." + label + "." + label + "." + std::string(61, 'h');
  ASSERT_EQ(host253.size(), 253u);
  std::string accents;  // 2-byte characters: a cut at a fixed byte would split one
  while (accents.size() < 254) accents += "\xc3\xa9";
  const std::vector<std::string> names{
      std::string(250, 'a'), std::string(251, 'a'),       host253,
      std::string(255, 'a'), std::string(254, 'a') + "b", accents.substr(0, 254) + "z",
      "short.example"};
  std::vector<std::vector<MonitorRecord>> files;
  for (const auto& name : names) files.push_back(make_file("nfs1", name, name == host253 ? 2 : 1));
  ASSERT_TRUE(store.put_monitor_files(files).ok());
  std::vector<MonitorRecord> expected;
  for (const auto& f : files) expected.insert(expected.end(), f.begin(), f.end());
  std::stable_sort(expected.begin(), expected.end(),
                   [](const auto& a, const auto& b) { return a.file_name < b.file_name; });
  auto listed = store.list_monitor("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(*listed, expected);

  // Replaced and deleted by the same name: 255 'a' and 254 'a' + 'b' share every byte but one.
  auto replaced = make_record("nfs1", std::string(255, 'a'), 0, "other-server");
  ASSERT_TRUE(store.put_monitor(replaced).ok());
  ASSERT_TRUE(store.delete_monitor("nfs1", std::string(254, 'a') + "b", 0).ok());
  listed = store.list_monitor("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), expected.size() - 1);
  EXPECT_EQ(std::count(listed->begin(), listed->end(), replaced), 1);
  for (const auto& r : *listed) EXPECT_NE(r.file_name, std::string(254, 'a') + "b");
}

TYPED_TEST(StoreConformance, HostileNamesAreRefusedAndStoreNothing) {
  auto& store = *this->store_;
  const std::vector<std::string> bad{"",          ".",
                                     "..",        "../etc",
                                     "a/b",       ".hidden",
                                     "has space", "tab\there",
                                     "new\nline", std::string("nul\0x", 5),
                                     "\xff\xfe",  std::string(300, 'a')};
  for (const auto& name : bad) {
    SCOPED_TRACE(statmon::printable(name));
    auto as_node = make_record("nfs1", "client");
    as_node.node = name;
    EXPECT_FALSE(store.put_monitor(as_node).ok());
    EXPECT_FALSE(store.delete_monitor(name, "client", 0).ok());
    EXPECT_FALSE(store.list_monitor(name).ok());
    EXPECT_FALSE(store.epoch(name).ok());
    EXPECT_FALSE(store.bump_epoch(name, 0, "nfs2").ok());
    EXPECT_FALSE(store.put_locks(name, 0, {}).ok());
    EXPECT_FALSE(store.list_locks(name).ok());
    EXPECT_FALSE(store.put_migration(make_migration(name, 1, 1)).ok());

    auto as_file = make_record("nfs1", "client");
    as_file.file_name = name;
    EXPECT_FALSE(store.put_monitor(as_file).ok());
    EXPECT_FALSE(store.delete_monitor("nfs1", name, 0).ok());
  }
  EXPECT_FALSE(store.put_migration(make_migration("migrations", 1, 1)).ok());
  EXPECT_FALSE(store.put_monitor(make_record("migrations", "client")).ok());
  EXPECT_FALSE(store.put_monitor(make_record("nfs1", std::string(256, 'f'))).ok());
  EXPECT_TRUE(store.list_nodes()->empty());
  EXPECT_TRUE(store.list_monitor("nfs1")->empty());
  EXPECT_TRUE(store.list_migrations()->empty());

  // Odd but valid names are data, never SQL or paths.
  for (const std::string name :
       {"x';DROP_TABLE_nodes;--", "q\"uote", "ünïcødé", "%s%n$1?1", "back\\slash", "nodes", "*"}) {
    SCOPED_TRACE(name);
    auto r = make_record(name, name);
    ASSERT_TRUE(store.put_monitor(r).ok());
    EXPECT_EQ(*store.list_monitor(name), std::vector<MonitorRecord>{r});
    ASSERT_EQ(*store.bump_epoch(name, 0, "nfs2"), 1u);
    ASSERT_TRUE(store.put_locks(name, 1, {make_lock(name, 1, 0, 1)}).ok());
    EXPECT_EQ(store.list_locks(name)->size(), 1u);
  }
  EXPECT_EQ(store.list_nodes()->size(), 7u);
}

// --- migrations -----------------------------------------------------------------------------

TYPED_TEST(StoreConformance, MigrationsArePutByFromNodeAndEpochAndListedInStartOrder) {
  auto& store = *this->store_;
  EXPECT_TRUE(store.list_migrations()->empty());
  auto late = make_migration("nfs1", 2, 300);
  auto early = make_migration("nfs3", 1, 100);
  auto running = make_migration("nfs1", 1, 200);
  running.finished_ns = 0;
  running.result = "running";
  for (const auto* m : {&late, &early, &running}) ASSERT_TRUE(store.put_migration(*m).ok());
  EXPECT_EQ(*store.list_migrations(), (std::vector<MigrationRecord>{early, running, late}));

  // Finishing a migration updates its record (same from_node and epoch).
  running.finished_ns = 250;
  running.result = "1 record(s) refused";
  running.to_node = "nfs4";
  ASSERT_TRUE(store.put_migration(running).ok());
  EXPECT_EQ(*store.list_migrations(), (std::vector<MigrationRecord>{early, running, late}));
  // Migrations do not make nodes.
  EXPECT_TRUE(store.list_nodes()->empty());
}

// --- batches (put_monitor_files) -------------------------------------------------------------

TYPED_TEST(StoreConformance, ABatchStoresEveryFileOfEveryNodeAndReplacesFilesWhole) {
  auto& store = *this->store_;
  EXPECT_TRUE(store.put_monitor_files({}).ok());
  // Hundreds of files over two nodes, some multi-line.
  std::vector<std::vector<MonitorRecord>> batch;
  std::map<std::string, std::vector<MonitorRecord>> expected;  // node -> records as listed
  for (int i = 0; i < 300; ++i) {
    const std::string node = i % 2 == 0 ? "nfs1" : "nfs2";
    char name[32];
    std::snprintf(name, sizeof name, "client-%03d", i);
    batch.push_back(make_file(node, name, i % 10 == 0 ? 3 : 1));
  }
  ASSERT_TRUE(store.put_monitor_files(batch).ok());
  for (const auto& file : batch)
    for (const auto& r : file) expected[r.node].push_back(r);
  EXPECT_EQ(*store.list_monitor("nfs1"), expected["nfs1"]);
  EXPECT_EQ(*store.list_monitor("nfs2"), expected["nfs2"]);

  // Again, with new content for some (3 lines become 1 and 1 becomes 2) and one new file.
  std::vector<std::vector<MonitorRecord>> second{make_file("nfs1", "client-000", 1, 0, "v2"),
                                                 make_file("nfs1", "client-002", 2, 0, "v2"),
                                                 make_file("nfs1", "client-new", 1, 0, "v2")};
  ASSERT_TRUE(store.put_monitor_files(second).ok());
  auto listed = store.list_monitor("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), expected["nfs1"].size() - 3 + 1 + 1 + 1);
  std::map<std::string, std::vector<MonitorRecord>> files;
  for (const auto& r : *listed) files[r.file_name].push_back(r);
  EXPECT_EQ(files["client-000"], second[0]);
  EXPECT_EQ(files["client-002"], second[1]);
  EXPECT_EQ(files["client-new"], second[2]);
  EXPECT_EQ(files["client-010"].size(), 3u);  // untouched
  EXPECT_EQ(*store.list_monitor("nfs2"), expected["nfs2"]);
}

TYPED_TEST(StoreConformance, ABatchWithAStaleEpochIsFencedAndStoresNothing) {
  auto primary = this->open();
  auto adoptive = this->open();
  ASSERT_TRUE(primary && adoptive);
  ASSERT_EQ(*adoptive->bump_epoch("nfs1", 0, "nfs2"), 1u);
  auto late = primary->put_monitor_files(
      {make_file("nfs1", "client-a", 1, 0), make_file("nfs1", "client-b", 2, 0)});
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, kErrFenced);
  EXPECT_THAT(late.error().message, HasSubstr("adopted (epoch 1)"));
  EXPECT_TRUE(adoptive->list_monitor("nfs1")->empty());
  // The adoptive node's batch at the new epoch is stored.
  EXPECT_TRUE(adoptive->put_monitor_files({make_file("nfs1", "client-a", 1, 1)}).ok());
  EXPECT_EQ(adoptive->list_monitor("nfs1")->size(), 1u);
}

TYPED_TEST(StoreConformance, ABatchWithAnInvalidFileIsRefusedAndTheInvalidFileNotStored) {
  auto& store = *this->store_;
  auto bad = make_record("nfs1", "client-bad");
  bad.raw = "0100007f 000186b5 00000004 00000010 0102 client-bad other\n";
  auto result = store.put_monitor_files({make_file("nfs1", "client-good", 1), {bad}});
  ASSERT_FALSE(result.ok());
  auto listed = store.list_monitor("nfs1");
  ASSERT_TRUE(listed.ok());
  for (const auto& r : *listed) EXPECT_NE(r.file_name, "client-bad");
  // dir:// checks the whole batch before it writes any of it.
  if constexpr (std::is_same_v<TypeParam, DirBackend>) {
    EXPECT_TRUE(listed->empty());
  }
}

TYPED_TEST(StoreConformance, AWriterKilledMidBatchLeavesEveryFileWhole) {
  const std::string url = this->url_;
  this->close_before_fork();
  for (int round = 0; round < 3; ++round) {
    const KilledWriter w = kill_a_writer(
        url, 0,
        [](Store& st, std::uint64_t i) {
          // Generation i: 8 files of 1-3 lines each, tagged g<i>.
          std::vector<std::vector<MonitorRecord>> batch;
          for (int f = 0; f < 8; ++f)
            batch.push_back(make_file("nfs1", "client-" + std::to_string(f), 1 + (i + f) % 3, 0,
                                      "g" + std::to_string(i)));
          return st.put_monitor_files(batch).ok();
        },
        5 + 3 * round, std::chrono::microseconds(2000 * round + 500));
    ASSERT_TRUE(w.killed) << "writer exited " << w.exit_code << " before the kill";
    ASSERT_GE(w.seen, 5) << "the writer made no progress";

    lockferry::testing::LogCapture log;
    auto store = this->open();
    auto listed = store->list_monitor("nfs1");
    ASSERT_TRUE(listed.ok()) << listed.error().message;
    std::map<std::string, std::vector<MonitorRecord>> files;
    for (const auto& r : *listed) files[r.file_name].push_back(r);
    EXPECT_EQ(files.size(), 8u);
    for (const auto& [name, lines] : files) {
      const int f = std::stoi(name.substr(std::string("client-").size()));
      const std::string gen = lines[0].my_name.substr(0, lines[0].my_name.find('-'));
      const std::uint64_t g = std::stoull(gen.substr(1));
      ASSERT_EQ(lines.size(), 1 + (g + static_cast<std::uint64_t>(f)) % 3)
          << name << " holds a partial write of " << gen;
      for (std::size_t i = 0; i < lines.size(); ++i)
        EXPECT_EQ(lines[i].my_name, gen + "-" + std::to_string(i)) << name;
    }
    EXPECT_EQ(log.text(), "") << "a record was corrupt";
    store.reset();  // closed before the next fork
  }
}

}  // namespace
}  // namespace lockferry::store
