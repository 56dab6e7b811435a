// SPDX-License-Identifier: Apache-2.0
// The control socket: a request gets its answer, malformed input gets a clear error, and the
// server keeps serving afterwards.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <gtest/gtest.h>

#include "daemon/control.h"
#include "dir_store_test_util.h"

namespace lockferry::daemon {
namespace {

using namespace std::chrono_literals;

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = tmp_ / "ctl.sock";
    auto server = ControlServer::start(io_, path_, [](const nlohmann::json& request) {
      if (request["command"] == "echo") return nlohmann::json{{"ok", true}, {"result", request}};
      return nlohmann::json{{"ok", false}, {"error", "unknown command"}};
    });
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(*server);
    thread_ = std::thread([this] { io_.run_for(30s); });  // failsafe: never outlives 30 s
  }
  void TearDown() override {
    boost::asio::post(io_, [this] { server_->stop(); });
    thread_.join();
  }

  // Sends raw bytes, returns the raw answer.
  std::string raw_exchange(const std::string& bytes) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::shutdown(fd, SHUT_WR);
    std::string out;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
  }

  testing::TempDir tmp_;
  std::string path_;
  boost::asio::io_context io_;
  std::unique_ptr<ControlServer> server_;
  std::thread thread_;
};

TEST_F(ControlTest, ARequestGetsItsAnswer) {
  if (::geteuid() != 0) GTEST_SKIP() << "the control socket answers only root";
  auto answer = control_request(path_, {{"command", "echo"}, {"x", 1}}, 5s);
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  EXPECT_EQ((*answer)["x"], 1);
}

TEST_F(ControlTest, AnErrorFromTheDaemonIsAnErrorForTheCaller) {
  if (::geteuid() != 0) GTEST_SKIP() << "the control socket answers only root";
  auto answer = control_request(path_, {{"command", "nope"}}, 5s);
  ASSERT_FALSE(answer.ok());
  EXPECT_NE(answer.error().message.find("unknown command"), std::string::npos);
}

TEST_F(ControlTest, MalformedRequestsGetAClearErrorAndTheServerKeepsServing) {
  if (::geteuid() != 0) GTEST_SKIP() << "the control socket answers only root";
  for (const std::string& bad : std::vector<std::string>{"not json\n", "[1,2]\n", "{\"command\": 5}\n", "{}\n",
                          std::string("\0\xff\xfe\n", 4)}) {
    auto answer = nlohmann::json::parse(raw_exchange(bad), nullptr, false);
    ASSERT_TRUE(answer.is_object()) << "for input " << bad;
    EXPECT_FALSE(answer["ok"].get<bool>());
    EXPECT_NE(answer["error"].get<std::string>().find("malformed"), std::string::npos);
  }
  auto big = raw_exchange(std::string(200 * 1024, 'x'));
  EXPECT_NE(big.find("too large"), std::string::npos);
  auto answer = control_request(path_, {{"command", "echo"}}, 5s);
  EXPECT_TRUE(answer.ok());
}

TEST(ControlClient, NoDaemonIsAClearError) {
  auto answer = control_request("/nonexistent/lockferryd.sock", {{"command", "status"}}, 1s);
  ASSERT_FALSE(answer.ok());
  EXPECT_NE(answer.error().message.find("is it running"), std::string::npos);
}

}  // namespace
}  // namespace lockferry::daemon
