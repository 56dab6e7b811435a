// SPDX-License-Identifier: Apache-2.0
// LockTable keeps each owner's ranges as the kernel does (fs/locks.c posix_lock_inode): splits,
// replacements, merges, releases, and a randomised comparison with a byte-by-byte model.
#include "record/lock_table.h"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace lockferry::record {
namespace {

constexpr std::uint64_t kEof = LockRecord::kToEndOfFile;

LockChange grant(std::uint64_t start, std::uint64_t end, bool write = true, std::uint64_t owner = 1,
                 std::uint64_t ino = 100, std::int64_t time_ns = 1000) {
  LockChange c;
  c.kind = LockChange::Kind::granted;
  c.write = write;
  c.dev = 7;
  c.ino = ino;
  c.owner = owner;
  c.start = start;
  c.end = end;
  c.manager_comm = "ganesha.nfsd";
  c.manager_pid = 42;
  c.owner_pid = -1;
  c.path = "/export/f" + std::to_string(ino);
  c.time_ns = time_ns;
  return c;
}

LockChange release(std::uint64_t start, std::uint64_t end, std::uint64_t owner = 1,
                   std::uint64_t ino = 100) {
  LockChange c;
  c.kind = LockChange::Kind::released;
  c.dev = 7;
  c.ino = ino;
  c.owner = owner;
  c.start = start;
  c.end = end;
  c.manager_pid = 42;
  return c;
}

// (owner, start, end, type) of every record, in table order.
using Held = std::vector<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, std::string>>;

Held held(const LockTable& table, std::uint64_t ino = 100) {
  Held out;
  for (const auto& r : table.records("nfs1", 3))
    if (r.ino == ino) out.emplace_back(r.owner, r.start, r.end, r.type);
  return out;
}

TEST(LockTable, UnlockingTheMiddleSplitsALockInTwo) {
  LockTable t;
  t.apply(grant(0, 99));
  t.apply(release(40, 59));
  EXPECT_EQ(held(t), (Held{{1, 0, 39, "write"}, {1, 60, 99, "write"}}));
}

TEST(LockTable, RecordsCarryWhoAndWhere) {
  LockTable t;
  t.apply(grant(0, 99, true, 0xabc, 100, 5555));
  auto records = t.records("nfs1", 3);
  ASSERT_EQ(records.size(), 1u);
  const LockRecord& r = records[0];
  EXPECT_EQ(r.node, "nfs1");
  EXPECT_EQ(r.epoch, 3u);
  EXPECT_EQ(r.manager_comm, "ganesha.nfsd");
  EXPECT_EQ(r.manager_pid, 42u);
  EXPECT_EQ(r.dev, 7u);
  EXPECT_EQ(r.ino, 100u);
  EXPECT_EQ(r.path, "/export/f100");
  EXPECT_EQ(r.owner, 0xabcu);
  EXPECT_EQ(r.owner_pid, -1);
  EXPECT_EQ(r.granted_ns, 5555);
  // The pieces of a split keep the original grant's data.
  t.apply(release(10, 19, 0xabc));
  for (const auto& piece : t.records("nfs1", 3)) {
    EXPECT_EQ(piece.path, "/export/f100");
    EXPECT_EQ(piece.granted_ns, 5555);
  }
}

TEST(LockTable, AGrantOfAnotherTypeReplacesThePartItCovers) {
  LockTable t;
  t.apply(grant(0, 99, true));
  t.apply(grant(40, 59, false));
  EXPECT_EQ(held(t), (Held{{1, 0, 39, "write"}, {1, 40, 59, "read"}, {1, 60, 99, "write"}}));
  // Upgrading the middle back merges everything into one write lock again.
  t.apply(grant(40, 59, true));
  EXPECT_EQ(held(t), (Held{{1, 0, 99, "write"}}));
}

TEST(LockTable, AdjacentAndOverlappingLocksOfOneTypeMerge) {
  LockTable t;
  t.apply(grant(0, 9, false, 1, 100, 300));
  t.apply(grant(20, 29, false, 1, 100, 100));
  t.apply(grant(10, 19, false, 1, 100, 200));  // fills the gap exactly: adjacent both sides
  EXPECT_EQ(held(t), (Held{{1, 0, 29, "read"}}));
  EXPECT_EQ(t.records("n", 0)[0].granted_ns, 100);  // the oldest part's grant time
  t.apply(grant(25, 50, false));
  EXPECT_EQ(held(t), (Held{{1, 0, 50, "read"}}));
}

TEST(LockTable, AdjacentLocksOfDifferentTypesStaySeparate) {
  LockTable t;
  t.apply(grant(0, 9, false));
  t.apply(grant(10, 19, true));
  EXPECT_EQ(held(t), (Held{{1, 0, 9, "read"}, {1, 10, 19, "write"}}));
}

TEST(LockTable, RangesToTheEndOfTheFile) {
  LockTable t;
  t.apply(grant(0, kEof));
  t.apply(release(50, kEof));
  EXPECT_EQ(held(t), (Held{{1, 0, 49, "write"}}));
  t.apply(grant(50, kEof, true));
  EXPECT_EQ(held(t), (Held{{1, 0, kEof, "write"}}));
  t.apply(release(0, 0));
  EXPECT_EQ(held(t), (Held{{1, 1, kEof, "write"}}));
  t.apply(grant(0, kEof, false));
  EXPECT_EQ(held(t), (Held{{1, 0, kEof, "read"}}));
  t.apply(release(0, kEof));  // close(): everything of the owner goes
  EXPECT_TRUE(t.empty());
}

TEST(LockTable, OwnersAndFilesAreIndependent) {
  LockTable t;
  t.apply(grant(0, 99, false, 1, 100));
  t.apply(grant(0, 99, false, 2, 100));
  t.apply(grant(0, 99, true, 1, 200));
  t.apply(release(0, kEof, 2, 100));
  EXPECT_EQ(held(t, 100), (Held{{1, 0, 99, "read"}}));
  EXPECT_EQ(held(t, 200), (Held{{1, 0, 99, "write"}}));
  t.apply(release(0, 10, 3, 100));  // an owner holding nothing: nothing changes
  EXPECT_EQ(t.size(), 2u);
}

TEST(LockTable, OneGrantSpanningSeveralRangesReplacesThemAll) {
  LockTable t;
  for (std::uint64_t s = 0; s < 100; s += 20) t.apply(grant(s, s + 9, s % 40 == 0));  // w r w r w
  t.apply(grant(5, 85, false));
  EXPECT_EQ(held(t), (Held{{1, 0, 4, "write"}, {1, 5, 85, "read"}, {1, 86, 89, "write"}}));
}

TEST(LockTable, DropManagerForgetsOnlyThatProcess) {
  LockTable t;
  t.apply(grant(0, 9, true, 1, 100));
  LockChange other = grant(0, 9, true, 2, 101);
  other.manager_pid = 77;
  t.apply(other);
  EXPECT_EQ(t.drop_manager(42), 1u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.records("n", 0)[0].manager_pid, 77u);
}

TEST(LockTable, RestoreRebuildsFromStoredRecords) {
  LockTable t;
  t.apply(grant(0, 99, true, 1, 100));
  t.apply(release(40, 59));
  t.apply(grant(0, kEof, false, 9, 300));
  LockTable copy;
  copy.restore(t.records("nfs1", 0));
  EXPECT_EQ(copy.records("nfs1", 0), t.records("nfs1", 0));
}

// A byte-by-byte model over a small file: each byte is free, read or write for each owner. The
// table must describe exactly that, with same-type runs merged.
TEST(LockTable, MatchesAByteModelUnderRandomGrantsAndReleases) {
  constexpr int kBytes = 48;
  constexpr int kOwners = 3;
  std::mt19937 rng(12345);
  LockTable t;
  std::array<std::array<char, kBytes>, kOwners> model{};  // 0 free, 'r', 'w'
  for (int step = 0; step < 5000; ++step) {
    const std::uint64_t owner = rng() % kOwners;
    std::uint64_t a = rng() % kBytes, b = rng() % kBytes;
    if (a > b) std::swap(a, b);
    const int op = rng() % 3;
    if (op == 2) {
      t.apply(release(a, b, owner));
    } else {
      t.apply(grant(a, b, op == 1, owner));
    }
    for (std::uint64_t i = a; i <= b; ++i) model[owner][i] = op == 2 ? 0 : (op == 1 ? 'w' : 'r');

    Held expected;
    for (std::uint64_t o = 0; o < kOwners; ++o) {
      for (int i = 0; i < kBytes;) {
        if (!model[o][i]) {
          ++i;
          continue;
        }
        int j = i;
        while (j + 1 < kBytes && model[o][j + 1] == model[o][i]) ++j;
        expected.emplace_back(o, i, j, model[o][i] == 'w' ? "write" : "read");
        i = j + 1;
      }
    }
    ASSERT_EQ(held(t), expected) << "after step " << step;
  }
}

}  // namespace
}  // namespace lockferry::record
