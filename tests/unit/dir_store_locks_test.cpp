// SPDX-License-Identifier: Apache-2.0
// The dir:// store's lock tables: whole-table replacement, fencing, corrupt tables, and deltas
// appended to a journal instead of rewriting the table.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "dir_store_test_util.h"
#include "store/store.h"

namespace lockferry::store {
namespace {

using lockferry::testing::dir_names;
using lockferry::testing::make_lock;
using lockferry::testing::open_at;
using lockferry::testing::read_raw_file;
using lockferry::testing::run_in_processes;
using lockferry::testing::TempDir;
using lockferry::testing::write_raw_file;
using ::testing::HasSubstr;

TEST(DirStoreLocks, ANodeWithoutATableHasNoLocks) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  auto locks = store->list_locks("nfs1");
  ASSERT_TRUE(locks.ok()) << locks.error().message;
  EXPECT_TRUE(locks->empty());
}

TEST(DirStoreLocks, PutReplacesTheWholeTableAndRoundTripsEveryField) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  std::vector<LockRecord> first{make_lock("nfs1", 0, 0, 39), make_lock("nfs1", 0, 60, 99),
                                make_lock("nfs1", 0, 100, LockRecord::kToEndOfFile, "read")};
  first[2].nlm_host = "client-a.example";
  first[2].path = "/päth with spaces/\"quoted\"";
  ASSERT_TRUE(store->put_locks("nfs1", 0, first).ok());
  auto listed = store->list_locks("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ(*listed, first);

  // Compacted: the next put is the whole current state, not an addition.
  std::vector<LockRecord> second{make_lock("nfs1", 0, 5, 6, "read")};
  ASSERT_TRUE(store->put_locks("nfs1", 0, second).ok());
  EXPECT_EQ(*store->list_locks("nfs1"), second);
  ASSERT_TRUE(store->put_locks("nfs1", 0, {}).ok());
  EXPECT_TRUE(store->list_locks("nfs1")->empty());

  // One file per node, no temp files left behind; other nodes are separate.
  EXPECT_EQ(dir_names(dir / "nfs1"), std::vector<std::string>{"locks.json"});
  EXPECT_TRUE(store->list_locks("nfs2")->empty());
  auto nodes = store->list_nodes();
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ(*nodes, std::vector<std::string>{"nfs1"});
}

TEST(DirStoreLocks, TheTableIsOneLockPerLine) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(
      store->put_locks("nfs1", 0, {make_lock("nfs1", 0, 0, 9), make_lock("nfs1", 0, 20, 29)}).ok());
  const std::string text = read_raw_file(dir / "nfs1/locks.json");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4) << text;
  EXPECT_THAT(text, HasSubstr("\"start\":20"));
}

TEST(DirStoreLocks, AFencedNodeCannotReplaceItsTable) {
  TempDir dir;
  auto primary = open_at(dir.path());
  auto adoptive = open_at(dir.path());
  ASSERT_TRUE(primary && adoptive);
  ASSERT_TRUE(primary->put_locks("nfs1", 0, {make_lock("nfs1", 0, 0, 9)}).ok());
  ASSERT_EQ(*adoptive->bump_epoch("nfs1", 0, "nfs2"), 1u);

  auto late = primary->put_locks("nfs1", 0, {});
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, kErrFenced);
  EXPECT_THAT(late.error().message, HasSubstr("lock table"));
  EXPECT_EQ(adoptive->list_locks("nfs1")->size(), 1u);  // what the adoptive node found stays

  // The adoptive node writes with the new epoch.
  ASSERT_TRUE(adoptive->put_locks("nfs1", 1, {make_lock("nfs1", 1, 0, 0)}).ok());
  EXPECT_EQ(adoptive->list_locks("nfs1")->front().epoch, 1u);
}

TEST(DirStoreLocks, RefusesLocksOfAnotherNodeOrEpochAndBadRanges) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  EXPECT_THAT(store->put_locks("nfs1", 0, {make_lock("nfs2", 0, 0, 9)}).error().message,
              HasSubstr("names node 'nfs2'"));
  EXPECT_FALSE(store->put_locks("nfs1", 1, {make_lock("nfs1", 0, 0, 9)}).ok());
  EXPECT_THAT(store->put_locks("nfs1", 0, {make_lock("nfs1", 0, 10, 9)}).error().message,
              HasSubstr("ends before it starts"));
  EXPECT_THAT(
      store->put_locks("nfs1", 0, {make_lock("nfs1", 0, 0, 9, "exclusive")}).error().message,
      HasSubstr("neither read nor write"));
  EXPECT_FALSE(store->put_locks("../x", 0, {}).ok());
  EXPECT_TRUE(store->list_locks("nfs1")->empty());  // nothing was written
}

