// SPDX-License-Identifier: Apache-2.0
// What only the postgresql:// store does, against a real server (pg_test_server.h): its schema
// in schema_version, refusing a newer schema, and surviving the server going away — writes
// queued (not acknowledged), flushed in order when it is back, bounded, and fenced on flush.
#include "store/pg_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "dir_store_test_util.h"
#include "pg_test_server.h"
#include "statmon/record.h"
#include "store/store.h"

namespace lockferry::store {
namespace {

using lockferry::testing::make_record;
using lockferry::testing::PgTestServer;
using ::testing::HasSubstr;

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    server_ = PgTestServer::instance(&why);
    if (server_ == nullptr) {
      if (lockferry::testing::pg_required()) FAIL() << why << " (LOCKFERRY_REQUIRE_E2E/BPF=1)";
      GTEST_SKIP() << why;
    }
    auto url = server_->create_database();
    ASSERT_TRUE(url.ok()) << url.error().message;
    url_ = *url;
  }
  void TearDown() override {
    if (server_ != nullptr && stopped_) {
      EXPECT_TRUE(server_->start().ok());
    }
  }

  void stop_server() {
    auto ok = server_->stop();
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    stopped_ = true;
  }
  void start_server() {
    auto ok = server_->start();
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    stopped_ = false;
  }

  std::string sql(const std::string& statement) {
    pqxx::connection c(url_);
    pqxx::work tx(c);
    std::string out;
    for (const auto& row : tx.exec(statement)) {
      for (const auto& field : row) out += std::string(field.c_str()) + "|";
    }
    tx.commit();
    return out;
  }

  static PgOptions quick_retry(std::size_t max_backlog = 100) {
    PgOptions o;
    o.max_backlog = max_backlog;
    o.first_retry = std::chrono::milliseconds(20);
    o.max_retry = std::chrono::milliseconds(200);
    return o;
  }

  // Calls flush() until the backlog is written or 30 s passed.
  static std::size_t flush_until_empty(PgStore& store) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::size_t left = store.flush();
    while (left > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      left = store.flush();
    }
    return left;
  }

  PgTestServer* server_ = nullptr;
  std::string url_;
  bool stopped_ = false;
};

TEST_F(PgStoreTest, CreatesItsSchemaAndRecordsItsVersion) {
  auto store = open_store(url_);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(sql("SELECT version FROM schema_version ORDER BY version"), "1|2|3|");
  ASSERT_TRUE((*store)->put_monitor(make_record("nfs1", "client")).ok());
  ASSERT_EQ(*(*store)->bump_epoch("nfs1", 0, "nfs2"), 1u);
  // SQL users see plain tables, keyed and indexed for the usual questions.
  EXPECT_EQ(sql("SELECT node, epoch, adopter FROM nodes"), "nfs1|1|nfs2|");
  EXPECT_EQ(sql("SELECT file_name, mon_name, addr FROM monitor_records"),
            "client|client|16777343|");
  EXPECT_EQ(
      sql("SELECT count(*) FROM pg_indexes WHERE indexname IN ('monitor_records_by_mon_name', "
          "'lock_records_by_file', 'migrations_by_started', 'migrations_by_to_node')"),
      "4|");
  // A second open (another node starting) finds the schema and applies nothing.
  ASSERT_TRUE(open_store(url_).ok());
  EXPECT_EQ(sql("SELECT count(*) FROM schema_version"), "3|");
}

