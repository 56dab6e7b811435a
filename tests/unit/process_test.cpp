// SPDX-License-Identifier: Apache-2.0
// Running external commands: output, exit codes, and the timeout that keeps sm-notify from
// hanging a failover.
#include "common/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

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

TEST(RunCommand, TheCommandGetsOnlyStdinStdoutAndStderr) {
  // Descriptors a library opened without close-on-exec, as Boost.Asio's sockets are: the command
  // must not inherit them (a socket it keeps would hold lockferryd's address after a restart).
  int leaky_socket = ::socket(AF_INET, SOCK_DGRAM, 0);
  int leaky_file = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky_socket, 0);
  ASSERT_GE(leaky_file, 0);
  // The shell lists its own descriptors ($$), not those of ls, which opens the directory.
  auto r = run_command({"sh", "-c", "ls /proc/$$/fd; true"}, 10s);
  ::close(leaky_socket);
  ::close(leaky_file);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->output, "0\n1\n2\n");
}

TEST(RunCommand, AMissingProgramIsAnErrorNamingIt) {
  auto r = run_command({"lockferry-no-such-program"}, 1s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("lockferry-no-such-program"), std::string::npos);
}

}  // namespace
}  // namespace lockferry::process
