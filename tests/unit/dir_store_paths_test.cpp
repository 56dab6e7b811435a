// SPDX-License-Identifier: Apache-2.0
// The dir:// and sqlite:// stores as root next to other users: a store root (or database
// directory) that others could plant links in is refused with the path and owner to fix, and
// links planted inside the store (node and record directories, record files, temp files,
// locks.json, epoch files) never make root write outside it; the good records are kept.
// Long file names are stored under an encoded document name and read back byte-exact.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "dir_store_test_util.h"
#include "store/store.h"

namespace lockferry::store {
namespace {

using lockferry::testing::dir_names;
using lockferry::testing::everything_under;
using lockferry::testing::make_lock;
using lockferry::testing::make_record;
using lockferry::testing::open_at;
using lockferry::testing::read_raw_file;
using lockferry::testing::TempDir;
using lockferry::testing::write_raw_file;
using ::testing::HasSubstr;

constexpr uid_t kNobody = 65534;

TEST(StorePaths, AStoreRootOthersCanWriteIsRefusedNamingWhatToFix) {
  TempDir tmp;
  const std::string root = tmp / "store";
  ASSERT_EQ(::mkdir(root.c_str(), 0777), 0);
  ASSERT_EQ(::chmod(root.c_str(), 0777), 0);
  auto store = open_store("dir://" + root);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.error().message, HasSubstr("refusing " + root + ": its mode 0777"));
  EXPECT_THAT(store.error().message, HasSubstr("chmod go-w " + root));

  // The same for a parent without the sticky bit.
  ASSERT_EQ(::chmod(root.c_str(), 0750), 0);
  ASSERT_EQ(::chmod(tmp.path().c_str(), 0777), 0);
  store = open_store("dir://" + root);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.error().message, HasSubstr("its parent " + tmp.path() + " has mode 0777"));
  store = open_store("sqlite://" + root + "/store.db");
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.error().message, HasSubstr("its parent " + tmp.path() + " has mode 0777"));
}

TEST(StorePaths, AStoreRootOwnedByAnotherUserIsRefusedNamingTheOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another user";
  TempDir tmp;
  const std::string root = tmp / "store";
  ASSERT_EQ(::mkdir(root.c_str(), 0750), 0);
  ASSERT_EQ(::chown(root.c_str(), kNobody, kNobody), 0);
  for (const std::string& url : {"dir://" + root, "sqlite://" + root + "/store.db"}) {
    SCOPED_TRACE(url);
    auto store = open_store(url);
    ASSERT_FALSE(store.ok());
    EXPECT_THAT(store.error().message, HasSubstr("refusing " + root + ": it is owned by "));
    EXPECT_THAT(store.error().message, HasSubstr("uid 65534"));
    EXPECT_THAT(store.error().message, HasSubstr("chown root " + root));
  }
  EXPECT_TRUE(dir_names(root).empty());
}

TEST(StorePaths, ASymlinkedStoreRootOrDatabaseIsRefused) {
  TempDir tmp;
  const std::string real = tmp / "real";
  ASSERT_EQ(::mkdir(real.c_str(), 0750), 0);
  ASSERT_EQ(::symlink(real.c_str(), (tmp / "link").c_str()), 0);
  auto store = open_store("dir://" + tmp / "link");
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.error().message, HasSubstr(tmp / "link" + ": it is a symbolic link"));

  write_raw_file(tmp / "elsewhere.db", "");
  ASSERT_EQ(::symlink((tmp / "elsewhere.db").c_str(), (real + "/store.db").c_str()), 0);
  store = open_store("sqlite://" + real + "/store.db");
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.error().message, HasSubstr("symbolic link"));
  EXPECT_EQ(read_raw_file(tmp / "elsewhere.db"), "");
}

TEST(StorePaths, AMissingRootIsCreatedOnlyBeneathATrustedParentNeverThroughALink) {
  TempDir tmp;
  const std::string outside = tmp / "outside";
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (tmp / "link").c_str()), 0);
  for (const std::string& url :
       {"dir://" + tmp / "link/store", "sqlite://" + tmp / "link/db/store.db"}) {
    SCOPED_TRACE(url);
    auto store = open_store(url);
    ASSERT_FALSE(store.ok());
    EXPECT_THAT(store.error().message, HasSubstr(tmp / "link" + ": it is a symbolic link"));
  }
  EXPECT_EQ(everything_under(outside), std::vector<std::string>{});

  auto store = open_store("dir://" + tmp / "a/b/store");
  ASSERT_TRUE(store.ok()) << store.error().message;
  struct stat st {};
  ASSERT_EQ(::stat((tmp / "a/b/store").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 027, 0u) << "created writable by group or readable by others";
}

