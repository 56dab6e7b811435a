// SPDX-License-Identifier: Apache-2.0
// The asynchronous health check command; see check_command.h.
#include "health/check_command.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace lockferry::health {
namespace {

constexpr std::size_t kMaxOutput = 4096;  // for logs: the first lines say why a check failed

int wait_status_to_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

const char* to_string(CheckVerdict verdict) {
  switch (verdict) {
    case CheckVerdict::serving:
      return "serving";
    case CheckVerdict::standby:
      return "standby";
    case CheckVerdict::failed:
      return "failed";
  }
  return "?";
}

CheckVerdict verdict_of(const process::CommandResult& r) {
  if (r.timed_out) return CheckVerdict::failed;
  if (r.exit_code == 0) return CheckVerdict::serving;
  if (r.exit_code == 7) return CheckVerdict::standby;
  return CheckVerdict::failed;
}

CheckCommand::CheckCommand(boost::asio::io_context& io, std::vector<std::string> argv,
                           std::chrono::milliseconds timeout)
    : io_(io), argv_(std::move(argv)), timeout_(timeout), timer_(io) {}

CheckCommand::~CheckCommand() { stop(); }

Result<void> CheckCommand::start(Done done) {
  if (running()) return make_error("health check {} is still running", process::to_display(argv_));
  if (argv_.empty()) return make_error("health check command is empty");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    return make_errno_error(errno, "pipe for health check {}", argv_[0]);

  auto spawned = process::spawn_command(argv_, fds[1]);
  ::close(fds[1]);
  if (!spawned) {
    ::close(fds[0]);
    return make_error("health check: {}", spawned.error().message);
  }
  const pid_t pid = *spawned;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    int err = errno;
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(fds[0]);
    return make_errno_error(err, "pidfd_open for health check {} (Linux 5.3 or later needed)",
                            process::to_display(argv_));
  }
  pid_ = pid;
  ++generation_;
  result_ = process::CommandResult{};
  done_ = std::move(done);
  output_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, fds[0]);
  pidfd_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, pidfd);

  const auto generation = generation_;
  read_output();
  pidfd_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [this, generation](boost::system::error_code ec) {
                       if (ec == boost::asio::error::operation_aborted) return;
                       if (generation == generation_ && running()) finish();
                     });
  timer_.expires_after(timeout_);
  timer_.async_wait([this, generation](boost::system::error_code ec) {
    if (ec || generation != generation_ || !running()) return;
    result_.timed_out = true;
    ::kill(-pid_, SIGKILL);  // pid_ > 0 here: our own child's group; the pidfd then fires
  });
  return {};
}

void CheckCommand::read_output() {
  const auto generation = generation_;
  output_->async_read_some(boost::asio::buffer(buffer_),
                           [this, generation](boost::system::error_code ec, std::size_t n) {
                             if (ec == boost::asio::error::operation_aborted) return;
                             if (ec || generation != generation_ || !output_) return;
                             if (result_.output.size() < kMaxOutput)
                               result_.output.append(
                                   buffer_.data(), std::min(n, kMaxOutput - result_.output.size()));
                             read_output();
                           });
}

void CheckCommand::finish() {
  int status = 0;
  pid_t w;
  do {
    w = ::waitpid(pid_, &status, 0);  // the pidfd said it exited: this does not block
  } while (w < 0 && errno == EINTR);
  result_.exit_code = w == pid_ ? wait_status_to_code(status) : -1;
  // Whatever the command wrote just before exiting.
  ssize_t n;
  while (result_.output.size() < kMaxOutput &&
         (n = ::read(output_->native_handle(), buffer_.data(), buffer_.size())) > 0)
    result_.output.append(
        buffer_.data(), std::min(static_cast<std::size_t>(n), kMaxOutput - result_.output.size()));
  pid_ = -1;
  ++generation_;
  timer_.cancel();
  boost::system::error_code ignored;
  output_->close(ignored);
  pidfd_->close(ignored);
  auto done = std::move(done_);
  done_ = nullptr;
  if (done) done(result_);
}

void CheckCommand::stop() {
  if (!running()) return;
  ::kill(-pid_, SIGKILL);  // pid_ > 0: only ever our own child's process group
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  ++generation_;
  timer_.cancel();
  boost::system::error_code ignored;
  if (output_) output_->close(ignored);
  if (pidfd_) pidfd_->close(ignored);
  done_ = nullptr;
}

}  // namespace lockferry::health
