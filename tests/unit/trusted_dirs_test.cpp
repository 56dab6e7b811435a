// SPDX-License-Identifier: Apache-2.0
// The StrictModes-like rule for directories root writes into (common/trusted_dirs.h): links are
// never followed, and a directory or parent that another user could change is refused with the
// path and owner to fix. Tests that give a directory to another user need root (chown).
#include "common/trusted_dirs.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "dir_store_test_util.h"

namespace lockferry::files {
namespace {

using lockferry::testing::TempDir;
using ::testing::HasSubstr;

constexpr uid_t kNobody = 65534;

// A tree like /var/lib/nfs/statd/sm beneath a fresh temp directory (root's, mode 0700).
struct Tree {
  TempDir tmp;
  std::string parent = tmp / "statd";
  std::string sm = parent + "/sm";
  std::string outside = tmp / "outside";
  Tree() {
    std::filesystem::create_directories(sm);
    std::filesystem::create_directories(outside);
    ::chmod(parent.c_str(), 0755);
    ::chmod(sm.c_str(), 0700);
  }
};

TEST(TrustedDirs, OpensARootOwnedTreeAndWritesWhereItWasOpened) {
  Tree t;
  auto fd = open_trusted_directory(t.sm, ParentOwners::trusted_only);
  ASSERT_TRUE(fd.ok()) << fd.error().message;
  // Renamed away after opening: writes still land in the directory that was opened.
  ASSERT_EQ(::rename(t.sm.c_str(), (t.parent + "/sm.old").c_str()), 0);
  ASSERT_EQ(::symlink(t.outside.c_str(), t.sm.c_str()), 0);
  ASSERT_TRUE(write_file_atomically_at(fd->get(), t.sm, "client", "x\n", 0600).ok());
  EXPECT_TRUE(std::filesystem::exists(t.parent + "/sm.old/client"));
  EXPECT_TRUE(std::filesystem::is_empty(t.outside));
}

TEST(TrustedDirs, ASymbolicLinkAnywhereInThePathIsRefused) {
  Tree t;
  const std::string link = t.tmp / "link";
  ASSERT_EQ(::symlink(t.parent.c_str(), link.c_str()), 0);
  for (const std::string& path : {link + "/sm", link, std::string(t.tmp / "link/../statd/sm")}) {
    SCOPED_TRACE(path);
    auto fd = open_trusted_directory(path, ParentOwners::or_its_owner);
    ASSERT_FALSE(fd.ok());
  }
  auto fd = open_trusted_directory(link + "/sm", ParentOwners::trusted_only);
  ASSERT_FALSE(fd.ok());
  EXPECT_THAT(fd.error().message, HasSubstr(link + ": it is a symbolic link"));
}

TEST(TrustedDirs, AParentOthersCanWriteIsRefusedUnlessSticky) {
  Tree t;
  ASSERT_EQ(::chmod(t.parent.c_str(), 0777), 0);
  auto fd = open_trusted_directory(t.sm, ParentOwners::or_its_owner);
  ASSERT_FALSE(fd.ok());
  EXPECT_THAT(fd.error().message, HasSubstr("its parent " + t.parent + " has mode 0777"));
  EXPECT_THAT(fd.error().message, HasSubstr("chmod go-w " + t.parent));
  ASSERT_EQ(::chmod(t.parent.c_str(), 01777), 0);  // like /tmp
  EXPECT_TRUE(open_trusted_directory(t.sm, ParentOwners::trusted_only).ok());
}

TEST(TrustedDirs, TheDirectoryItselfMustNotBeWritableByOthersEvenWhenSticky) {
  Tree t;
  ASSERT_EQ(::chmod(t.sm.c_str(), 01777), 0);
  for (auto parents : {ParentOwners::trusted_only, ParentOwners::or_its_owner}) {
    auto fd = open_trusted_directory(t.sm, parents);
    ASSERT_FALSE(fd.ok());
    EXPECT_THAT(fd.error().message, HasSubstr("refusing " + t.sm + ": its mode 1777"));
  }
}

TEST(TrustedDirs, ParentsOfAnotherUserAreRefusedNamingTheOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another user";
  Tree t;
  ASSERT_EQ(::chown(t.parent.c_str(), kNobody, kNobody), 0);
  // The store's rule: only root's parents.
  auto fd = open_trusted_directory(t.sm, ParentOwners::trusted_only);
  ASSERT_FALSE(fd.ok());
  EXPECT_THAT(fd.error().message, HasSubstr("its parent " + t.parent + " is owned by "));
  EXPECT_THAT(fd.error().message, HasSubstr("uid 65534"));
  // statd's rule: a root-owned sm/ under another user's parent could be any directory of root's
  // that user moved there, so it is refused too.
  fd = open_trusted_directory(t.sm, ParentOwners::or_its_owner);
  ASSERT_FALSE(fd.ok());
  EXPECT_THAT(fd.error().message, HasSubstr("or by " + t.sm + "'s owner"));
}

TEST(TrustedDirs, RhelLayoutParentOwnedByStatdsUserIsAcceptedForStatdsDirectory) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another user";
  Tree t;
  ASSERT_EQ(::chown(t.parent.c_str(), kNobody, kNobody), 0);  // /var/lib/nfs/statd, rpcuser
  ASSERT_EQ(::chown(t.sm.c_str(), kNobody, kNobody), 0);      // /var/lib/nfs/statd/sm, rpcuser
  auto fd = open_trusted_directory(t.sm, ParentOwners::or_its_owner);
  EXPECT_TRUE(fd.ok()) << fd.error().message;
  // Not for the store: its root must be root's.
  fd = open_trusted_directory(t.sm, ParentOwners::trusted_only);
  ASSERT_FALSE(fd.ok());
  EXPECT_THAT(fd.error().message, HasSubstr("refusing " + t.sm + ": it is owned by "));
  EXPECT_THAT(fd.error().message, HasSubstr("chown root " + t.sm));
}

TEST(TrustedDirs, OpenBeneathNeverFollowsLinksNorLeavesTheDirectory) {
  Tree t;
  ASSERT_EQ(::symlink(t.outside.c_str(), (t.sm + "/dir-link").c_str()), 0);
  ASSERT_EQ(::symlink((t.outside + "/f").c_str(), (t.sm + "/file-link").c_str()), 0);
  Fd dir(::open(t.sm.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_GE(dir.get(), 0);
  for (const char* rel : {"dir-link/x", "file-link", "../outside/f", "dir-link"}) {
    SCOPED_TRACE(rel);
    Fd fd(open_beneath(dir.get(), rel, O_WRONLY | O_CREAT, 0600));
    EXPECT_LT(fd.get(), 0);
  }
  EXPECT_TRUE(std::filesystem::is_empty(t.outside));
  Fd fd(open_beneath(dir.get(), "real", O_WRONLY | O_CREAT, 0600));
  EXPECT_GE(fd.get(), 0);
}

TEST(TrustedDirs, OpenDirectoryBeneathCreatesMissingDirectoriesAndRefusesLinks) {
  Tree t;
  Fd root(::open(t.parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto made = open_directory_beneath(root.get(), t.parent, "a/b/c", true, 0750);
  ASSERT_TRUE(made.ok()) << made.error().message;
  EXPECT_TRUE(std::filesystem::is_directory(t.parent + "/a/b/c"));
  auto missing = open_directory_beneath(root.get(), t.parent, "nope", false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ENOENT);

  ASSERT_EQ(::symlink(t.outside.c_str(), (t.parent + "/a/link").c_str()), 0);
  auto linked = open_directory_beneath(root.get(), t.parent, "a/link/d", true, 0750);
  ASSERT_FALSE(linked.ok());
  EXPECT_THAT(linked.error().message, HasSubstr(t.parent + "/a/link: it is a symbolic link"));
  EXPECT_TRUE(std::filesystem::is_empty(t.outside));

  ASSERT_EQ(::chmod((t.parent + "/a/b").c_str(), 0777), 0);
  auto open = open_directory_beneath(root.get(), t.parent, "a/b/c", false);
  ASSERT_FALSE(open.ok());
  EXPECT_THAT(open.error().message, HasSubstr("refusing " + t.parent + "/a/b: its mode 0777"));
}

}  // namespace
}  // namespace lockferry::files
