// SPDX-License-Identifier: Apache-2.0
// Run an external command (sm-notify, systemctl, a user hook) with a hard timeout.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "lockferry/result.h"

namespace lockferry::process {

struct CommandResult {
  int exit_code = -1;      // exit status, or 128+signal when killed by a signal
  bool timed_out = false;  // killed by us after the timeout
  std::string output;      // stdout and stderr interleaved, capped at 64 KiB
};

// Starts argv[0] (searched in PATH), no shell, in its own process group (so a timeout can kill
// whatever it forked too), with stdin on /dev/null, stdout and stderr on `output_fd`, and no
// other descriptor of this process: a command must never hold lockferryd's sockets. Returns its
// pid; the caller waits for it.
Result<pid_t> spawn_command(const std::vector<std::string>& argv, int output_fd);

// Runs argv[0] (searched in PATH) with the given arguments, no shell. The command is killed
// (SIGTERM, then SIGKILL after 2 s) when it outlives `timeout`: sm-notify with -m 0 would
// otherwise retry forever and hang a failover (a reported nfsserver agent failure).
// Fails only when the command could not be started; a non-zero exit is a CommandResult.
Result<CommandResult> run_command(const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout);

// argv joined with spaces, quoting what needs it: for logs and reports.
std::string to_display(const std::vector<std::string>& argv);

}  // namespace lockferry::process
