// SPDX-License-Identifier: Apache-2.0
// Telling that another network namespace's NFS server shares this kernel's lockd, from /proc.
#include "capture/shared_lockd.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "dir_store_test_util.h"

namespace lockferry::capture {
namespace {

using lockferry::testing::TempDir;
using lockferry::testing::write_raw_file;

// A fake /proc/<pid> with its comm and an ns/net whose inode stands for its namespace (read_netns
// stats it): two processes in one namespace share the file.
void fake_process(const TempDir& proc, const std::string& pid, const std::string& comm,
                  const std::filesystem::path& netns) {
  std::filesystem::create_directories(proc / (pid + "/ns"));
  write_raw_file(proc / (pid + "/comm"), comm + "\n");
  std::filesystem::create_hard_link(netns, proc / (pid + "/ns/net"));
}

std::uint32_t inode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return static_cast<std::uint32_t>(st.st_ino);
}

TEST(SharedLockd, AnotherNamespacesMountdMeansAnotherNfsServer) {
  TempDir proc, ns;
  write_raw_file(ns / "ours", "");
  write_raw_file(ns / "theirs", "");
  const std::uint32_t ours = inode_of(ns / "ours");
  fake_process(proc, "10", "rpc.mountd", ns / "ours");   // this node's own server
  fake_process(proc, "11", "rpc.statd", ns / "theirs");  // an NFS client's statd: no server
  fake_process(proc, "12", "rpc.mountdx", ns / "theirs");
  EXPECT_FALSE(find_other_nfs_server(proc.path(), ours));

  fake_process(proc, "13", "rpc.mountd", ns / "theirs");
  auto other = find_other_nfs_server(proc.path(), ours);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->pid, 13u);
  EXPECT_EQ(other->netns, inode_of(ns / "theirs"));
  // Our own namespace unknown: nothing can be told apart.
  EXPECT_FALSE(find_other_nfs_server(proc.path(), 0));
}

}  // namespace
}  // namespace lockferry::capture
