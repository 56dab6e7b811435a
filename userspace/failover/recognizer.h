// SPDX-License-Identifier: Apache-2.0
// Recognizer: makes the adoptive server act on replayed monitor records, so clients learn that
// the server "rebooted" and reclaim their locks (sm-notify, a restart, or a Ganesha grace period).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/process.h"
#include "lockferry/result.h"
#include "notify/client_result.h"

namespace lockferry::failover {

// notify: the built-in SM_NOTIFY sender (userspace/notify), sm-notify's job for the replayed
// clients, all at once, with a result per client.
enum class RecognizeMethod {
  sm_notify,
  notify,
  restart_statd,
  restart_nfs,
  ganesha_grace,
  command,
  none
};
const char* to_string(RecognizeMethod method);
Result<RecognizeMethod> recognize_method_from_string(std::string_view text);

struct RecognizeOptions {
  RecognizeMethod method = RecognizeMethod::sm_notify;
  std::string service_ip;  // the address clients know; sm-notify sends from and names it (-v)
  std::string state_dir;   // statd's state directory, parent of sm/ and sm.bak/ (sm-notify -P)
  std::chrono::seconds timeout{60};  // hard limit for each command; the notify method's deadline
  int sm_notify_retry_minutes = 1;   // sm-notify -m: a dead client must not hang the failover
  // Overrides the default command of the method (required for `command`). "{service_ip}" and
  // "{state_dir}" in any argument are replaced.
  std::vector<std::string> command;
  // The records just replayed (file names in sm/): used to tell who acknowledged the notify.
  std::vector<std::string> clients;
  // Their mon_names, by index: the built-in notifier's fallback for a file name that does not
  // resolve.
  std::vector<std::string> mon_names;
  bool dry_run = false;
};

struct CommandRun {
  std::vector<std::string> argv;
  int exit_code = -1;
  bool timed_out = false;
  std::string output;
};

struct RecognizeReport {
  RecognizeMethod method = RecognizeMethod::sm_notify;
  std::vector<CommandRun> commands;
  std::vector<std::string> notified;      // sm-notify: clients that acknowledged SM_NOTIFY
  std::vector<std::string> not_notified;  // sm-notify: clients still pending in sm.bak/
  // notify: what happened to each client (notified, acknowledged, unreachable, with times).
  std::vector<notify::ClientResult> clients;
  std::int32_t nsm_state = 0;  // notify: the NSM state sent
  bool ok = false;
  std::string message;
};

// The commands the method runs, with placeholders filled (shown by --dry-run and in reports).
std::vector<std::vector<std::string>> recognize_commands(const RecognizeOptions& options);

// Whether sm-notify left `client` (its file name in sm/) in sm.bak/ of the state directory open
// as `state_dir`: it has not acknowledged SM_NOTIFY. No link is followed (statd's user owns the
// directory and could point sm.bak anywhere).
bool pending_in_sm_bak(int state_dir, const std::string& client);

// Runs them in order, each with the timeout; stops at the first failure. Never throws; a
// command that fails or times out gives ok=false with the reason in message.
RecognizeReport recognize(const RecognizeOptions& options);

}  // namespace lockferry::failover
