// SPDX-License-Identifier: Apache-2.0
// The control protocol; see protocol.h.
#include "control/protocol.h"

#include <arpa/inet.h>

#include "common/clock.h"
#include "common/process.h"
#include "common/text.h"

namespace lockferry::control {
namespace {

// statd stores the in-memory s_addr; inet_ntop of the same bytes gives the dotted address.
std::string dotted(std::uint32_t s_addr) {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{s_addr};
  return ::inet_ntop(AF_INET, &a, buf, sizeof buf) ? buf : "";
}

}  // namespace

nlohmann::json ok_response(nlohmann::json result) {
  return {{"ok", true}, {"result", std::move(result)}};
}

nlohmann::json error_response(const std::string& message) {
  return {{"ok", false}, {"error", message}};
}

nlohmann::json to_json(const MonitorRecord& r) {
  return {
      {"node", r.node},
      {"epoch", r.epoch},
      {"file_name", r.file_name},
      {"mon_name", r.mon_name},
      {"my_name", r.my_name},
      {"addr", dotted(r.addr)},
      {"prog", r.prog},
      {"vers", r.vers},
      {"proc", r.proc},
      {"priv", text::to_hex(r.priv)},
      {"first_seen", clock::format_ns(r.first_seen_ns)},
      {"last_seen", clock::format_ns(r.last_seen_ns)},
      {"raw", r.raw},
  };
}

nlohmann::json to_json(const LockRecord& l) {
  return {
      {"node", l.node},
      {"epoch", l.epoch},
      {"manager_comm", l.manager_comm},
      {"manager_pid", l.manager_pid},
      {"dev", fmt::format("{}:{}", l.dev >> 20, l.dev & 0xfffff)},
      {"ino", l.ino},
      {"path", l.path},
      {"start", l.start},
      {"end", l.end == LockRecord::kToEndOfFile ? nlohmann::json(nullptr) : nlohmann::json(l.end)},
      {"type", l.type},
      {"owner", fmt::format("{:#x}", l.owner)},
      {"owner_pid", l.owner_pid},
      {"granted", clock::format_ns(l.granted_ns)},
      {"nlm_host", l.nlm_host},
      {"client_addr", l.client_addr},
      {"server_addr", l.server_addr},
  };
}

nlohmann::json to_json(const store::MigrationRecord& m) {
  return {
      {"from_node", m.from_node},
      {"to_node", m.to_node},
      {"epoch", m.epoch},
      {"started", clock::format_ns(m.started_ns)},
      {"finished", clock::format_ns(m.finished_ns)},
      {"records", m.records},
      {"service_ip", m.service_ip},
      {"recognize", m.recognize_method},
      {"result", m.result},
  };
}

nlohmann::json to_json(const failover::AuditReport& r) {
  nlohmann::json locks = nlohmann::json::array();
  for (const auto& e : r.entries) {
    nlohmann::json j{{"status", failover::to_string(e.status)},
                     {"client", e.client},
                     {"client_addr", e.old_lock.client_addr},
                     {"server_addr", e.old_lock.server_addr},
                     {"path", e.path},
                     {"start", e.old_lock.start},
                     {"end", e.old_lock.end},
                     {"type", e.old_lock.type}};
    if (e.now) j["now"] = {{"start", e.now->start}, {"end", e.now->end}, {"type", e.now->type}};
    locks.push_back(std::move(j));
  }
  nlohmann::json clients = nlohmann::json::object();
  for (const auto& [client, c] : r.clients) {
    clients[client.empty() ? "(not named by the lock table)" : client] = {
        {"locks", c.locks},
        {"reclaimed", c.reclaimed},
        {"different_range", c.different_range},
        {"not_reclaimed", c.not_reclaimed}};
  }
  nlohmann::json unmatched = nlohmann::json::array();
  for (const auto& l : r.unmatched)
    unmatched.push_back({{"path", l.path}, {"start", l.start}, {"end", l.end}, {"type", l.type}});
  return {{"from_node", r.from_node},
          {"to_node", r.to_node},
          {"at", clock::format_ns(r.at_ns)},
          {"locks_held_before", r.locks},
          {"reclaimed", r.reclaimed},
          {"different_range", r.different_range},
          {"not_reclaimed", r.not_reclaimed},
          {"percent_reclaimed", r.percent_reclaimed()},
          {"clients", clients},
          {"locks", locks},
          {"unmatched", unmatched}};
}

nlohmann::json to_json(const notify::ClientResult& c) {
  auto at = [](std::int64_t ns) {
    return ns ? nlohmann::json(clock::format_ns(ns)) : nlohmann::json();
  };
  return {{"client", c.client},
          {"address", c.address},
          {"status", notify::to_string(c.status)},
          {"statd_port", c.statd_port},
          {"attempts", c.attempts},
          {"notified", at(c.notified_ns)},
          {"acknowledged", at(c.acknowledged_ns)},
          {"error", c.error}};
}

nlohmann::json to_json(const failover::ClientReport& r) {
  nlohmann::json clients = nlohmann::json::array();
  for (const auto& c : r.clients)
    clients.push_back({{"client", c.client},
                       {"monitored", c.monitored},
                       {"notify", failover::to_string(c.notify.state)},
                       {"notify_at", c.notify.at_ns ? clock::format_ns(c.notify.at_ns) : ""},
                       {"locks_held_before", c.locks},
                       {"reclaimed", c.reclaimed},
                       {"different_range", c.different_range},
                       {"not_reclaimed", c.not_reclaimed},
                       {"outcome", failover::to_string(c.outcome)}});
  nlohmann::json outcomes = nlohmann::json::object();
  for (const auto& [o, n] : r.outcomes) outcomes[failover::to_string(o)] = n;
  nlohmann::json notifications = nlohmann::json::object();
  for (const auto& [state, n] : r.notifications) notifications[failover::to_string(state)] = n;
  return {{"notify_source", r.notify_source},
          {"clients", clients},
          {"outcomes", outcomes},
          {"notifications", notifications}};
}

nlohmann::json to_json(const failover::FailoverAudit& a) {
  nlohmann::json j = to_json(a.locks);
  j["client_report"] = to_json(a.clients);
  return j;
}

nlohmann::json to_json(const failover::MigrateReport& r) {
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& e : r.replay.entries) {
    nlohmann::json j{{"file_name", e.file_name}, {"mon_name", e.mon_name}, {"action", e.action}};
    if (!e.reason.empty()) j["reason"] = e.reason;
    entries.push_back(std::move(j));
  }
  nlohmann::json clients = nlohmann::json::array();
  for (const auto& c : r.recognize.clients) clients.push_back(to_json(c));
  nlohmann::json commands = nlohmann::json::array();
  for (const auto& c : r.recognize.commands) {
    commands.push_back({{"command", process::to_display(c.argv)},
                        {"exit_code", c.exit_code},
                        {"timed_out", c.timed_out},
                        {"output", c.output}});
  }
  return {
      {"ok", r.ok},
      {"message", r.message},
      {"from_node", r.from_node},
      {"to_node", r.to_node},
      {"epoch", r.epoch},
      {"repeated", r.repeated},
      {"records", r.records},
      {"left_out", r.left_out},
      {"takeover", r.takeover ? nlohmann::json{{"command", process::to_display(r.takeover->argv)},
                                               {"exit_code", r.takeover->exit_code},
                                               {"timed_out", r.takeover->timed_out},
                                               {"output", r.takeover->output}}
                              : nlohmann::json()},
      {"replay",
       {{"statmon_dir", r.replay.statmon_dir},
        {"written", r.replay.written},
        {"unchanged", r.replay.unchanged},
        {"refused", r.replay.refused},
        {"entries", entries}}},
      {"recognize",
       {{"method", failover::to_string(r.recognize.method)},
        {"ok", r.recognize.ok},
        {"message", r.recognize.message},
        {"commands", commands},
        {"notified", r.recognize.notified},
        {"not_notified", r.recognize.not_notified},
        {"nsm_state", r.recognize.nsm_state},
        {"clients", clients}}},
      {"client_report", to_json(r.clients)},
      {"started", clock::format_ns(r.started_ns)},
      {"finished", clock::format_ns(r.finished_ns)},
      {"duration_ms",
       r.finished_ns > r.started_ns ? (r.finished_ns - r.started_ns) / 1'000'000 : 0},
  };
}

}  // namespace lockferry::control

