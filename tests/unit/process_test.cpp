// SPDX-License-Identifier: Apache-2.0
// Running external commands: output, exit codes, and the timeout that keeps sm-notify from
// hanging a failover.
#include <gtest/gtest.h>

#include "common/process.h"

namespace lockferry::process {
namespace {

using namespace std::chrono_literals;

TEST(RunCommand, CapturesOutputAndExitCode) {
  auto r = run_command({"sh", "-c", "echo out; echo err >&2; exit 3"}, 10s);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->timed_out);
  EXPECT_NE(r->output.find("out"), std::string::npos);
  EXPECT_NE(r->output.find("err"), std::string::npos);
}

TEST(RunCommand, KillsACommandThatOutlivesItsTimeoutWithItsChildren) {
  auto start = std::chrono::steady_clock::now();
  auto r = run_command({"sh", "-c", "sleep 30 & sleep 30"}, 300ms);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(RunCommand, AMissingProgramIsAnErrorNamingIt) {
  auto r = run_command({"lockferry-no-such-program"}, 1s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("lockferry-no-such-program"), std::string::npos);
}

}  // namespace
}  // namespace lockferry::process
