// SPDX-License-Identifier: Apache-2.0
// The control socket: a request gets its answer, malformed input gets a clear error, and the
// server keeps serving afterwards.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <functional>
#include <thread>

#include "control/client.h"
#include "control/server.h"
#include "dir_store_test_util.h"

namespace lockferry::control {
namespace {

using namespace std::chrono_literals;

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override { start_server({}); }

  void start_server(ControlLimits limits) {
    path_ = tmp_ / "ctl.sock";
    auto server = ControlServer::start(
        io_, path_,
        [](const nlohmann::json& request) {
          if (request["command"] == "echo")
            return nlohmann::json{{"ok", true}, {"result", request}};
          return nlohmann::json{{"ok", false}, {"error", "unknown command"}};
        },
        limits);
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(*server);
    thread_ = std::thread([this] { io_.run_for(30s); });  // failsafe: never outlives 30 s
  }
  void TearDown() override {
    if (!thread_.joinable()) return;  // skipped before the server started
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
  auto answer = request(path_, {{"command", "echo"}, {"x", 1}}, 5s);
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  EXPECT_EQ((*answer)["x"], 1);
}

// Runs `body` in a child process as nobody (uid and gid 65534, no groups); its exit status, or
// -1 when it could not become nobody or did not exit.
int exit_status_as_nobody(const std::function<int()>& body) {
  const pid_t child = ::fork();
  if (child == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(100);
    ::_exit(body());
  }
  int status = 0;
  if (child < 0 || ::waitpid(child, &status, 0) != child || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

// Only root may use the control socket. The socket file is root's with mode 0600, so another
// user cannot even connect; and when the mode is opened up (a mistaken chmod, a copied socket
// directory) the server still refuses every peer whose credentials are not root's.
TEST_F(ControlTest, ARequestFromAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another user";
  const nlohmann::json echo{{"command", "echo"}, {"x", 1}};
  ASSERT_EQ(::chmod(tmp_.path().c_str(), 0711), 0);  // nobody may reach the socket's name
  EXPECT_EQ(exit_status_as_nobody([&] {
              auto answer = request(path_, echo, 5s);
              return !answer.ok() && answer.error().code == EACCES ? 0 : 1;
            }),
            0)
      << "a user other than root could connect to the 0600 socket";
  ASSERT_EQ(::chmod(path_.c_str(), 0666), 0);
  // The server answers a peer that is not root at once, before any request, and closes.
  EXPECT_EQ(exit_status_as_nobody([&] {
              const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
              sockaddr_un addr{};
              addr.sun_family = AF_UNIX;
              std::strcpy(addr.sun_path, path_.c_str());
              if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 3;
              timeval tv{2, 0};  // a server that waits for a request does not refuse
              ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
              char buf[512] = {};
              const ssize_t n = ::read(fd, buf, sizeof buf - 1);
              ::close(fd);
              if (n <= 0) return 2;
              return std::string(buf).find("accepts only root") != std::string::npos ? 0 : 1;
            }),
            0)
      << "no refusal (2), another answer (1) or no connection (3) for a peer that is not root";
  // The client library reports a failure (the refusal, or the closed connection when the server
  // closed before the request was sent), never an answer.
  EXPECT_EQ(exit_status_as_nobody([&] {
              ::signal(SIGPIPE, SIG_IGN);
              return request(path_, echo, 5s).ok() ? 1 : 0;
            }),
            0)
      << "the server answered a peer that is not root";
  // Root is still served.
  auto answer = request(path_, echo, 5s);
  ASSERT_TRUE(answer.ok()) << answer.error().message;
}

TEST_F(ControlTest, AnErrorFromTheDaemonIsAnErrorForTheCaller) {
  if (::geteuid() != 0) GTEST_SKIP() << "the control socket answers only root";
  auto answer = request(path_, {{"command", "nope"}}, 5s);
  ASSERT_FALSE(answer.ok());
  EXPECT_NE(answer.error().message.find("unknown command"), std::string::npos);
}

TEST_F(ControlTest, MalformedRequestsGetAClearErrorAndTheServerKeepsServing) {
  if (::geteuid() != 0) GTEST_SKIP() << "the control socket answers only root";
  for (const std::string& bad : std::vector<std::string>{
           "not json\n", "[1,2]\n", "{\"command\": 5}\n", "{}\n", std::string("\0\xff\xfe\n", 4)}) {
    auto answer = nlohmann::json::parse(raw_exchange(bad), nullptr, false);
    ASSERT_TRUE(answer.is_object()) << "for input " << bad;
    EXPECT_FALSE(answer["ok"].get<bool>());
    EXPECT_NE(answer["error"].get<std::string>().find("malformed"), std::string::npos);
  }
  auto big = raw_exchange(std::string(200 * 1024, 'x'));
  EXPECT_NE(big.find("too large"), std::string::npos);
  auto answer = request(path_, {{"command", "echo"}}, 5s);
  EXPECT_TRUE(answer.ok());
}

// A connected client that sends nothing: returns the fd.
int idle_client(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << errno;
  return fd;
}

// Whether the server closed `fd` within `limit` (read returns 0).
bool closed_within(int fd, std::chrono::milliseconds limit) {
  timeval tv{static_cast<time_t>(limit.count() / 1000),
             static_cast<suseconds_t>(limit.count() % 1000 * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char c;
  return ::read(fd, &c, 1) == 0;
}

class ControlLimitsTest : public ControlTest {
 protected:
  void SetUp() override {}  // each test starts the server with its limits
  void start(ControlLimits limits) { start_server(limits); }
};

TEST_F(ControlLimitsTest, AnIdleClientIsClosedAfterTheRequestTimeout) {
  if (::geteuid() != 0) GTEST_SKIP() << "the control socket answers only root";
  start({.request_timeout = 300ms});
  int fd = idle_client(path_);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(closed_within(fd, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  ::close(fd);
  EXPECT_TRUE(request(path_, {{"command", "echo"}}, 5s).ok());
}

TEST_F(ControlLimitsTest, IdleClientsMakeRoomForARealRequestWhenEverySlotIsTaken) {
  if (::geteuid() != 0) GTEST_SKIP() << "the control socket answers only root";
  start({.max_connections = 4, .max_per_process = 100, .request_timeout = 60s});
  std::vector<int> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(idle_client(path_));
  auto answer = request(path_, {{"command", "echo"}}, 5s);
  EXPECT_TRUE(answer.ok()) << answer.error().message;
  for (int fd : idle) ::close(fd);
}

TEST_F(ControlLimitsTest, OneProcessCannotTakeEverySlot) {
  if (::geteuid() != 0) GTEST_SKIP() << "the control socket answers only root";
  start({.max_connections = 8, .max_per_process = 3, .request_timeout = 60s});
  // The hog is another process: the test's own request must get a slot.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t hog = ::fork();
  ASSERT_GE(hog, 0);
  if (hog == 0) {
    std::vector<int> fds;
    for (int i = 0; i < 50; ++i) fds.push_back(idle_client(path_));
    int closed = 0;
    for (int fd : fds) closed += closed_within(fd, 50ms) ? 1 : 0;
    (void)!::write(ready[1], &closed, sizeof closed);
    ::pause();
    ::_exit(0);
  }
  int closed = 0;
  ASSERT_EQ(::read(ready[0], &closed, sizeof closed), static_cast<ssize_t>(sizeof closed));
  EXPECT_GE(closed, 47 - 8);  // all but three, give or take the ones still in the backlog
  auto answer = request(path_, {{"command", "echo"}}, 5s);
  EXPECT_TRUE(answer.ok()) << answer.error().message;
  ::kill(hog, SIGKILL);
  ::waitpid(hog, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST_F(ControlLimitsTest, AcceptIsRetriedAfterTheDescriptorsRanOut) {
  if (::geteuid() != 0) GTEST_SKIP() << "the control socket answers only root";
  start({.accept_retry = 50ms});
  LOCKFERRY_SKIP_IF_SANITIZED_WITHOUT_DESCRIPTORS();  // after start(): TearDown stops the server
  int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(client, 0);
  // Take every descriptor this process may have: the server's accept fails with EMFILE.
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  rlimit low = old;
  low.rlim_cur = 256;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> filler;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) filler.push_back(fd);
  ASSERT_EQ(errno, EMFILE);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path_.c_str());
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string request = "{\"command\":\"echo\"}\n";
  ASSERT_EQ(::write(client, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::this_thread::sleep_for(300ms);  // several failed accepts
  for (int fd : filler) ::close(fd);
  ::setrlimit(RLIMIT_NOFILE, &old);
  timeval tv{5, 0};
  ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string answer;
  char buf[256];
  for (ssize_t n; (n = ::read(client, buf, sizeof buf)) > 0;)
    answer.append(buf, static_cast<std::size_t>(n));
  ::close(client);
  EXPECT_NE(answer.find("\"ok\":true"), std::string::npos)
      << "no answer after the descriptors came back: '" << answer << "'";
  EXPECT_GE(server_->counters().accept_errors, 1u);
}

TEST(ControlClient, NoDaemonIsAClearError) {
  auto answer = request("/nonexistent/lockferryd.sock", {{"command", "status"}}, 1s);
  ASSERT_FALSE(answer.ok());
  EXPECT_NE(answer.error().message.find("is it running"), std::string::npos);
}

}  // namespace
}  // namespace lockferry::control
