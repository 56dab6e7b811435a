// SPDX-License-Identifier: Apache-2.0
// What only the sqlite:// store does: WAL mode and file modes, refusing network filesystems,
// refusing a database whose schema is newer than the binary, and its URL checks.
#include "store/sqlite_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <string>

#include "dir_store_test_util.h"
#include "store/sql_store.h"
#include "store/store.h"

namespace lockferry::store {
namespace {

using lockferry::testing::make_record;
using lockferry::testing::TempDir;
using lockferry::testing::write_raw_file;
using ::testing::HasSubstr;

// Runs one statement on the database file directly, as a user with the sqlite3 shell would.
std::string sql(const std::string& path, const std::string& statement) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string out;
  char* error = nullptr;
  sqlite3_exec(
      db, statement.c_str(),
      [](void* o, int n, char** values, char**) {
        for (int i = 0; i < n; ++i)
          *static_cast<std::string*>(o) += (values[i] ? values[i] : "") + std::string("|");
        return 0;
      },
      &out, &error);
  EXPECT_EQ(error, nullptr) << error;
  sqlite3_free(error);
  sqlite3_close(db);
  return out;
}

TEST(SqliteStore, CreatesAWalDatabaseOnlyItsOwnerAndGroupCanRead) {
  TempDir dir;
  const std::string path = dir / "sub/store.db";
  auto store = open_store("sqlite://" + path);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->url(), "sqlite://" + path);
  ASSERT_TRUE((*store)->put_monitor(make_record("nfs1", "client")).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(sql(path, "PRAGMA journal_mode"), "wal|");
  // SQL users see plain tables.
  EXPECT_EQ(sql(path, "SELECT node, file_name, mon_name FROM monitor_records"),
            "nfs1|client|client|");
  EXPECT_EQ(sql(path, "SELECT version FROM schema_version"), "1|2|3|");
}

TEST(SqliteStore, ReopeningKeepsTheDataAndDoesNotMigrateAgain) {
  TempDir dir;
  const std::string url = "sqlite://" + dir / "store.db";
  {
    auto store = open_store(url);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->put_monitor(make_record("nfs1", "client")).ok());
    ASSERT_EQ(*(*store)->bump_epoch("nfs1", 0, "nfs2"), 1u);
  }
  auto store = open_store(url);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->list_monitor("nfs1")->size(), 1u);
  EXPECT_EQ(*(*store)->epoch("nfs1"), 1u);
  EXPECT_EQ(sql(dir / "store.db", "SELECT count(*) FROM schema_version"), "3|");
}

TEST(SqliteStore, AVersion1DatabaseIsUpgradedAndItsEpochsKeptWithoutAnAdopter) {
  TempDir dir;
  const std::string path = dir / "store.db";
  ASSERT_TRUE(open_store("sqlite://" + path).ok());
  // What lockferry with schema version 1 left: no adopter column, nfs1 fenced at epoch 1.
  sql(path,
      "ALTER TABLE nodes DROP COLUMN adopter; ALTER TABLE lock_records DROP COLUMN client_addr; "
      "ALTER TABLE lock_records DROP COLUMN server_addr; DELETE FROM schema_version WHERE version "
      ">= 2; "
      "INSERT INTO nodes (node, epoch, epoch_changed_ns) VALUES ('nfs1', 1, 5)");
  auto store = open_store("sqlite://" + path);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(sql(path, "SELECT version FROM schema_version"), "1|2|3|");
  EXPECT_EQ(*(*store)->fence("nfs1"), (Fence{1, ""}));
  ASSERT_EQ(*(*store)->bump_epoch("nfs1", 1, "nfs3"), 2u);
  EXPECT_EQ(*(*store)->fence("nfs1"), (Fence{2, "nfs3"}));
  EXPECT_EQ(sql(path, "SELECT node, epoch, adopter FROM nodes"), "nfs1|2|nfs3|");
}

