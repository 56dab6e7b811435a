// SPDX-License-Identifier: Apache-2.0
// What the fault-injection tests share: a real lockferryd (or `lockferry`) process they start,
// SIGKILL and restart — only ever signalling a pid they spawned themselves (pid > 0: kill(-1)
// as root would signal every process) — a statd-like record writer, small tmpfs mounts, and
// exact comparisons of a monitor directory with what the store holds.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "control/client.h"
#include "store/store.h"

extern char** environ;

namespace lockferry::faults {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

inline const std::string kBinDir = std::string(LOCKFERRY_BINARY_DIR) + "/userspace/";

// A child process this test started, with its output appended to `log`.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { kill_and_reap(); }

  bool spawn(const std::vector<std::string>& argv, const std::string& log) {
    kill_and_reap();
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0 || pid <= 0) return false;
    pid_ = pid;
    return true;
  }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Signals only the process we spawned; never 0 or -1.
  void signal(int signo) {
    if (pid_ > 0) ::kill(pid_, signo);
  }

  // Whether it has exited (reaped, with `status` set) within `timeout`.
  bool wait_exit(std::chrono::milliseconds timeout, int* code = nullptr) {
    if (pid_ <= 0) return true;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (true) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    pid_ = -1;
    if (code) *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }

  void kill_and_reap() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

inline std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::string statd_line(const std::string& mon_name, const std::string& my_name = "nodeA") {
  return "0100007f 000186b5 00000004 00000010 0123456789abcdef0123456789abcdef " + mon_name + " " +
         my_name + "\n";
}

// The three things rpc.statd does to a record file (nfs-utils support/nsm/file.c).
inline bool statd_create(const std::string& dir, const std::string& name,
                         const std::string& my_name = "nodeA") {
  int fd = ::open((dir + "/" + name).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_SYNC, 0600);
  if (fd < 0) return false;
  const std::string line = statd_line(name, my_name);
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  return ok;
}

// A rewrite goes through a temp copy renamed over the record: ".<name>.new" (nfs-utils 2.8.2+)
// or "<name>.new" (Debian 12's 2.6.2); `debian_temp` picks the latter.
inline bool statd_rewrite(const std::string& dir, const std::string& name,
                          const std::string& my_name, bool debian_temp) {
  const std::string temp = dir + "/" + (debian_temp ? name + ".new" : "." + name + ".new");
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_SYNC, 0600);
  if (fd < 0) return false;
  const std::string line = statd_line(name, my_name);
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  return ok && ::rename(temp.c_str(), (dir + "/" + name).c_str()) == 0;
}

inline bool statd_delete(const std::string& dir, const std::string& name) {
  return ::unlink((dir + "/" + name).c_str()) == 0;
}

// File name -> content of every record file (no dot files) in a monitor directory.
inline std::map<std::string, std::string> dir_state(const std::string& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    out[name] = file_text(e.path().string());
  }
  return out;
}

// File name -> the lines the store holds for it, as statd's file would read.
inline std::map<std::string, std::string> store_state(const std::string& store_dir,
                                                      const std::string& node) {
  std::map<std::string, std::string> out;
  auto store = store::open_store("dir://" + store_dir);
  if (!store) return {{"<store error>", store.error().message}};
  auto records = (*store)->list_monitor(node);
  if (!records) return {{"<store error>", records.error().message}};
  for (const auto& r : *records) out[r.file_name] += r.raw;
  return out;
}

inline std::string describe_difference(const std::map<std::string, std::string>& dir,
                                       const std::map<std::string, std::string>& stored) {
  std::string out;
  for (const auto& [name, content] : dir) {
    auto it = stored.find(name);
    if (it == stored.end())
      out += "  missing in store: " + name + "\n";
    else if (it->second != content)
      out += "  differs: " + name + "\n    dir:   " + content + "    store: " + it->second;
  }
  for (const auto& [name, content] : stored)
    if (!dir.count(name)) out += "  only in store: " + name + "\n";
  return out;
}

// A small tmpfs for the store, so the test can fill it up or make it read-only.
class TmpfsMount {
 public:
  TmpfsMount(std::string path, const std::string& size) : path_(std::move(path)) {
    fs::create_directories(path_);
    const std::string options = "size=" + size + ",mode=0750";
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~TmpfsMount() {
    if (mounted_ && ::umount2(path_.c_str(), 0) != 0) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  bool set_read_only(bool ro) {
    return ::mount(nullptr, path_.c_str(), nullptr, MS_REMOUNT | (ro ? MS_RDONLY : 0), nullptr) ==
           0;
  }

 private:
  std::string path_;
  bool mounted_ = false;
};

// Fills the file system holding `dir` with one file until ENOSPC; returns its path.
inline std::string fill_up(const std::string& dir) {
  const std::string path = dir + "/.filler";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return path;
  std::string chunk(4096, 'f');
  while (::write(fd, chunk.data(), chunk.size()) > 0) {
  }
  // The last partial page too.
  while (::write(fd, chunk.data(), 1) > 0) {
  }
  ::close(fd);
  return path;
}

inline Result<nlohmann::json> control(const std::string& socket, const std::string& command) {
  return control::request(socket, {{"command", command}}, 10s);
}

}  // namespace lockferry::faults
