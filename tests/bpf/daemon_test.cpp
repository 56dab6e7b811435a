// SPDX-License-Identifier: Apache-2.0
// The real lockferryd process: records statd-style writes within milliseconds, keeps good
// records when garbage appears, answers `lockferry`, reloads on SIGHUP and cleans up on SIGTERM.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bpf_env.h"
#include "common/process.h"
#include "control/client.h"

extern char** environ;

namespace lockferry {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kBin = std::string(LOCKFERRY_BINARY_DIR) + "/userspace/";

std::string statd_line(const std::string& mon_name) {
  return "0100007f 000186b5 00000004 00000010 0123456789abcdef0123456789abcdef " + mon_name +
         " nodeA\n";
}

// Writes a record the way rpc.statd does: O_CREAT|O_EXCL|O_SYNC for a new one.
void statd_create(const std::string& dir, const std::string& name) {
  int fd = ::open((dir + "/" + name).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_SYNC, 0644);
  ASSERT_GE(fd, 0) << name;
  auto line = statd_line(name);
  ASSERT_EQ(::write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  ::close(fd);
}

class Lockferryd : public ::testing::Test {
 protected:
  void SetUp() override {
    LOCKFERRY_REQUIRE_BPF_OR_SKIP();
    char tmpl[] = "/tmp/lockferryd-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ + "/sm");
    fs::create_directories(root_ + "/store");
    socket_ = root_ + "/ctl.sock";
    pin_dir_ = "/sys/fs/bpf/lockferry-daemon-test-" + std::to_string(::getpid());
    write_config(root_ + "/sm");
  }

  void TearDown() override {
    stop(SIGKILL);
    std::error_code ec;
    fs::remove_all(root_, ec);
    // A SIGKILLed daemon cannot unpin: its pins would keep its programs loaded after the test.
    fs::remove_all(pin_dir_, ec);
    fs::remove_all(pin_dir_ + "-locks", ec);
  }

  void write_config(const std::string& monitor_dir) {
    std::ofstream(root_ + "/lockferry.toml")
        << "node = \"nodeA\"\nstore = \"dir://" << root_ << "/store\"\n"
        << "[capture]\nmonitor_dirs = [\"" << monitor_dir << "\"]\nmode = \"bpf\"\n"
        << "pin_dir = \"" << pin_dir_ << "\"\n[control]\nsocket = \"" << socket_ << "\"\n"
        << extra_config_;
  }

  void start() {
    std::string bin = kBin + "lockferryd";
    std::string conf = root_ + "/lockferry.toml";
    std::string log = root_ + "/lockferryd.log";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    char* argv[] = {bin.data(), const_cast<char*>("--config"), conf.data(), nullptr};
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ASSERT_EQ(rc, 0) << "cannot start " << bin << " (is it built?)";
    ASSERT_GT(pid, 0);
    pid_ = pid;
    // Ready when the control socket answers (it is opened after capture is attached).
    for (auto deadline = std::chrono::steady_clock::now() + 20s;
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(20ms)) {
      if (control::request(socket_, {{"command", "status"}}, 2s).ok()) return;
    }
    FAIL() << "lockferryd did not become ready; log:\n" << log_text();
  }

  // Only ever signals the daemon we started: kill(-1, ...) as root would signal every process.
  void signal_daemon(int signo) {
    ASSERT_GT(pid_, 0);
    ::kill(pid_, signo);
  }

  int stop(int signo) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signo);
    int status = 0;
    for (int i = 0; i < 500 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(10ms);
    if (::waitpid(pid_, &status, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string log_text() {
    std::ifstream in(root_ + "/lockferryd.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  nlohmann::json records() {
    auto r = control::request(socket_, {{"command", "records"}}, 5s);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : nlohmann::json::array();
  }

  // Polls until `pred(records)` holds; returns how long it took, or fails after 5 s.
  std::chrono::microseconds wait_records(const std::function<bool(const nlohmann::json&)>& pred) {
    auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < 5s) {
      if (pred(records())) {
        return std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - start);
      }
      std::this_thread::sleep_for(1ms);
    }
    ADD_FAILURE() << "records never matched; have " << records().dump() << "\nlog:\n" << log_text();
    return 5s;
  }

  static bool has(const nlohmann::json& recs, const std::string& name) {
    for (const auto& r : recs)
      if (r["file_name"] == name) return true;
    return false;
  }

  nlohmann::json status() {
    auto r = control::request(socket_, {{"command", "status"}}, 5s);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : nlohmann::json::object();
  }

  // Sends SIGHUP and waits until status shows a reload newer than the last one seen (by count:
  // two reloads can fall in one millisecond of "last").
  nlohmann::json reload() {
    const auto before = status()["reload"]["count"].get<std::uint64_t>();
    signal_daemon(SIGHUP);
    for (int i = 0; i < 500; ++i) {
      auto s = status();
      if (s["reload"]["count"].get<std::uint64_t>() != before) return s["reload"];
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "no reload in status; log:\n" << log_text();
    return {};
  }

  std::string root_, socket_, pin_dir_;
  std::string extra_config_;  // appended to the config file
  pid_t pid_ = -1;
};

TEST_F(Lockferryd, RecordsAStatdRecordWithinMilliseconds) {
  ASSERT_NO_FATAL_FAILURE(start());
  statd_create(root_ + "/sm", "192.0.2.101");
  auto took = wait_records([](const auto& r) { return has(r, "192.0.2.101"); });
  std::cout << "[ measure  ] record visible in `lockferry records` " << took.count() / 1000.0
            << " ms after statd closed it\n";
  EXPECT_LT(took, 1s);
  auto recs = records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["mon_name"], "192.0.2.101");
  EXPECT_EQ(recs[0]["addr"], "127.0.0.1");
  EXPECT_EQ(recs[0]["raw"], statd_line("192.0.2.101"));
}

// The capability sets from /proc/<pid>/status, e.g. "CapEff" -> mask.
std::uint64_t capability_mask(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0)
      return std::stoull(line.substr(field.size() + 1), nullptr, 16);
  }
  return ~0ULL;
}

TEST_F(Lockferryd, KeepsOnlyTheCapabilitiesItNeedsOnceCaptureIsAttached) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::uint64_t expected = (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_DAC_READ_SEARCH) |
                           (1ULL << CAP_CHOWN) | (1ULL << CAP_FOWNER) | (1ULL << CAP_KILL) |
                           (1ULL << CAP_SYS_PTRACE) | (1ULL << CAP_BPF) | (1ULL << CAP_PERFMON) |
                           // the built-in notifier sends SM_NOTIFY from a reserved port
                           (1ULL << CAP_NET_BIND_SERVICE);
  // What only the commands it runs need (sm-notify: a reserved port, then statd's user) stays
  // permitted, never effective: under no_new_privs a command gets at most lockferryd's permitted
  // set.
  const std::uint64_t for_commands =
      (1ULL << CAP_SETPCAP) | (1ULL << CAP_SETUID) | (1ULL << CAP_SETGID);
  EXPECT_EQ(capability_mask(pid_, "CapEff"), expected);
  EXPECT_EQ(capability_mask(pid_, "CapPrm"), expected | for_commands);
  EXPECT_NE(capability_mask(pid_, "CapEff") & (1ULL << CAP_SYS_ADMIN), (1ULL << CAP_SYS_ADMIN));
  EXPECT_NE(log_text().find("keeping cap_dac_override"), std::string::npos);
  // And it still works: the kept set is enough to read statd's 0600 records and update maps.
  statd_create(root_ + "/sm", "192.0.2.160");
  wait_records([](const auto& r) { return has(r, "192.0.2.160"); });
}