namespace lockferry::control {

nlohmann::json to_json(const MigrateRequest& r) {
  nlohmann::json request{{"command", "migrate"},     {"from", r.from},
                         {"dry_run", r.dry_run},     {"force", r.force},
                         {"timeout_s", r.timeout_s}, {"retry_minutes", r.retry_minutes}};
  if (!r.node.empty()) request["node"] = r.node;
  if (!r.statmon_dir.empty()) request["statmon_dir"] = r.statmon_dir;
  if (!r.service_ip.empty()) request["service_ip"] = r.service_ip;
  if (!r.recognize.empty()) request["recognize"] = r.recognize;
  if (!r.state_dir.empty()) request["state_dir"] = r.state_dir;
  if (!r.command.empty()) request["command_argv"] = r.command;
  return request;
}

Result<failover::MigrateOptions> migrate_options(const nlohmann::json& request,
                                                 const failover::MigrateOptions& defaults) {
  failover::MigrateOptions o = defaults;
  // A field of the wrong type is an error, not the default: a mistyped statmon_dir must not
  // quietly replay into /var/lib/nfs/sm instead.
  std::string mistyped;
  auto str = [&](const char* key, const std::string& fallback) {
    auto it = request.find(key);
    if (it == request.end() || it->is_null()) return fallback;
    if (!it->is_string()) {
      if (mistyped.empty()) mistyped = key;
      return fallback;
    }
    return it->get<std::string>().empty() ? fallback : it->get<std::string>();
  };
  for (const char* key : {"timeout_s", "retry_minutes"}) {
    if (auto it = request.find(key);
        it != request.end() && !it->is_null() && !it->is_number_integer())
      return make_error("migrate: '{}' must be a whole number, not {}", key, it->dump());
  }
  o.from_node = str("from", "");
  if (o.from_node.empty()) return make_error("migrate: which node to adopt? (--from NODE)");
  o.to_node = str("node", defaults.to_node);
  o.statmon_dir = str("statmon_dir", defaults.statmon_dir);
  o.recognize.service_ip = str("service_ip", defaults.recognize.service_ip);
  // Named in the request (not the configured default): replay only that address's clients.
  o.only_service_ip = str("service_ip", "");
  o.recognize.state_dir = str("state_dir", defaults.recognize.state_dir);
  if (const std::string method = str("recognize", ""); !method.empty()) {
    auto parsed = failover::recognize_method_from_string(method);
    if (!parsed) return parsed.error();
    o.recognize.method = *parsed;
  }
  if (auto it = request.find("command_argv"); it != request.end() && it->is_array()) {
    o.recognize.command.clear();
    for (const auto& a : *it) o.recognize.command.push_back(a.get<std::string>());
  }
  if (auto it = request.find("timeout_s"); it != request.end() && it->is_number_integer()) {
    auto t = it->get<std::int64_t>();
    if (t < 1 || t > 3600) return make_error("migrate: timeout must be 1..3600 seconds, not {}", t);
    o.recognize.timeout = std::chrono::seconds(t);
  }
  if (auto it = request.find("retry_minutes"); it != request.end() && it->is_number_integer())
    o.recognize.sm_notify_retry_minutes = it->get<int>();
  if (!mistyped.empty()) return make_error("migrate: '{}' must be a string", mistyped);
  o.dry_run = request.value("dry_run", false);
  o.force = request.value("force", false);
  o.adopt_unknown = o.force;  // --force: also a node with nothing stored, on purpose
  if (o.statmon_dir.empty() || o.statmon_dir[0] != '/')
    return make_error("migrate: the statd monitor directory must be an absolute path, not '{}'",
                      o.statmon_dir);
  return o;
}

}  // namespace lockferry::control
