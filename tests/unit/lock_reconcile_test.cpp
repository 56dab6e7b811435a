// SPDX-License-Identifier: Apache-2.0
// Reconciling the lock table with a KernelSnapshot after lost events: the table ends up holding
// exactly the kernel's locks of the covered managers, keeps what was right, makes up owners it
// never saw, and later changes by the real owners still match those ranges.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "record/lock_recorder.h"
#include "record/lock_table.h"
#include "store/store.h"

namespace lockferry::record {
namespace {

constexpr std::uint64_t kEof = LockRecord::kToEndOfFile;
constexpr std::uint32_t kPid = 42;

LockChange change(LockChange::Kind kind, std::uint64_t owner, std::uint64_t ino,
                  std::uint64_t start, std::uint64_t end, bool write = true, bool ofd = false,
                  std::uint32_t pid = kPid) {
  LockChange c;
  c.kind = kind;
  c.write = write;
  c.ofd = ofd;
  c.dev = 7;
  c.ino = ino;
  c.owner = owner;
  c.start = start;
  c.end = end;
  c.manager_comm = "ganesha.nfsd";
  c.manager_pid = pid;
  c.owner_pid = static_cast<std::int32_t>(pid);
  c.path = "/export/f" + std::to_string(ino);
  c.time_ns = 1000;
  return c;
}
LockChange grant(std::uint64_t owner, std::uint64_t ino, std::uint64_t start, std::uint64_t end,
                 bool write = true, bool ofd = false, std::uint32_t pid = kPid) {
  return change(LockChange::Kind::granted, owner, ino, start, end, write, ofd, pid);
}
LockChange release(std::uint64_t owner, std::uint64_t ino, std::uint64_t start, std::uint64_t end,
                   bool ofd = false) {
  return change(LockChange::Kind::released, owner, ino, start, end, false, ofd);
}

KernelLock klock(std::uint64_t ino, std::uint64_t start, std::uint64_t end, bool write = true,
                 bool ofd = false, std::uint64_t file_id = 0, std::uint32_t pid = kPid) {
  KernelLock l;
  l.ofd = ofd;
  l.write = write;
  l.dev = 7;
  l.ino = ino;
  l.start = start;
  l.end = end;
  l.manager_pid = pid;
  l.file_id = ofd ? file_id : 0;
  l.path = "/export/f" + std::to_string(ino);
  return l;
}

KernelSnapshot snapshot(std::vector<KernelLock> locks) {
  KernelSnapshot s;
  s.managers[kPid] = "ganesha.nfsd";
  s.locks = std::move(locks);
  s.time_ns = 5000;
  return s;
}

// (ino, start, end, type) of the table, what /proc shows of it.
using Row = std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, std::string>;
std::vector<Row> rows(const LockTable& table, std::uint32_t pid = kPid) {
  std::vector<Row> out;
  for (const auto& r : table.records("nfs1", 0))
    if (r.manager_pid == pid) out.emplace_back(r.ino, r.start, r.end, r.type);
  std::sort(out.begin(), out.end());
  return out;
}
std::vector<Row> rows(const KernelSnapshot& s) {
  std::vector<Row> out;
  for (const auto& l : s.locks) out.emplace_back(l.ino, l.start, l.end, l.write ? "write" : "read");
  std::sort(out.begin(), out.end());
  return out;
}

TEST(LockReconcile, AnExactTableIsLeftAlone) {
  LockTable t;
  t.apply(grant(1, 100, 0, 9));
  t.apply(grant(1, 100, 20, kEof, false));
  t.apply(grant(9, 100, 10, 19, true, true));  // an OFD lock
  const auto before = t.records("nfs1", 0);
  const auto r = t.reconcile(
      snapshot({klock(100, 0, 9), klock(100, 20, kEof, false), klock(100, 10, 19, true, true, 5)}));
  EXPECT_EQ(r.repairs(), 0u);
  EXPECT_EQ(r.provisional, 0u);
  EXPECT_EQ(t.records("nfs1", 0), before);  // owners, paths and grant times kept
}

TEST(LockReconcile, LostGrantsAndReleasesAreRepaired) {
  LockTable t;
  t.apply(grant(1, 100, 0, 9));
  t.apply(grant(1, 200, 0, 9));   // its release was lost
  t.apply(grant(1, 300, 0, 99));  // a lost release split it
  // Kernel: 100 as is; 200 gone; 300 split; 400 granted (lost); 100 also 50-59 (lost).
  const auto s = snapshot({klock(100, 0, 9), klock(100, 50, 59), klock(300, 0, 39),
                           klock(300, 60, 99), klock(400, 0, kEof, false)});
  const auto r = t.reconcile(s);
  EXPECT_EQ(rows(t), rows(s));
  EXPECT_EQ(r.removed, 2u);  // 200's range, 300's old range
  EXPECT_EQ(r.added, 4u);    // 100's 50-59, 300's two halves, 400
  EXPECT_EQ(r.provisional, 0u);
  // Every POSIX range went to the process's known owner: its later changes match.
  for (const auto& rec : t.records("nfs1", 0)) EXPECT_EQ(rec.owner, 1u) << rec.ino;
  t.apply(release(1, 400, 0, kEof));
  t.apply(release(1, 300, 0, kEof));
  EXPECT_EQ(rows(t), (std::vector<Row>{{100, 0, 9, "write"}, {100, 50, 59, "write"}}));
  // Ranges that were right keep when they were granted; repaired ones say when they were found.
  for (const auto& rec : t.records("nfs1", 0))
    EXPECT_EQ(rec.granted_ns, rec.start == 0 ? 1000 : 5000);
}

TEST(LockReconcile, OwnersNeverSeenAreProvisionalUntilTheirNextChange) {
  LockTable t;
  // Nothing of pid 42 was seen: every grant was lost.
  const auto s = snapshot({klock(100, 0, 9), klock(200, 0, 9), klock(100, 20, 29, true, true, 7),
                           klock(100, 40, 49, false, true, 8)});
  auto r = t.reconcile(s);
  EXPECT_EQ(rows(t), rows(s));
  EXPECT_EQ(r.added, 4u);
  EXPECT_EQ(r.provisional, 4u);  // one POSIX owner per file, two OFD files
  // The same kernel owners get the same provisional owners again: nothing to repair.
  r = t.reconcile(s);
  EXPECT_EQ(r.repairs(), 0u);
  EXPECT_EQ(r.provisional, 0u);
  // The process's first fcntl change names its POSIX owner, on every file; an OFD change on the
  // file names that open file's owner. Their releases then match.
  t.apply(grant(11, 100, 60, 69));
  t.apply(grant(12, 100, 20, 29, true, true));
  t.apply(release(11, 100, 0, kEof));
  t.apply(release(11, 200, 0, kEof));
  t.apply(release(12, 100, 0, kEof, true));
  EXPECT_EQ(rows(t), (std::vector<Row>{{100, 40, 49, "read"}}));
}

TEST(LockReconcile, OfdFilesAreMatchedToTheirOwnersByTheirRanges) {
  LockTable t;
  t.apply(grant(21, 100, 0, 9, true, true));
  t.apply(grant(22, 100, 100, 109, true, true));
  // Lost: owner 22 also got 110-119 (merged by the kernel into 100-119).
  const auto r =
      t.reconcile(snapshot({klock(100, 100, 119, true, true, 4), klock(100, 0, 9, true, true, 3)}));
  EXPECT_EQ(r.repairs(), 2u);
  EXPECT_EQ(r.provisional, 0u);
  t.apply(release(22, 100, 0, kEof, true));
  EXPECT_EQ(rows(t), (std::vector<Row>{{100, 0, 9, "write"}}));
}

TEST(LockReconcile, OnlyTheCoveredManagersChange) {
  LockTable t;
  t.apply(grant(1, 100, 0, 9));
  t.apply(grant(5, 100, 20, 29, true, false, 77));  // another manager (kernel lockd, say)
  const auto r = t.reconcile(snapshot({}));
  EXPECT_EQ(r.removed, 1u);
  EXPECT_TRUE(rows(t).empty());
  EXPECT_EQ(rows(t, 77), (std::vector<Row>{{100, 20, 29, "write"}}));
}

TEST(LockReconcile, ARestoredTableMatchesWithoutKnowingWhichLocksWereOfd) {
  LockTable before;
  before.apply(grant(1, 100, 0, 9));
  before.apply(grant(9, 100, 10, 19, false, true));
  LockTable t;
  t.restore(before.records("nfs1", 0));
  const auto r = t.reconcile(snapshot({klock(100, 0, 9), klock(100, 10, 19, false, true, 3)}));
  EXPECT_EQ(r.repairs(), 0u);
  EXPECT_EQ(t.records("nfs1", 0), before.records("nfs1", 0));
}

TEST(LockReconcile, TheRecorderStoresARepairedTable) {
  boost::asio::io_context io;
  std::string dir = "/tmp/lockferry-reconcile-XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  auto store = store::open_store("dir://" + dir);
  ASSERT_TRUE(store) << store.error().message;
  LockRecorder recorder(io, **store, "nfs1", 0, std::chrono::milliseconds(1));
  recorder.on_change(grant(1, 100, 0, 9));
  recorder.on_change(grant(1, 200, 0, 9));
  recorder.flush();
  LockChange c;
  c.kind = LockChange::Kind::reconciled;
  c.snapshot = std::make_shared<KernelSnapshot>(snapshot({klock(100, 0, 9)}));
  recorder.on_change(c);
  EXPECT_EQ(recorder.stats().reconciles, 1u);
  EXPECT_EQ(recorder.stats().reconcile_repairs, 1u);
  EXPECT_TRUE(recorder.dirty());
  recorder.flush();
  auto stored = (*store)->list_locks("nfs1");
  ASSERT_TRUE(stored) << stored.error().message;
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ(stored->front().ino, 100u);
  // A reconcile that finds the table exact writes nothing.
  recorder.on_change(c);
  EXPECT_EQ(recorder.stats().reconcile_repairs, 1u);
  EXPECT_FALSE(recorder.dirty());
  std::filesystem::remove_all(dir);
}

// ---- kernel lockd: one kernel thread, an owner per NLM client, /proc/locks without owners ----

constexpr std::uint32_t kLockd = 162;

LockChange lockd_grant(std::uint64_t owner, std::uint64_t ino, std::uint64_t start,
                       std::uint64_t end, bool write, const std::string& client) {
  LockChange c = grant(owner, ino, start, end, write, false, kLockd);
  c.manager_comm = "lockd";
  c.nlm_host = client;
  return c;
}
LockChange lockd_release(std::uint64_t owner, std::uint64_t ino, std::uint64_t start,
                         std::uint64_t end) {
  LockChange c = change(LockChange::Kind::released, owner, ino, start, end, false, false, kLockd);
  c.manager_comm = "lockd";
  return c;
}
KernelLock lockd_lock(std::uint64_t ino, std::uint64_t start, std::uint64_t end, bool write) {
  KernelLock l = klock(ino, start, end, write, false, 0, kLockd);
  l.path.clear();  // /proc/locks has no paths
  return l;
}
KernelSnapshot lockd_snapshot(std::vector<KernelLock> locks) {
  KernelSnapshot s;
  s.managers[kLockd] = "lockd";
  s.kernel_threads.insert(kLockd);
  s.locks = std::move(locks);
  s.time_ns = 5000;
  return s;
}
std::vector<std::pair<Row, std::string>> clients(const LockTable& table) {
  std::vector<std::pair<Row, std::string>> out;
  for (const auto& r : table.records("nfs1", 0))
    out.push_back({{r.ino, r.start, r.end, r.type}, r.nlm_host});
  std::sort(out.begin(), out.end());
  return out;
}

TEST(LockReconcileLockd, RangesTheKernelShowsKeepTheirClientsAndOwners) {
  LockTable t;
  t.apply(lockd_grant(1, 100, 0, 9, true, "client1"));
  t.apply(lockd_grant(2, 100, 20, 29, false, "client2"));
  t.apply(lockd_grant(3, 100, 20, 29, false, "client3"));  // the same read range, another client
  const auto before = t.records("nfs1", 0);
  const auto r =
      t.reconcile(lockd_snapshot({lockd_lock(100, 0, 9, true), lockd_lock(100, 20, 29, false),
                                  lockd_lock(100, 20, 29, false)}));
  EXPECT_EQ(r.repairs(), 0u);
  EXPECT_EQ(r.provisional, 0u);
  EXPECT_EQ(t.records("nfs1", 0), before);
}

TEST(LockReconcileLockd, LostGrantsAndReleasesAreRepairedRangeByRange) {
  LockTable t;
  t.apply(lockd_grant(1, 100, 0, 9, true, "client1"));
  t.apply(lockd_grant(2, 100, 20, 29, false, "client2"));
  t.apply(lockd_grant(3, 100, 20, 29, false, "client3"));
  t.apply(lockd_grant(2, 200, 0, kEof, true, "client2"));  // its release was lost
  // Kernel: client1's lock; one of the two readers (the other's release was lost); a lock on 100
  // and two readers of 300 whose grants were lost.
  const auto s = lockd_snapshot({lockd_lock(100, 0, 9, true), lockd_lock(100, 20, 29, false),
                                 lockd_lock(100, 40, 49, true), lockd_lock(300, 0, 9, false),
                                 lockd_lock(300, 0, 9, false)});
  auto r = t.reconcile(s);
  EXPECT_EQ(rows(t, kLockd), rows(s));
  EXPECT_EQ(r.removed, 2u);      // a reader of 100, 200's lock
  EXPECT_EQ(r.added, 3u);        // 100's 40-49, 300's two readers
  EXPECT_EQ(r.provisional, 3u);  // one owner per range: each may be another client's
  const auto named = clients(t);
  EXPECT_EQ(named[0], (std::pair<Row, std::string>{{100, 0, 9, "write"}, "client1"}));
  EXPECT_FALSE(named[1].second.empty()) << "a reader of 100 keeps its client";
  EXPECT_EQ(named[2].second, "") << "neither /proc/locks nor sm/ say whose lock it is";
  // The path of a range the kernel only shows comes from a recorded range of the file.
  for (const auto& rec : t.records("nfs1", 0))
    EXPECT_EQ(rec.path, rec.ino == 100 ? "/export/f100" : "") << rec.ino << " " << rec.start;
  // The same kernel state again: nothing to repair, the same provisional owners.
  r = t.reconcile(s);
  EXPECT_EQ(r.repairs(), 0u);
  EXPECT_EQ(r.provisional, 0u);
}

TEST(LockReconcileLockd, ARealOwnersReleaseOrWriteGrantTakesOverItsProvisionalRange) {
  LockTable t;
  t.reconcile(lockd_snapshot({lockd_lock(100, 0, 9, true), lockd_lock(100, 20, 29, true),
                              lockd_lock(300, 0, 9, false), lockd_lock(300, 0, 9, false)}));
  ASSERT_EQ(t.size(), 4u);
  // A client releases 0-4 of its lock: it was that client's; 5-9 stays under its owner.
  t.apply(lockd_release(7, 100, 0, 4));
  // Another client upgrades 20-29 to a (new) write lock over it: the kernel only grants that to
  // the range's own owner.
  t.apply(lockd_grant(8, 100, 20, 39, true, "client8"));
  // Two readers of 300: a release by one of them cannot tell which range was its: both stay
  // until the next reconcile says.
  t.apply(lockd_release(9, 300, 0, 9));
  EXPECT_EQ(
      rows(t, kLockd),
      (std::vector<Row>{
          {100, 5, 9, "write"}, {100, 20, 39, "write"}, {300, 0, 9, "read"}, {300, 0, 9, "read"}}));
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> owner;
  for (const auto& rec : t.records("nfs1", 0)) owner[{rec.ino, rec.start}] = rec.owner;
  EXPECT_EQ((owner[{100, 5}]), 7u);
  EXPECT_EQ((owner[{100, 20}]), 8u);
  // The kernel dropped one reader of 300: the next reconcile repairs exactly that.
  const auto r = t.reconcile(lockd_snapshot(
      {lockd_lock(100, 5, 9, true), lockd_lock(100, 20, 39, true), lockd_lock(300, 0, 9, false)}));
  EXPECT_EQ(r.removed, 1u);
  EXPECT_EQ(r.added, 0u);
}

TEST(LockReconcileLockd, ASharedLockdAddsNoRangeOnlyTheKernelShowsButStillRemoves) {
  // lockd also serves another network namespace's NFS server (another node on this kernel):
  // /proc/locks shows that node's locks under the same pid.
  LockTable t;
  t.apply(lockd_grant(1, 100, 0, 9, true, "client1"));
  t.apply(lockd_grant(2, 200, 0, 9, true, "client2"));  // its release was lost
  auto s = lockd_snapshot(
      {lockd_lock(100, 0, 9, true), lockd_lock(300, 0, 9, true), lockd_lock(300, 20, 29, false)});
  s.kernel_threads_shared = true;
  const auto r = t.reconcile(s);
  EXPECT_EQ(rows(t, kLockd), (std::vector<Row>{{100, 0, 9, "write"}}));
  EXPECT_EQ(clients(t)[0].second, "client1");
  EXPECT_EQ(r.removed, 1u);
  EXPECT_EQ(r.added, 0u);
  EXPECT_EQ(r.provisional, 0u);
  EXPECT_EQ(r.not_added, 2u);
  // Not shared: the same snapshot adds them.
  s.kernel_threads_shared = false;
  EXPECT_EQ(t.reconcile(s).added, 2u);
}

TEST(LockReconcileLockd, AnotherManagersLocksAreUntouched) {
  LockTable t;
  t.apply(grant(1, 100, 0, 9));  // ganesha.nfsd, pid 42, not in the snapshot
  t.apply(lockd_grant(2, 100, 50, 59, true, "client2"));
  t.reconcile(lockd_snapshot({}));
  EXPECT_EQ(rows(t), (std::vector<Row>{{100, 0, 9, "write"}}));
  EXPECT_TRUE(rows(t, kLockd).empty());
}

}  // namespace
}  // namespace lockferry::record
