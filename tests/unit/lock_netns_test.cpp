// SPDX-License-Identifier: Apache-2.0
// Which lock events a node keeps when several NFS servers share one kernel (one per network
// namespace), and reading a process's network namespace from /proc.
#include "capture/lock_netns.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "dir_store_test_util.h"
#include "procfs/netns.h"

namespace lockferry::capture {
namespace {

using lockferry::testing::TempDir;
using lockferry::testing::write_raw_file;
using ::testing::HasSubstr;

TEST(LockNetns, KeepsOnlyEventsOfItsOwnNamespace) {
  const LockNetnsFilter node_a(4026532001);
  EXPECT_TRUE(node_a.keeps(4026532001));
  // nodeB's kernel lockd lock: the same "lockd" thread, another NLM host namespace.
  EXPECT_FALSE(node_a.keeps(4026532002));
  EXPECT_FALSE(node_a.keeps(4026531840));  // the initial namespace is just another one
}

TEST(LockNetns, KeepsEventsTheKernelCouldNotPlace) {
  // netns 0: a kernel thread other than lockd, or no lockd BTF. Recording a foreign lock beats
  // losing one of ours.
  EXPECT_TRUE(LockNetnsFilter(4026532001).keeps(0));
}

TEST(LockNetns, UnknownOwnNamespaceKeepsEverything) {
  const LockNetnsFilter unknown;
  EXPECT_TRUE(unknown.keeps(4026532001));
  EXPECT_TRUE(unknown.keeps(4026532002));
  EXPECT_EQ(unknown.own(), 0u);
}

TEST(ReadNetns, IsTheInodeOfTheNamespaceLink) {
  struct stat st {};
  ASSERT_EQ(::stat("/proc/self/ns/net", &st), 0);
  auto own = procfs::read_netns("/proc");
  ASSERT_TRUE(own) << own.error().message;
  EXPECT_EQ(*own, static_cast<std::uint32_t>(st.st_ino));
  auto by_pid = procfs::read_netns("/proc", std::to_string(::getpid()));
  ASSERT_TRUE(by_pid);
  EXPECT_EQ(*by_pid, *own);
}

TEST(ReadNetns, AMissingProcessIsAnError) {
  TempDir proc;
  std::filesystem::create_directories(proc / "42");
  write_raw_file(proc / "42/comm", "lockd\n");
  auto r = procfs::read_netns(proc.path(), "42");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("42/ns/net"));
}

}  // namespace
}  // namespace lockferry::capture
