// SPDX-License-Identifier: Apache-2.0
// The rules that turn raw file events into FileChanges, shared by every capture mode: statd's
// temp files stay invisible, renames into place are writes, renames away are removals.
#include <gtest/gtest.h>

#include "capture/changes.h"
#include "capture/dir_keys.h"

namespace lockferry::capture {
namespace {

RawFileEvent closed(const std::string& name, bool exclusive = false) {
  RawFileEvent e;
  e.kind = RawFileEvent::Kind::closed_after_write;
  e.dir = "/var/lib/nfs/sm";
  e.name = name;
  e.exclusive_create = exclusive;
  e.pid = 42;
  e.comm = "rpc.statd";
  return e;
}

RawFileEvent renamed(const std::string& old_dir, const std::string& old_name,
                     const std::string& dir, const std::string& name) {
  RawFileEvent e;
  e.kind = RawFileEvent::Kind::renamed;
  e.old_dir = old_dir;
  e.old_name = old_name;
  e.dir = dir;
  e.name = name;
  return e;
}

TEST(CaptureChanges, ClosingANewRecordIsAWrite) {
  auto out = translate(closed("client1", true));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, FileChange::Kind::written);
  EXPECT_EQ(out[0].dir, "/var/lib/nfs/sm");
  EXPECT_EQ(out[0].name, "client1");
  EXPECT_EQ(out[0].pid, 42u);
  EXPECT_EQ(out[0].comm, "rpc.statd");
}

TEST(CaptureChanges, StatdTempFilesAreInvisibleUntilRenamedIntoPlace) {
  EXPECT_TRUE(translate(closed(".client1.new")).empty());
  EXPECT_TRUE(translate(closed("client1.new")).empty()) << "old nfs-utils temp name";
  auto out = translate(renamed("/sm", ".client1.new", "/sm", "client1"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, FileChange::Kind::written);
  EXPECT_EQ(out[0].name, "client1");
  out = translate(renamed("/sm", "client1.new", "/sm", "client1"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].name, "client1");
}

TEST(CaptureChanges, AClientNamedDotNewCreatedExclusivelyIsARecord) {
  auto out = translate(closed("host.new", /*exclusive=*/true));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].name, "host.new");
}

TEST(CaptureChanges, RenameAwayIsARemovalAndIntoAnotherWatchedDirAWrite) {
  auto out = translate(renamed("/sm", "client1", "/sm.bak", "client1"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, FileChange::Kind::removed);
  EXPECT_EQ(out[0].dir, "/sm");
  EXPECT_EQ(out[1].kind, FileChange::Kind::written);
  EXPECT_EQ(out[1].dir, "/sm.bak");

  out = translate(renamed("/sm", "client1", "", ""));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, FileChange::Kind::removed);
}

TEST(CaptureChanges, DeletingATempFileIsNotReported) {
  RawFileEvent e;
  e.kind = RawFileEvent::Kind::deleted;
  e.dir = "/sm";
  e.name = ".client1.new";
  EXPECT_TRUE(translate(e).empty());
  e.name = "client1";
  auto out = translate(e);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, FileChange::Kind::removed);
}

TEST(CaptureChanges, OpensAloneReportNothing) {
  RawFileEvent e = closed("client1");
  e.kind = RawFileEvent::Kind::opened;
  EXPECT_TRUE(translate(e).empty());
}

TEST(CaptureDirKeys, NormalizesPathsLexically) {
  EXPECT_EQ(normalize_path("/var//lib/./nfs/sm/"), "/var/lib/nfs/sm");
  EXPECT_EQ(normalize_path("/"), "/");
  EXPECT_EQ(normalize_path("a/../b"), "a/../b");
}

TEST(CaptureDirKeys, EveryAncestorGetsARelativePathKey) {
  auto keys = path_keys("/tmp");
  ASSERT_TRUE(keys) << keys.error().message;
  ASSERT_FALSE(keys->empty());
  auto root = dir_identity("/");
  ASSERT_TRUE(root);
  bool found = false;
  for (const auto& k : *keys)
    if (k.base == *root && k.rel == "tmp") found = true;
  EXPECT_TRUE(found) << "/ + \"tmp\" must resolve to /tmp";
  EXPECT_FALSE(path_keys("/nonexistent-lockferry-dir"));
}

}  // namespace
}  // namespace lockferry::capture
