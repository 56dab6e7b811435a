// SPDX-License-Identifier: Apache-2.0
// A real, throw-away PostgreSQL server for tests: initdb into a temp dir, listening only on a
// Unix socket in that dir (listen_addresses = ''), one fresh database per test, removed when
// the test process exits — even when it is killed, by a reaper process waiting on a pipe.
#pragma once

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/process.h"
#include "lockferry/result.h"

namespace lockferry::testing {

// CI sets these: a test that cannot get its PostgreSQL server then fails instead of skipping.
inline bool pg_required() {
  for (const char* var : {"LOCKFERRY_REQUIRE_E2E", "LOCKFERRY_REQUIRE_BPF"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && std::string(v) == "1") return true;
  }
  return false;
}

class PgTestServer {
 public:
  // The server of this test process, started on first use; nullptr when it cannot be started
  // (`why` says why: no PostgreSQL installed, initdb failed, ...).
  static PgTestServer* instance(std::string* why) {
    static std::string failure;
    static std::unique_ptr<PgTestServer> server = [] {
      auto s = std::unique_ptr<PgTestServer>(new PgTestServer());
      auto ok = s->init();
      if (!ok) {
        failure = ok.error().message;
        return std::unique_ptr<PgTestServer>();
      }
      return s;
    }();
    if (!server && why != nullptr) *why = "PostgreSQL test server unavailable: " + failure;
    return server.get();
  }

  PgTestServer(const PgTestServer&) = delete;
  PgTestServer& operator=(const PgTestServer&) = delete;
  ~PgTestServer() {
    // EOF on the pipe makes the reaper stop the server and remove the directory.
    if (reaper_pipe_ >= 0) ::close(reaper_pipe_);
    if (reaper_ > 0) ::waitpid(reaper_, nullptr, 0);
  }

  const std::string& socket_dir() const { return dir_; }

  // A new empty database; returns its lockferry store URL.
  Result<std::string> create_database() {
    static std::atomic<int> counter{0};
    const std::string name = "lf_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    try {
      pqxx::connection c(url("postgres"));
      pqxx::nontransaction tx(c);
      tx.exec("CREATE DATABASE " + name);
    } catch (const std::exception& e) {
      return make_error("CREATE DATABASE {}: {}", name, e.what());
    }
    return url(name);
  }

  std::string url(const std::string& database) const {
    return "postgresql:///" + database + "?host=" + dir_ + "&user=lockferry";
  }

  // Stop (as a crash or an outage: connections are cut) and start again with the same data.
  Result<void> stop() { return pg_ctl({"-m", "fast", "stop"}); }
  Result<void> start() { return pg_ctl({"-l", dir_ + "/server.log", "-t", "60", "start"}); }

 private:
  PgTestServer() = default;

  static std::string find_bin_dir() {
    if (const char* env = std::getenv("LOCKFERRY_PG_BIN")) return env;
    std::string best;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      const std::string bin = e.path().string() + "/bin";
      if (::access((bin + "/initdb").c_str(), X_OK) == 0 && bin > best) best = bin;
    }
    return best;
  }

  // initdb and the server refuse to run as root: as root, run them as `postgres` (or nobody).
  std::vector<std::string> as_server_user(std::vector<std::string> argv) const {
    if (run_as_.empty()) return argv;
    // From "/": the test's working directory may be one the server's user cannot enter.
    std::vector<std::string> out{"runuser", "-u", run_as_, "--", "env", "--chdir=/"};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }

  Result<void> run(const std::vector<std::string>& argv) const {
    auto r = process::run_command(as_server_user(argv), std::chrono::seconds(90));
    if (!r) return r.error();
    if (r->exit_code != 0) {
      return make_error("{} exited {}: {}", process::to_display(argv), r->exit_code, r->output);
    }
    return {};
  }

  Result<void> pg_ctl(std::vector<std::string> args) const {
    std::vector<std::string> argv{bin_ + "/pg_ctl", "-D", dir_ + "/data", "-w", "-s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }

  Result<void> init() {
    bin_ = find_bin_dir();
    if (bin_.empty()) {
      return make_error(
          "no /usr/lib/postgresql/*/bin/initdb (install Debian's postgresql "
          "package: scripts/install-deps)");
    }
    std::string tmpl = "/tmp/lockferry-pg-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return make_errno_error(errno, "mkdtemp");
    dir_ = tmpl;
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr) pw = ::getpwnam("nobody");
      if (pw == nullptr)
        return make_error("running as root and there is no postgres or nobody user");
      run_as_ = pw->pw_name;
      if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0)
        return make_errno_error(errno, "chown {}", dir_);
    }
    if (auto ok = start_reaper(); !ok) return ok;
    if (auto ok = run({bin_ + "/initdb", "-D", dir_ + "/data", "-A", "trust", "-U", "lockferry",
                       "-E", "UTF8", "--locale=C", "-N"});
        !ok) {
      return ok;
    }
    std::ofstream conf(dir_ + "/data/postgresql.conf", std::ios::app);
    conf << "listen_addresses = ''\n"
         << "unix_socket_directories = '" << dir_ << "'\n"
         << "fsync = off\n"  // crashes in these tests are process kills, not power cuts
         << "max_connections = 200\n";
    conf.close();
    if (!conf) return make_error("cannot append to {}/data/postgresql.conf", dir_);
    if (auto ok = start(); !ok) return ok;
    return {};
  }

  // A process that outlives a killed test process: when the pipe closes (this process exited,
  // however it exited), it stops the server and removes the directory.
  Result<void> start_reaper() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return make_errno_error(errno, "pipe");
    const std::vector<std::string> stop =
        as_server_user({bin_ + "/pg_ctl", "-D", dir_ + "/data", "-m", "immediate", "-w", "stop"});
    std::string script;
    for (const auto& a : stop) script += "'" + a + "' ";
    script += ">/dev/null 2>&1; rm -rf '" + dir_ + "'";
    const pid_t pid = ::fork();
    if (pid < 0) return make_errno_error(errno, "fork");
    if (pid == 0) {
      ::setsid();
      ::close(fds[1]);
      char c;
      for (;;) {
        const ssize_t n = ::read(fds[0], &c, 1);
        if (n > 0 || (n < 0 && errno == EINTR)) continue;
        break;
      }
      ::execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[0]);
    reaper_ = pid;
    reaper_pipe_ = fds[1];
    return {};
  }

  std::string bin_;
  std::string dir_;
  std::string run_as_;
  pid_t reaper_ = -1;
  int reaper_pipe_ = -1;
};

}  // namespace lockferry::testing