TEST(SqliteStore, RefusesADatabaseWithANewerSchema) {
  TempDir dir;
  const std::string path = dir / "store.db";
  ASSERT_TRUE(open_store("sqlite://" + path).ok());
  sql(path, "INSERT INTO schema_version VALUES (99, 'from the future', 0)");
  auto store = open_store("sqlite://" + path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, kErrSchemaNewer);
  EXPECT_THAT(store.error().message, HasSubstr("schema is version 99, newer than this lockferry"));
  EXPECT_THAT(store.error().message, HasSubstr("upgrade lockferry"));
}

TEST(SqliteStore, RefusesNetworkAndClusterFilesystems) {
  // statfs f_type values as the kernel reports them.
  EXPECT_EQ(unsafe_filesystem_name(0x6969), "NFS");
  EXPECT_EQ(unsafe_filesystem_name(0xFF534D42), "CIFS");
  EXPECT_EQ(unsafe_filesystem_name(0xFE534D42), "SMB2");
  EXPECT_EQ(unsafe_filesystem_name(0x517B), "SMB");
  EXPECT_EQ(unsafe_filesystem_name(0x65735546), "FUSE");
  EXPECT_EQ(unsafe_filesystem_name(0x00C36400), "Ceph");
  EXPECT_EQ(unsafe_filesystem_name(0x01021997), "9P");
  EXPECT_EQ(unsafe_filesystem_name(0x01161970), "GFS2");
  EXPECT_EQ(unsafe_filesystem_name(0x7461636F), "OCFS2");
  EXPECT_EQ(unsafe_filesystem_name(0x0BD00BD0), "Lustre");
  // Local ones: ext4, xfs, btrfs, tmpfs, overlayfs, zfs.
  for (unsigned long local :
       {0xEF53ul, 0x58465342ul, 0x9123683Eul, 0x01021994ul, 0x794C7630ul, 0x2FC12FC1ul}) {
    EXPECT_EQ(unsafe_filesystem_name(local), "") << std::hex << local;
  }
  TempDir dir;
  EXPECT_TRUE(check_local_filesystem(dir.path()).ok());
  auto missing = check_local_filesystem(dir / "no/such/dir");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr("ENOENT"));
}

TEST(SqliteStore, UrlsMustBeAbsolutePathsToAFile) {
  TempDir dir;
  for (const std::string bad :
       {"sqlite://relative.db", "sqlite://", "sqlite:///tmp/../x.db", "sqlite:///tmp/./x.db",
        "sqlite:///tmp/dir/", "sqlite:///tmp/x.db?mode=ro"}) {
    auto store = open_store(bad);
    EXPECT_FALSE(store.ok()) << bad;
  }
  auto relative = open_store("sqlite://store.db");
  EXPECT_THAT(relative.error().message, HasSubstr("three slashes"));
  // A path whose directory cannot be created says so.
  write_raw_file(dir / "file", "x");
  auto under_file = open_store("sqlite://" + dir / "file/store.db");
  ASSERT_FALSE(under_file.ok());
  EXPECT_THAT(under_file.error().message, HasSubstr("file"));
}

TEST(SqliteStore, ACorruptRowIsSkippedAndNamed) {
  TempDir dir;
  const std::string path = dir / "store.db";
  auto store = open_store("sqlite://" + path);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->put_monitor(make_record("nfs1", "good")).ok());
  ASSERT_TRUE((*store)->put_monitor(make_record("nfs1", "bad")).ok());
  sql(path, "UPDATE monitor_records SET priv = 'zz' WHERE file_name = 'bad'");
  lockferry::testing::LogCapture log;
  auto listed = (*store)->list_monitor("nfs1");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().file_name, "good");
  EXPECT_THAT(log.text(), HasSubstr("skipping corrupt monitor record of node 'nfs1' file 'bad'"));
}

}  // namespace
}  // namespace lockferry::store