// Links planted inside the store (by whoever could write it before it was made root's, or over
// NFS by another machine's root): every write stays beneath the root.
TEST(StorePaths, LinksPlantedInsideTheStoreNeverMakeRootWriteOutside) {
  TempDir tmp;
  const std::string root = tmp / "store";
  const std::string outside = tmp / "outside";
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  write_raw_file(outside + "/victim", "secret\n");
  auto store = open_at(root);
  ASSERT_TRUE(store);
  const auto good = make_record("nfs1", "192.0.2.1");
  ASSERT_TRUE(store->put_monitor(good).ok());
  ASSERT_EQ(*store->bump_epoch("nfs1", 0, "adopter"), 1u);
  ASSERT_TRUE(store->put_locks("nfs1", 1, {make_lock("nfs1", 1, 0, 1)}).ok());

  auto plant = [&](const std::string& at, const std::string& to) {
    ASSERT_EQ(::symlink(to.c_str(), (root + "/" + at).c_str()), 0) << at;
  };
  // Directories: a node, a node's records, its epochs, the migrations.
  plant("nfs2", outside);
  ASSERT_EQ(::mkdir((root + "/nfs3").c_str(), 0750), 0);
  plant("nfs3/monitor", outside);
  plant("nfs3/epochs", outside);
  plant("migrations", outside);
  // Files: a record, a temp file, the lock table, an epoch.
  plant("nfs1/monitor/192.0.2.2.json", outside + "/victim");
  plant("nfs1/monitor/.192.0.2.3.lockferry-tmp.1.00", outside + "/victim");
  ::unlink((root + "/nfs1/locks.json").c_str());
  plant("nfs1/locks.json", outside + "/victim");

  auto refused = [](const Result<void>& r) {
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().message, HasSubstr("symbolic link"));
  };
  refused(store->put_monitor(make_record("nfs2", "192.0.2.9")));
  refused(store->put_locks("nfs2", 0, {}));
  EXPECT_FALSE(store->bump_epoch("nfs2", 0, "adopter").ok());
  EXPECT_FALSE(store->epoch("nfs2").ok());
  refused(store->put_monitor(make_record("nfs3", "192.0.2.9")));
  EXPECT_FALSE(store->bump_epoch("nfs3", 0, "adopter").ok());
  EXPECT_FALSE(store->list_monitor("nfs3").ok());
  MigrationRecord m{"nfs1", "nfs2", 1, 1, 2, 1, "192.0.2.10", "sm-notify", "ok"};
  refused(store->put_migration(m));
  EXPECT_FALSE(store->list_migrations().ok());

  // Links at file names are replaced, never written through.
  ASSERT_TRUE(store->put_monitor(make_record("nfs1", "192.0.2.2", 1)).ok());
  ASSERT_TRUE(store->put_locks("nfs1", 1, {make_lock("nfs1", 1, 0, 1)}).ok());
  EXPECT_EQ(store->list_locks("nfs1")->size(), 1u);
  // An epoch name taken by a link: the bump is refused or lands beside it, never through it.
  plant("nfs1/epochs/2", outside + "/victim");
  (void)store->bump_epoch("nfs1", 1, "adopter");
  (void)store->bump_epoch("nfs1", 2, "adopter");

  EXPECT_EQ(read_raw_file(outside + "/victim"), "secret\n");
  EXPECT_EQ(everything_under(outside), std::vector<std::string>{outside + "/victim"});
  // The good records are all still there; a node reached through a link is not a node.
  auto listed = store->list_monitor("nfs1");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ(listed->front(), good);
  EXPECT_EQ(*store->list_nodes(), (std::vector<std::string>{"nfs1", "nfs3"}));
}

TEST(StorePaths, LongFileNamesAreStoredUnderAnEncodedNameThatFitsNameMax) {
  TempDir tmp;
  const std::string root = tmp / "store";
  auto store = open_at(root);
  ASSERT_TRUE(store);
  const auto r = make_record("nfs1", std::string(255, 'x'));
  ASSERT_TRUE(store->put_monitor(r).ok());
  const auto names = dir_names(root + "/nfs1/monitor");
  ASSERT_EQ(names.size(), 1u);
  EXPECT_LE(names[0].size(), 255u);
  EXPECT_THAT(names[0], ::testing::EndsWith(".longname"));
  EXPECT_EQ(*store->list_monitor("nfs1"), std::vector<MonitorRecord>{r});

  // A document whose name does not match the file name inside is skipped, not trusted.
  const std::string doc = read_raw_file(root + "/nfs1/monitor/" + names[0]);
  write_raw_file(
      root + "/nfs1/monitor/" + std::string(180, 'x') + "." + std::string(64, '0') + ".longname",
      doc);
  EXPECT_EQ(*store->list_monitor("nfs1"), std::vector<MonitorRecord>{r});

  // Old stores (short names, "<name>.json") read as before.
  const auto short_record = make_record("nfs1", std::string(250, 'y'));
  ASSERT_TRUE(store->put_monitor(short_record).ok());
  EXPECT_TRUE(std::filesystem::exists(root + "/nfs1/monitor/" + std::string(250, 'y') + ".json"));
  ASSERT_TRUE(store->delete_monitor("nfs1", r.file_name, 0).ok());
  EXPECT_EQ(*store->list_monitor("nfs1"), std::vector<MonitorRecord>{short_record});
}

}  // namespace
}  // namespace lockferry::store