TEST_F(PgStoreTest, AVersion1DatabaseIsUpgradedAndItsEpochsKeptWithoutAnAdopter) {
  ASSERT_TRUE(open_store(url_).ok());
  // What lockferry with schema version 1 left: no adopter column, nfs1 fenced at epoch 1.
  sql("ALTER TABLE nodes DROP COLUMN adopter");
  sql("ALTER TABLE lock_records DROP COLUMN client_addr");
  sql("ALTER TABLE lock_records DROP COLUMN server_addr");
  sql("DELETE FROM schema_version WHERE version >= 2");
  sql("INSERT INTO nodes (node, epoch, epoch_changed_ns) VALUES ('nfs1', 1, 5)");
  auto store = open_store(url_);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(sql("SELECT version FROM schema_version ORDER BY version"), "1|2|3|");
  EXPECT_EQ(*(*store)->fence("nfs1"), (Fence{1, ""}));
  ASSERT_EQ(*(*store)->bump_epoch("nfs1", 1, "nfs3"), 2u);
  EXPECT_EQ(*(*store)->fence("nfs1"), (Fence{2, "nfs3"}));
}

TEST_F(PgStoreTest, RefusesADatabaseWithANewerSchema) {
  ASSERT_TRUE(open_store(url_).ok());
  sql("INSERT INTO schema_version VALUES (42, 'from the future', 0)");
  auto store = open_store(url_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, kErrSchemaNewer);
  EXPECT_THAT(store.error().message, HasSubstr("schema is version 42, newer than this lockferry"));
}

TEST_F(PgStoreTest, AnUnreachableServerIsAClearError) {
  auto store = open_store("postgresql:///lockferry?host=/nonexistent-lockferry-dir");
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.error().message, HasSubstr("cannot connect"));
  EXPECT_THAT(store.error().message, HasSubstr("/nonexistent-lockferry-dir"));
}

TEST_F(PgStoreTest, UrlsNeverShowThePassword) {
  EXPECT_EQ(hide_password("postgresql://lf:s3cret@db.example:5432/lockferry"),
            "postgresql://lf:***@db.example:5432/lockferry");
  EXPECT_EQ(hide_password("postgresql://db/lockferry?user=lf&password=s3cret&sslmode=require"),
            "postgresql://db/lockferry?user=lf&password=***&sslmode=require");
  EXPECT_EQ(hide_password("postgresql:///lockferry?host=/run/pg"),
            "postgresql:///lockferry?host=/run/pg");
  auto wrong = open_store("postgres://lf:s3cret@/x?host=/nonexistent-lockferry-dir");
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.error().message, ::testing::Not(HasSubstr("s3cret")));
}

TEST_F(PgStoreTest, WritesWhileTheServerIsDownAreQueuedAndStoredInOrderWhenItIsBack) {
  auto opened = PgStore::open(url_, quick_retry());
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  PgStore& store = **opened;
  auto a = make_record("nfs1", "client-a");
  ASSERT_TRUE(store.put_monitor(a).ok());
  EXPECT_EQ(store.backlog(), 0u);

  stop_server();
  auto b = make_record("nfs1", "client-b");
  auto queued = store.put_monitor(b);
  ASSERT_FALSE(queued.ok());
  EXPECT_EQ(queued.error().code, kErrQueued);
  EXPECT_THAT(queued.error().message, HasSubstr("not stored yet"));
  EXPECT_EQ(store.backlog(), 1u);
  EXPECT_EQ(store.delete_monitor("nfs1", "client-a", 0).error().code, kErrQueued);
  auto c = make_record("nfs1", "client-c");
  EXPECT_EQ(store.put_monitor(c).error().code, kErrQueued);
  // A newer write of a queued record replaces it: the backlog holds each record once.
  b.my_name = "server-b2";
  b.raw = statmon::format_record(b);
  EXPECT_EQ(store.put_monitor(b).error().code, kErrQueued);
  LockRecord lock;
  lock.node = "nfs1";
  lock.type = "write";
  lock.end = 99;
  EXPECT_EQ(store.put_locks("nfs1", 0, {lock}).error().code, kErrQueued);
  EXPECT_EQ(store.backlog(), 4u);
  // Reads and fencing cannot be answered from memory: they fail, saying why.
  auto read = store.list_monitor("nfs1");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, kErrUnreachable);
  EXPECT_FALSE(store.bump_epoch("nfs1", 0, "nfs2").ok());
  // A bad write is refused at once, not queued.
  auto bad = make_record("nfs1", "../escape");
  EXPECT_NE(store.put_monitor(bad).error().code, kErrQueued);
  EXPECT_EQ(store.backlog(), 4u);

  start_server();
  EXPECT_EQ(flush_until_empty(store), 0u);
  auto listed = store.list_monitor("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(*listed, (std::vector<MonitorRecord>{b, c}));  // a deleted, b as last written
  EXPECT_EQ(store.list_locks("nfs1")->size(), 1u);
  // And writes are committed directly again.
  EXPECT_TRUE(store.put_monitor(make_record("nfs1", "client-d")).ok());
}