TEST(DirStoreLocks, ACorruptTableIsAnErrorNamingTheFile) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_locks("nfs1", 0, {make_lock("nfs1", 0, 0, 9)}).ok());
  const std::string path = dir / "nfs1/locks.json";
  for (const std::string& bad :
       {std::string("{\"format\": 1, \"node\": \"nfs1\", \"locks\": [{\"node\": \"nfs1\"}]}"),
        std::string("not json"), std::string("{\"format\": 9, \"node\": \"nfs1\", \"locks\": []}"),
        std::string("{\"format\": 1, \"node\": \"nfs2\", \"locks\": []}")}) {
    write_raw_file(path, bad);
    auto listed = store->list_locks("nfs1");
    ASSERT_FALSE(listed.ok()) << bad;
    EXPECT_THAT(listed.error().message, HasSubstr(path)) << bad;
  }
}

TEST(DirStoreLocks, ConcurrentWritersEachLandAWholeTable) {
  TempDir dir;
  auto codes = run_in_processes(4, [&](int i) {
    auto store = store::open_store("dir://" + dir.path());
    if (!store) return 2;
    for (int round = 0; round < 20; ++round) {
      std::vector<LockRecord> table;
      for (int k = 0; k <= i; ++k) table.push_back(make_lock("nfs1", 0, k * 10, k * 10 + 5));
      if (!(*store)->put_locks("nfs1", 0, table)) return 1;
    }
    return 0;
  });
  EXPECT_EQ(codes, std::vector<int>(4, 0));
  auto store = open_at(dir.path());
  auto listed = store->list_locks("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_GE(listed->size(), 1u);
  EXPECT_LE(listed->size(), 4u);
  EXPECT_EQ(dir_names(dir / "nfs1"), std::vector<std::string>{"locks.json"});
}

// --- deltas: a base document and a journal (dir_lock_table.h) --------------------------------

struct TableFiles {
  ino_t base_ino = 0;
  off_t base_bytes = 0;
  std::vector<std::string> journals;  // names
  off_t journal_bytes = 0;
};

TableFiles table_files(const TempDir& dir) {
  TableFiles out;
  struct stat st {};
  if (::stat((dir / "nfs1/locks.json").c_str(), &st) == 0) {
    out.base_ino = st.st_ino;
    out.base_bytes = st.st_size;
  }
  for (const auto& name : dir_names(dir / "nfs1")) {
    if (name.rfind("locks.", 0) != 0 || name == "locks.json") continue;
    out.journals.push_back(name);
    if (::stat((dir / ("nfs1/" + name)).c_str(), &st) == 0) out.journal_bytes += st.st_size;
  }
  return out;
}

std::vector<LockRecord> numbered_locks(std::size_t n) {
  std::vector<LockRecord> out;
  for (std::size_t k = 0; k < n; ++k) out.push_back(make_lock("nfs1", 0, k * 10, k * 10 + 5));
  return out;
}

TEST(DirStoreLocks, ADeltaAppendsOneShortLineAndLeavesTheBaseAlone) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  auto table = numbered_locks(1000);
  ASSERT_TRUE(store->put_locks("nfs1", 0, table).ok());
  const TableFiles before = table_files(dir);
  EXPECT_GT(before.base_bytes, 200'000);
  EXPECT_TRUE(before.journals.empty());

  LockDelta delta{{key_of(table[500])}, {make_lock("nfs1", 0, 20'000, 20'009, "read")}};
  ASSERT_TRUE(store->update_locks("nfs1", 0, delta).ok());
  const TableFiles after = table_files(dir);
  EXPECT_EQ(after.base_ino, before.base_ino) << "the base was rewritten";
  EXPECT_EQ(after.base_bytes, before.base_bytes);
  ASSERT_EQ(after.journals.size(), 1u);
  EXPECT_LT(after.journal_bytes, 600) << "more than the change was written";
  apply_lock_delta(table, delta);
  EXPECT_EQ(*store->list_locks("nfs1"), table);
  EXPECT_EQ(*open_at(dir.path())->list_locks("nfs1"), table);
}

// A reconcile can remove hundreds of ranges in one batch, of small devices, inodes and owners: the
// line the writer appends must pass the reader's own limits on documents of tiny values (CI in
// the 6.1 guest once wrote a 222-key line the reader then refused).
TEST(DirStoreLocks, ADeltaRemovingHundredsOfSmallKeysIsReadBack) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  std::vector<LockRecord> table;
  for (std::uint64_t k = 0; k < 600; ++k) {
    LockRecord l = make_lock("nfs1", 0, k, k);
    l.dev = 1;
    l.ino = 2;
    l.owner = 3;
    table.push_back(l);
  }
  ASSERT_TRUE(store->put_locks("nfs1", 0, table).ok());
  LockDelta delta;
  for (std::size_t k = 0; k < 500; ++k) delta.removed.push_back(key_of(table[k]));
  ASSERT_TRUE(store->update_locks("nfs1", 0, delta).ok());
  apply_lock_delta(table, delta);
  auto stored = open_at(dir.path())->list_locks("nfs1");
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(*stored, table);
}

