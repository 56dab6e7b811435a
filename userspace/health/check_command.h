// SPDX-License-Identifier: Apache-2.0
// The local health check: an operator's command (exit status = health) run on the daemon's
// io_context without blocking it, so heartbeats keep flowing while a check is slow.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/process.h"
#include "lockferry/result.h"

namespace lockferry::health {

// What a check's exit status means. The codes follow the OCF resource agent "monitor" action
// that Pacemaker users already have scripts for: 0 running, 7 not running (cleanly), else failed.
enum class CheckVerdict {
  serving,  // exit 0: this node's NFS service is up and healthy
  standby,  // exit 7: healthy, but the service is not here (a standby node)
  failed,   // anything else, a signal, or the timeout
};
const char* to_string(CheckVerdict verdict);
CheckVerdict verdict_of(const process::CommandResult& result);

// Runs one command at a time, in its own process group (killed whole on timeout), reading its
// output through a pipe and its exit through a pidfd, both on the io_context.
class CheckCommand {
 public:
  using Done = std::function<void(const process::CommandResult&)>;

  CheckCommand(boost::asio::io_context& io, std::vector<std::string> argv,
               std::chrono::milliseconds timeout);
  ~CheckCommand();
  CheckCommand(const CheckCommand&) = delete;
  CheckCommand& operator=(const CheckCommand&) = delete;

  // Starts the command; `done` runs on the io_context when it exited or was killed. Fails when
  // one is still running or it cannot be started (the message names the command).
  Result<void> start(Done done);
  bool running() const { return pid_ > 0; }
  // Kills a running command and reaps it; `done` is not called.
  void stop();

 private:
  void read_output();
  void finish();

  boost::asio::io_context& io_;
  std::vector<std::string> argv_;
  std::chrono::milliseconds timeout_;
  boost::asio::steady_timer timer_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> output_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> pidfd_;
  int pid_ = -1;
  process::CommandResult result_;
  Done done_;
  std::array<char, 1024> buffer_{};
  // Guards completions that outlive a stop() (they check it is still theirs).
  std::uint64_t generation_ = 0;
};

}  // namespace lockferry::health
