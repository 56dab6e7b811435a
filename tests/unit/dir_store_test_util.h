// SPDX-License-Identifier: Apache-2.0
// Helpers for the file and store tests: a temp directory removed afterwards, and running a
// function in forked child processes (real processes, as on separate nodes).
#pragma once

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "lockferry/records.h"
#include "statmon/record.h"
#include "store/store.h"

namespace lockferry::testing {

// Tests that take every file descriptor cannot run under the sanitizers: their runtime probes
// memory through a pipe (UBSan's vptr check reports a valid object as "invalid vptr" at EMFILE).
// They run in the normal build, which .ci/run runs first.
#define LOCKFERRY_SKIP_IF_SANITIZED_WITHOUT_DESCRIPTORS()                                         \
  do {                                                                                            \
    if (::lockferry::testing::kSanitized)                                                         \
      GTEST_SKIP() << "sanitizer build: the sanitizer runtime needs free descriptors (this test " \
                      "runs in the normal build)";                                                \
  } while (0)
#if defined(__SANITIZE_ADDRESS__)  // gcc's -fsanitize=address (scripts/test-sanitizers)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)  // clang's
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "lockferry-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    // Tests may leave read-only directories behind; make them writable again first.
    for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec)) {
        std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                     std::filesystem::perm_options::add, ec);
      }
    }
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_raw_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// All files under `dir`, recursively (what an attack may have made root create there).
inline std::vector<std::string> everything_under(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    out.push_back(it->path().string());
  return out;
}

inline std::string read_raw_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::vector<std::string> dir_names(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Runs `body(i)` in `n` child processes that all start at the same moment (released together
// through a pipe), and returns their exit codes in order. Each child has a 60 s alarm so a hang
// fails the test instead of blocking it.
inline std::vector<int> run_in_processes(int n, const std::function<int(int)>& body) {
  int gate[2];
  if (::pipe(gate) != 0) std::abort();
  std::vector<pid_t> pids;
  for (int i = 0; i < n; ++i) {
    pid_t pid = ::fork();
    if (pid < 0) std::abort();
    if (pid == 0) {
      ::alarm(60);
      ::close(gate[1]);
      char c;
      while (::read(gate[0], &c, 1) < 0) {
      }
      ::_exit(body(i));
    }
    pids.push_back(pid);
  }
  ::close(gate[0]);
  ::close(gate[1]);  // EOF releases every child at once
  std::vector<int> codes;
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    codes.push_back(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
  return codes;
}

inline MonitorRecord make_record(const std::string& node, const std::string& mon_name,
                                 std::uint64_t epoch = 0, const std::string& my_name = "server1") {
  MonitorRecord r;
  r.node = node;
  r.epoch = epoch;
  r.file_name = mon_name;
  r.first_seen_ns = 1'700'000'000'000'000'000;
  r.last_seen_ns = 1'700'000'000'123'456'789;
  r.addr = 0x0100007f;
  r.prog = 100021;
  r.vers = 4;
  r.proc = 16;
  r.priv = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  r.mon_name = mon_name;
  r.my_name = my_name;
  r.raw = statmon::format_record(r);
  return r;
}

// A write lock as Ganesha's VFS backend holds it; its owner is above 2^63 like a kernel pointer.
inline LockRecord make_lock(const std::string& node, std::uint64_t epoch, std::uint64_t start,
                            std::uint64_t end, const std::string& type = "write") {
  LockRecord l;
  l.node = node;
  l.epoch = epoch;
  l.manager_comm = "ganesha.nfsd";
  l.manager_pid = 4242;
  l.dev = (254u << 20) | 1;
  l.ino = 1234567;
  l.path = "/srv/export/data/f1";
  l.start = start;
  l.end = end;
  l.type = type;
  l.owner = 0xffff888123456780ull;
  l.owner_pid = -1;
  l.granted_ns = 1'700'000'000'123'456'789;
  return l;
}

inline std::unique_ptr<store::Store> open_at(const std::string& path) {
  auto store = store::open_store("dir://" + path);
  EXPECT_TRUE(store.ok()) << store.error().message;
  return store.ok() ? std::move(*store) : nullptr;
}

// Captures what the store logs, to check that skipped files are reported with their path.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(128)) {
    old_ = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink_));
  }
  ~LogCapture() { spdlog::set_default_logger(old_); }
  std::string text() {
    std::string all;
    for (const auto& line : sink_->last_formatted()) all += line;
    return all;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> old_;
};

}  // namespace lockferry::testing
