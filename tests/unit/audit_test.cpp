// SPDX-License-Identifier: Apache-2.0
// Reclaim audit: the old primary's lock table against the adoptive node's, per lock and per
// client — reclaimed, reclaimed with a different range, not reclaimed — without any BPF.
#include "failover/audit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dir_store_test_util.h"

namespace lockferry::failover {
namespace {

LockRecord lock(const std::string& node, const std::string& path, std::uint64_t start,
                std::uint64_t end, const std::string& client = "",
                const std::string& type = "write") {
  LockRecord l;
  l.node = node;
  l.manager_comm = "ganesha.nfsd";
  l.manager_pid = node == "nodeA" ? 100 : 200;  // a new server: new pids, new owners, new devices
  l.dev = node == "nodeA" ? 0x800001 : 0x800002;
  l.ino = node == "nodeA" ? 11 : 99;
  l.owner = node == "nodeA" ? 0xaaaa : 0xbbbb;
  l.path = path;
  l.start = start;
  l.end = end;
  l.type = type;
  l.nlm_host = client;
  return l;
}

const AuditedLock& entry(const AuditReport& r, const std::string& path, std::uint64_t start) {
  for (const auto& e : r.entries)
    if (e.path == path && e.old_lock.start == start) return e;
  throw std::runtime_error("no audited lock " + path);
}

TEST(Audit, OneClientStoppedBeforeFailoverIsExactlyWhatIsNotReclaimed) {
  // Three clients, two locks each, as in the e2e test; client2 never reclaims.
  std::vector<LockRecord> old_locks, new_locks;
  for (int k = 1; k <= 3; ++k) {
    old_locks.push_back(lock("nodeA", "/export/file" + std::to_string(k) + ".dat", 0, 4095));
    old_locks.push_back(lock("nodeA", "/export/shared.dat", k * 1000, k * 1000 + 999));
    if (k == 2) continue;
    new_locks.push_back(lock("nodeB", "/export/file" + std::to_string(k) + ".dat", 0, 4095));
    new_locks.push_back(lock("nodeB", "/export/shared.dat", k * 1000, k * 1000 + 999));
  }
  auto r = audit_locks(old_locks, new_locks);
  EXPECT_EQ(r.locks, 6u);
  EXPECT_EQ(r.reclaimed, 4u);
  EXPECT_EQ(r.not_reclaimed, 2u);
  EXPECT_EQ(r.different_range, 0u);
  EXPECT_EQ(entry(r, "/export/file2.dat", 0).status, ReclaimStatus::not_reclaimed);
  EXPECT_EQ(entry(r, "/export/shared.dat", 2000).status, ReclaimStatus::not_reclaimed);
  EXPECT_EQ(entry(r, "/export/shared.dat", 3000).status, ReclaimStatus::reclaimed);
  EXPECT_EQ(entry(r, "/export/file1.dat", 0).now->node, "nodeB");
  EXPECT_TRUE(r.unmatched.empty());
  EXPECT_NEAR(r.percent_reclaimed(), 66.7, 0.1);
}

TEST(Audit, EverythingReclaimedIsAHundredPercent) {
  std::vector<LockRecord> old_locks{lock("nodeA", "/x/a", 0, 9),
                                    lock("nodeA", "/x/b", 5, LockRecord::kToEndOfFile)};
  std::vector<LockRecord> new_locks{lock("nodeB", "/x/b", 5, LockRecord::kToEndOfFile),
                                    lock("nodeB", "/x/a", 0, 9)};
  auto r = audit_locks(old_locks, new_locks);
  EXPECT_EQ(r.reclaimed, 2u);
  EXPECT_DOUBLE_EQ(r.percent_reclaimed(), 100.0);
  EXPECT_DOUBLE_EQ(audit_locks({}, {}).percent_reclaimed(), 100.0);
}

TEST(Audit, ARangeOrTypeThatChangedIsReclaimedWithADifferentRange) {
  auto r = audit_locks({lock("nodeA", "/x/a", 0, 99), lock("nodeA", "/x/b", 0, 99)},
                       {lock("nodeB", "/x/a", 50, 149), lock("nodeB", "/x/b", 0, 99, "", "read")});
  EXPECT_EQ(r.different_range, 2u);
  EXPECT_EQ(entry(r, "/x/a", 0).now->start, 50u);
  // A lock elsewhere in the same file, whose client is not known, is someone else's.
  auto apart = audit_locks({lock("nodeA", "/x/a", 0, 99)}, {lock("nodeB", "/x/a", 500, 599)});
  EXPECT_EQ(apart.not_reclaimed, 1u);
  ASSERT_EQ(apart.unmatched.size(), 1u);
}

TEST(Audit, ExactMatchesWinOverOverlapsWhateverTheOrder) {
  // The first old lock overlaps the new lock that exactly matches the second one.
  auto r = audit_locks({lock("nodeA", "/x/a", 0, 199), lock("nodeA", "/x/a", 100, 199)},
                       {lock("nodeB", "/x/a", 100, 199), lock("nodeB", "/x/a", 0, 49)});
  EXPECT_EQ(entry(r, "/x/a", 100).status, ReclaimStatus::reclaimed);
  EXPECT_EQ(entry(r, "/x/a", 0).status, ReclaimStatus::different_range);
}

TEST(Audit, ClientsAreMatchedWhenTheLockTablesNameThem) {
  // kernel lockd: the lock table names the NLM client.
  auto r = audit_locks(
      {lock("nodeA", "/x/a", 0, 9, "client1"), lock("nodeA", "/x/a", 10, 19, "client2")},
      {lock("nodeB", "/x/a", 0, 9, "client2"), lock("nodeB", "/x/a", 0, 9, "client1")});
  EXPECT_EQ(entry(r, "/x/a", 0).status, ReclaimStatus::reclaimed);
  EXPECT_EQ(entry(r, "/x/a", 0).now->nlm_host, "client1");
  // client2 moved its lock: same client, same file, another range.
  EXPECT_EQ(entry(r, "/x/a", 10).status, ReclaimStatus::different_range);
  EXPECT_EQ(r.clients.at("client1").reclaimed, 1u);
  EXPECT_EQ(r.clients.at("client2").different_range, 1u);
  // Another client holding the very same range does not count as a reclaim.
  auto stolen = audit_locks({lock("nodeA", "/x/a", 0, 9, "client1")},
                            {lock("nodeB", "/x/a", 0, 9, "client9")});
  EXPECT_EQ(stolen.not_reclaimed, 1u);
}

TEST(Audit, PathsAreComparedRelativeToTheExportRoots) {
  AuditOptions roots{"/srv/a/export", "/mnt/export"};
  auto r = audit_locks({lock("nodeA", "/srv/a/export/d/f", 0, 9)},
                       {lock("nodeB", "/mnt/export/d/f", 0, 9)}, roots);
  EXPECT_EQ(r.reclaimed, 1u);
  EXPECT_EQ(r.entries[0].path, "/d/f");
  auto sibling = audit_locks({lock("nodeA", "/srv/a/export2/f", 0, 9)},
                             {lock("nodeB", "/mnt/export/2/f", 0, 9)}, roots);
  EXPECT_EQ(sibling.reclaimed, 0u);
}

TEST(Audit, ReadsBothTablesFromTheStore) {
  testing::TempDir dir;
  auto store = testing::open_at(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(
      store->put_locks("nodeA", 0, {lock("nodeA", "/e/f", 0, 9), lock("nodeA", "/e/g", 0, 9)})
          .ok());
  ASSERT_TRUE(store->put_locks("nodeB", 0, {lock("nodeB", "/e/g", 0, 9)}).ok());
  auto r = audit_from_store(*store, "nodeA", "nodeB");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->from_node, "nodeA");
  EXPECT_EQ(r->reclaimed, 1u);
  EXPECT_EQ(r->not_reclaimed, 1u);
  auto none = audit_from_store(*store, "nodeZ", "nodeB");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->locks, 0u);
}

}  // namespace
}  // namespace lockferry::failover
