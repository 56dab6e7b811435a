// SPDX-License-Identifier: Apache-2.0
// JSON form of the client's state and its atomic state file (see client_state.h).
#include "nlm_client/client_state.h"

#include <filesystem>

#include "common/clock.h"
#include "common/files.h"

namespace lockferry::tools {

std::string format_time(std::chrono::system_clock::time_point t) {
  return clock::format_ns(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

nlohmann::json range_json(const LockRange& r) {
  return {{"file", r.file}, {"start", r.start}, {"len", r.len}, {"exclusive", r.exclusive}};
}

nlohmann::json notification_json(const Notification& n) {
  return {
      {"mon_name", n.mon_name}, {"state", n.state}, {"from", n.from}, {"at", format_time(n.at)}};
}

nlohmann::json state_json(const ClientState& s) {
  nlohmann::json locks = nlohmann::json::array();
  for (const auto& l : s.locks) {
    auto j = range_json(l.range);
    j["status"] = l.status;
    j["nlm_status"] = l.nlm_status;
    if (!l.error.empty()) j["error"] = l.error;
    locks.push_back(std::move(j));
  }
  nlohmann::json notes = nlohmann::json::array();
  for (const auto& n : s.notifications) notes.push_back(notification_json(n));
  return {{"name", s.name},
          {"server", s.server},
          {"export", s.export_path},
          {"pid", s.pid},
          {"owner", s.owner.oh},
          {"svid", s.owner.svid},
          {"locks", std::move(locks)},
          {"notifications", std::move(notes)},
          {"reclaims_completed", s.reclaims_completed}};
}

Result<void> write_state_file(const std::string& path, const ClientState& s) {
  const std::filesystem::path p(path);
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  return files::write_file_atomically(dir, p.filename().string(), state_json(s).dump(2) + "\n",
                                      0644, std::nullopt, /*fsync_dir=*/false);
}

}  // namespace lockferry::tools