TEST(DirStoreLocks, AJournalOutgrowingItsBaseIsCompactedIntoANewBase) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  std::vector<LockRecord> table;
  ASSERT_TRUE(store->put_locks("nfs1", 0, table).ok());
  const TableFiles first = table_files(dir);
  bool compacted = false;
  for (std::uint64_t k = 0; k < 400 && !compacted; ++k) {
    LockDelta delta{{}, {make_lock("nfs1", 0, k * 10, k * 10 + 5)}};
    ASSERT_TRUE(store->update_locks("nfs1", 0, delta).ok());
    apply_lock_delta(table, delta);
    const TableFiles now = table_files(dir);
    EXPECT_LE(now.journal_bytes, 64 << 10);
    ASSERT_EQ(now.journals.size(), now.journal_bytes == 0 ? 0u : 1u) << "a stale journal stayed";
    compacted = now.base_ino != first.base_ino;
  }
  EXPECT_TRUE(compacted);
  EXPECT_EQ(*store->list_locks("nfs1"), table);
}

TEST(DirStoreLocks, ATornJournalLineIsNotPartOfTheTableAndTheNextDeltaStartsANewBase) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  auto table = numbered_locks(3);
  ASSERT_TRUE(store->put_locks("nfs1", 0, table).ok());
  LockDelta delta{{key_of(table[0])}, {}};
  ASSERT_TRUE(store->update_locks("nfs1", 0, delta).ok());
  apply_lock_delta(table, delta);
  // A writer killed in the middle of its next append.
  const TableFiles files = table_files(dir);
  ASSERT_EQ(files.journals.size(), 1u);
  const std::string journal = dir / ("nfs1/" + files.journals[0]);
  write_raw_file(journal, read_raw_file(journal) + "{\"removed\": [], \"put\": [{\"node\": ");
  EXPECT_EQ(*store->list_locks("nfs1"), table);
  // A complete line that is not a delta is corruption, named with its file and line.
  write_raw_file(journal, read_raw_file(journal) + "\n");
  auto corrupt = store->list_locks("nfs1");
  ASSERT_FALSE(corrupt.ok());
  EXPECT_THAT(corrupt.error().message, HasSubstr(journal + ": line 2"));
  write_raw_file(journal, read_raw_file(journal).substr(0, read_raw_file(journal).size() - 1));

  LockDelta next{{key_of(table[0])}, {make_lock("nfs1", 0, 90, 99)}};
  ASSERT_TRUE(store->update_locks("nfs1", 0, next).ok());
  apply_lock_delta(table, next);
  EXPECT_EQ(*store->list_locks("nfs1"), table);
  EXPECT_NE(table_files(dir).base_ino, files.base_ino) << "appended after a torn line";
}

TEST(DirStoreLocks, ABaseWrittenByAnotherWriterIsNeverExtendedWithThisWritersJournal) {
  TempDir dir;
  auto mine = open_at(dir.path());
  auto other = open_at(dir.path());
  ASSERT_TRUE(mine && other);
  ASSERT_TRUE(mine->put_locks("nfs1", 0, numbered_locks(2)).ok());
  ASSERT_TRUE(other->put_locks("nfs1", 0, numbered_locks(5)).ok());
  auto table = numbered_locks(5);
  LockDelta delta{{key_of(table[4])}, {}};
  ASSERT_TRUE(mine->update_locks("nfs1", 0, delta).ok());
  apply_lock_delta(table, delta);
  EXPECT_EQ(*other->list_locks("nfs1"), table);
}

TEST(DirStoreLocks, ATableWrittenBeforeJournalsExistedIsReadAndExtended) {
  TempDir dir;
  auto store = open_at(dir.path());
  ASSERT_TRUE(store);
  const auto lock = make_lock("nfs1", 0, 0, 9);
  ASSERT_TRUE(open_at(dir.path())->put_locks("nfs1", 0, {lock}).ok());
  // The same table as lockferry wrote it before the journal: no generation.
  const std::string path = dir / "nfs1/locks.json";
  std::string text = read_raw_file(path);
  const auto at = text.find("\"generation\": ");
  ASSERT_NE(at, std::string::npos);
  text.erase(at, text.find(", ", at) + 2 - at);
  write_raw_file(path, text);
  ASSERT_EQ(*store->list_locks("nfs1"), std::vector<LockRecord>{lock});
  ASSERT_TRUE(store->update_locks("nfs1", 0, {{}, {make_lock("nfs1", 0, 20, 29)}}).ok());
  EXPECT_EQ(*store->list_locks("nfs1"),
            (std::vector<LockRecord>{lock, make_lock("nfs1", 0, 20, 29)}));
}

}  // namespace
}  // namespace lockferry::store
