// SPDX-License-Identifier: Apache-2.0
// Run an external command with a hard timeout; see process.h.
#include "common/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "common/files.h"

extern char** environ;

namespace lockferry::process {
namespace {

using files::Fd;

constexpr std::size_t kMaxOutput = 64 * 1024;

int wait_status_to_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

#if !(defined(__GLIBC__) && __GLIBC_PREREQ(2, 34))
// Without posix_spawn_file_actions_addclosefrom_np (glibc < 2.34, e.g. RHEL 8): mark every
// descriptor above stderr close-on-exec before spawning. lockferryd opens all of its own with
// O_CLOEXEC; this catches what a library opened without it (racy against other threads opening
// descriptors meanwhile, which is why the closefrom action is preferred).
void mark_inherited_cloexec() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return;
  const int own = ::dirfd(dir);
  while (const dirent* entry = ::readdir(dir)) {
    const int fd = std::atoi(entry->d_name);
    if (fd > STDERR_FILENO && fd != own) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  ::closedir(dir);
}
#endif

}  // namespace

std::string to_display(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !arg.empty() && arg.find_first_of(" \t\n'\"\\$*?") == std::string::npos;
    out += plain ? arg : "'" + arg + "'";
  }
  return out;
}

Result<pid_t> spawn_command(const std::vector<std::string>& argv, int output_fd) {
  if (argv.empty()) return make_error("spawn_command: empty command");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, output_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, output_fd, STDERR_FILENO);
  // Only stdin, stdout and stderr: a command that inherited the heartbeat, metrics or control
  // socket would keep its address bound after lockferryd died, and the restarted lockferryd could
  // not bind it again (systemd's Restart= then fails for as long as the command lives).
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
#else
  mark_inherited_cloexec();
#endif
  posix_spawnattr_t attr;  // its own process group, for the kill on timeout
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return make_errno_error(rc, "cannot start {}", to_display(argv));
  return pid;
}

Result<CommandResult> run_command(const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout) {
  if (argv.empty()) return make_error("run_command: empty command");
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return make_errno_error(errno, "pipe for {}", argv[0]);
  Fd read_end(pipe_fds[0]);
  Fd write_end(pipe_fds[1]);

  auto spawned = spawn_command(argv, write_end.get());
  write_end.close();
  if (!spawned) return spawned.error();
  const pid_t pid = *spawned;

  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto kill_deadline = std::chrono::steady_clock::time_point::max();
  bool open = true;
  char buf[4096];
  while (open) {
    auto now = std::chrono::steady_clock::now();
    if (!result.timed_out && now >= deadline) {
      result.timed_out = true;
      ::kill(-pid, SIGTERM);
      kill_deadline = now + std::chrono::seconds(2);
    }
    if (result.timed_out && now >= kill_deadline) {
      ::kill(-pid, SIGKILL);
      break;
    }
    auto until = result.timed_out ? kill_deadline : deadline;
    int wait_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count() + 1);
    pollfd pfd{read_end.get(), POLLIN, 0};
    int n = ::poll(&pfd, 1, wait_ms);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    ssize_t got = ::read(read_end.get(), buf, sizeof buf);
    if (got > 0) {
      result.output.append(
          buf, std::min<std::size_t>(got, kMaxOutput - std::min(kMaxOutput, result.output.size())));
    } else if (got == 0 || errno != EINTR) {
      open = false;  // every writer closed: the command (and its children) are done with output
    }
  }
  int status = 0;
  // The output closed; the process may still be exiting. Respect the remaining timeout.
  while (true) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return make_errno_error(errno, "waitpid for {}", argv[0]);
    if (std::chrono::steady_clock::now() >= deadline && !result.timed_out) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
    }
    ::usleep(10 * 1000);
  }
  result.exit_code = wait_status_to_code(status);
  return result;
}

}  // namespace lockferry::process