TEST_F(Lockferryd, RecordsWhatStatdWroteWhileItWasNotRunning) {
  statd_create(root_ + "/sm", "192.0.2.150");
  ASSERT_NO_FATAL_FAILURE(start());
  EXPECT_TRUE(has(records(), "192.0.2.150"));
}

TEST_F(Lockferryd, GarbageInTheMonitorDirectoryIsLoggedAndGoodRecordsKept) {
  ASSERT_NO_FATAL_FAILURE(start());
  statd_create(root_ + "/sm", "192.0.2.101");
  wait_records([](const auto& r) { return has(r, "192.0.2.101"); });
  std::ofstream(root_ + "/sm/evil") << std::string("\0\x01\x02 binary junk", 15);
  std::ofstream(root_ + "/sm/192.0.2.101") << "truncated 0100";
  statd_create(root_ + "/sm", "192.0.2.102");
  wait_records([](const auto& r) { return has(r, "192.0.2.102"); });
  auto recs = records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0]["raw"], statd_line("192.0.2.101")) << "the last good version is kept";
  auto status = control::request(socket_, {{"command", "status"}}, 5s);
  ASSERT_TRUE(status.ok());
  EXPECT_GE((*status)["records"]["bad"].get<int>(), 2);
  EXPECT_NE(log_text().find("evil"), std::string::npos) << "the log names the bad file";
}