TEST_F(PgStoreTest, TheBacklogIsBounded) {
  auto opened = PgStore::open(url_, quick_retry(2));
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  PgStore& store = **opened;
  stop_server();
  EXPECT_EQ(store.put_monitor(make_record("nfs1", "c1")).error().code, kErrQueued);
  EXPECT_EQ(store.put_monitor(make_record("nfs1", "c2")).error().code, kErrQueued);
  auto full = store.put_monitor(make_record("nfs1", "c3"));
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.error().code, kErrQueued);
  EXPECT_THAT(full.error().message, HasSubstr("backlog is full"));
  EXPECT_EQ(store.backlog(), 2u);
  start_server();
  EXPECT_EQ(flush_until_empty(store), 0u);
  EXPECT_EQ(store.list_monitor("nfs1")->size(), 2u);
}

TEST_F(PgStoreTest, QueuedWritesOfANodeAdoptedMeanwhileAreDroppedNotStored) {
  auto opened = PgStore::open(url_, quick_retry());
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  PgStore& primary = **opened;
  ASSERT_TRUE(primary.put_monitor(make_record("nfs1", "kept")).ok());
  stop_server();
  EXPECT_EQ(primary.put_monitor(make_record("nfs1", "late")).error().code, kErrQueued);
  start_server();
  // The adoptive node fences nfs1 before the primary's backlog gets written.
  auto adoptive = open_store(url_);
  ASSERT_TRUE(adoptive.ok()) << adoptive.error().message;
  ASSERT_EQ(*(*adoptive)->bump_epoch("nfs1", 0, "nfs2"), 1u);

  lockferry::testing::LogCapture log;
  EXPECT_EQ(flush_until_empty(primary), 0u);
  EXPECT_THAT(log.text(), HasSubstr("dropped queued write of monitor record 'late'"));
  auto listed = (*adoptive)->list_monitor("nfs1");
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().file_name, "kept");
  EXPECT_EQ(primary.put_monitor(make_record("nfs1", "later")).error().code, kErrFenced);
}

TEST_F(PgStoreTest, AConnectionCutByTheServerIsReopened) {
  auto opened = PgStore::open(url_, quick_retry());
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  PgStore& store = **opened;
  ASSERT_TRUE(store.put_monitor(make_record("nfs1", "one")).ok());
  // An administrator (or a failover of PostgreSQL itself) cuts every lockferry connection.
  sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      "AND pid <> pg_backend_pid()");
  // The next call notices, connects again at once, and is committed: nothing queued.
  auto r = store.put_monitor(make_record("nfs1", "two"));
  EXPECT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(store.backlog(), 0u);
  sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      "AND pid <> pg_backend_pid()");
  // Fencing too: bump_epoch checks the connection first, since it is never repeated.
  auto bumped = store.bump_epoch("nfs1", 0, "nfs2");
  ASSERT_TRUE(bumped.ok()) << bumped.error().message;
  EXPECT_EQ(*bumped, 1u);
  sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      "AND pid <> pg_backend_pid()");
  auto listed = store.list_monitor("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(listed->size(), 2u);
}

}  // namespace
}  // namespace lockferry::store
