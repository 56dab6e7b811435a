// SPDX-License-Identifier: Apache-2.0
// What a holding lf-nlm-client owns and has heard, written as JSON to --state FILE on every
// change so test harnesses can poll it (and as one-line JSON events on stdout).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lockferry/result.h"
#include "nlm_client/nlm_session.h"
#include "nlm_client/nsm_listener.h"

namespace lockferry::tools {

struct HeldLock {
  LockRange range;
  std::string status;      // "held", "reclaimed" or "lost"
  std::string nlm_status;  // the last NLM answer for it ("granted", "denied_grace_period", ...)
  std::string error;       // why it was lost when the server never answered
};

struct ClientState {
  std::string name;  // caller_name
  std::string server;
  std::string export_path;
  LockOwner owner;
  int pid = 0;
  std::vector<HeldLock> locks;
  std::vector<Notification> notifications;
  int reclaims_completed = 0;
};

// RFC 3339 UTC with milliseconds.
std::string format_time(std::chrono::system_clock::time_point t);

nlohmann::json range_json(const LockRange& r);
nlohmann::json notification_json(const Notification& n);
nlohmann::json state_json(const ClientState& s);

// Replaces `path` atomically (temp file + rename), so a reader never sees half a document.
Result<void> write_state_file(const std::string& path, const ClientState& s);

}  // namespace lockferry::tools