TEST_F(Lockferryd, SighupMovesTheWatchAndSigtermRemovesThePins) {
  ASSERT_NO_FATAL_FAILURE(start());
  EXPECT_TRUE(fs::exists(pin_dir_)) << "maps and programs pinned for bpftool";
  fs::create_directories(root_ + "/sm2");
  write_config(root_ + "/sm2");
  signal_daemon(SIGHUP);
  for (int i = 0; i < 200 && log_text().find("reload: now watching") == std::string::npos; ++i)
    std::this_thread::sleep_for(10ms);
  statd_create(root_ + "/sm2", "192.0.2.201");
  wait_records([](const auto& r) { return has(r, "192.0.2.201"); });
  EXPECT_EQ(stop(SIGTERM), 0);
  EXPECT_FALSE(fs::exists(pin_dir_)) << "pins removed on a clean stop";
}

TEST_F(Lockferryd, ABadReloadKeepsTheRunningConfiguration) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::ofstream(root_ + "/lockferry.toml") << "node = \"nodeA\"\nbogus_key = 1\n";
  signal_daemon(SIGHUP);
  for (int i = 0; i < 200 && log_text().find("keeping the running") == std::string::npos; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_NE(log_text().find("bogus_key"), std::string::npos);
  statd_create(root_ + "/sm", "192.0.2.111");
  wait_records([](const auto& r) { return has(r, "192.0.2.111"); });
}

// statd refuses such names, but anyone who can write the monitor directory can create them: a
// file name with a new line and escape sequences must not forge a log line or reach a terminal.
TEST_F(Lockferryd, HostileFileNamesCannotForgeLogLines) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string name =
      "x\n2026-12-04T20:00:00.000 critical FORGED: node nodeA was adopted\x1b[2J\x1b]0;t\x07";
  std::ofstream(root_ + "/sm/" + name) << statd_line("192.0.2.99");
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(fs::remove(root_ + "/sm/" + name));
  // Events are handled in order: once this record is in, the hostile one was handled too.
  statd_create(root_ + "/sm", "192.0.2.98");
  wait_records([](const auto& r) { return has(r, "192.0.2.98"); });
  const std::string log = log_text();
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << log;
  EXPECT_EQ(log.find('\x07'), std::string::npos) << log;
  EXPECT_EQ(log.find("\n2026-12-04T20:00:00.000 critical FORGED"), std::string::npos) << log;
  EXPECT_NE(log.find("x\\x0a2026-12-04T20:00:00.000 critical FORGED"), std::string::npos)
      << "the name is logged, escaped:\n"
      << log;
}

// SIGHUP applies what can change live and reports the rest, in the log and in status, instead of
// silently keeping the old value (a changed [health] kept running with its old settings).
TEST_F(Lockferryd, AReloadAppliesWhatItCanAndReportsWhatNeedsARestart) {
  extra_config_ = "[health]\nheartbeats = false\n";
  write_config(root_ + "/sm");
  ASSERT_NO_FATAL_FAILURE(start());
  ASSERT_TRUE(status().contains("health"));
  extra_config_ =
      "[health]\nheartbeats = false\ncheck_interval_ms = 2000\n[failover]\nrecognize = \"none\"\n";
  write_config(root_ + "/sm");
  auto r = reload();
  EXPECT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["applied"], nlohmann::json::array({"failover.recognize"})) << r.dump();
  EXPECT_EQ(r["needs_restart"],
            nlohmann::json::array({"health.check_interval_ms: running 1000, file 2000"}))
      << r.dump();
  EXPECT_NE(log_text().find("health.check_interval_ms: running 1000, file 2000 - takes effect only "
                            "when lockferryd restarts"),
            std::string::npos)
      << log_text();

  // [health] removed: health keeps running until a restart, and says so.
  extra_config_.clear();
  write_config(root_ + "/sm");
  r = reload();
  EXPECT_EQ(r["applied"], nlohmann::json::array({"failover.recognize"})) << r.dump();
  EXPECT_NE(r["needs_restart"].dump().find("health: running true, file false"), std::string::npos)
      << r.dump();
  EXPECT_TRUE(status().contains("health"));

  // Back to the running values: nothing waits for a restart any more.
  extra_config_ = "[health]\nheartbeats = false\n";
  write_config(root_ + "/sm");
  r = reload();
  EXPECT_TRUE(r["needs_restart"].empty()) << r.dump();
}

TEST(LockferrydConfig, ABadConfigFailsWithTheKeyNamed) {
  char tmpl[] = "/tmp/lockferryd-conf-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string conf = std::string(tmpl) + "/bad.toml";
  std::ofstream(conf) << "node = \"a\"\n[capture]\nreconcile_interval_s = -4\n";
  auto r = process::run_command({kBin + "lockferryd", "--config", conf, "--check-config"}, 10s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_NE(r->output.find("reconcile_interval_s"), std::string::npos) << r->output;
  fs::remove_all(tmpl);
}

}  // namespace
}  // namespace lockferry
