// SPDX-License-Identifier: Apache-2.0
// The per-client failover report; see client_report.h.
#include "failover/client_report.h"

#include <algorithm>

#include "common/clock.h"
#include "common/trusted_dirs.h"

namespace lockferry::failover {

const char* to_string(NotifyState state) {
  switch (state) {
    case NotifyState::unknown:
      return "unknown";
    case NotifyState::notified:
      return "notified";
    case NotifyState::acknowledged:
      return "acknowledged";
    case NotifyState::pending:
      return "pending";
    case NotifyState::unreachable:
      return "unreachable";
  }
  return "?";
}

const char* to_string(ClientOutcome outcome) {
  switch (outcome) {
    case ClientOutcome::reclaimed:
      return "reclaimed";
    case ClientOutcome::different_range:
      return "different_range";
    case ClientOutcome::partly:
      return "partly_reclaimed";
    case ClientOutcome::not_reclaimed:
      return "not_reclaimed";
    case ClientOutcome::no_locks:
      return "no_locks";
  }
  return "?";
}

namespace {

ClientOutcome outcome_of(const ClientFailover& c) {
  if (c.locks == 0) return ClientOutcome::no_locks;
  if (c.reclaimed == c.locks) return ClientOutcome::reclaimed;
  if (c.not_reclaimed == 0) return ClientOutcome::different_range;
  if (c.not_reclaimed == c.locks) return ClientOutcome::not_reclaimed;
  return ClientOutcome::partly;
}

}  // namespace

ClientReport build_client_report(const std::vector<MonitorRecord>& monitored,
                                 const NotifyResults& notify, const AuditReport& audit) {
  std::map<std::string, ClientFailover> rows;
  auto row = [&](const std::string& client) -> ClientFailover& {
    auto& r = rows[client];
    r.client = client;
    return r;
  };
  for (const auto& m : monitored) row(m.mon_name).monitored = true;
  for (const auto& [client, status] : notify) row(client).notify = status;
  for (const auto& [client, counts] : audit.clients) {
    auto& r = row(client);
    r.locks = counts.locks;
    r.reclaimed = counts.reclaimed;
    r.different_range = counts.different_range;
    r.not_reclaimed = counts.not_reclaimed;
  }
  ClientReport report;
  report.clients.reserve(rows.size());
  for (auto& [client, r] : rows) {
    r.outcome = outcome_of(r);
    ++report.outcomes[r.outcome];
    ++report.notifications[r.notify.state];
    report.clients.push_back(std::move(r));
  }
  // The locks no client is named for are not a client: after the named ones.
  if (!report.clients.empty() && report.clients.front().client.empty())
    std::rotate(report.clients.begin(), report.clients.begin() + 1, report.clients.end());
  return report;
}

NotifyResults notify_results(const RecognizeReport& report,
                             const std::vector<MonitorRecord>& records, std::int64_t at_ns) {
  std::map<std::string, std::string> mon_name_of;  // file name in sm/ -> client
  for (const auto& r : records) mon_name_of[r.file_name] = r.mon_name;
  auto client = [&](const std::string& file) {
    auto it = mon_name_of.find(file);
    return it == mon_name_of.end() ? file : it->second;
  };
  NotifyResults out;
  if (!report.clients.empty()) {
    // The built-in notifier says, per client, how far it got and when.
    for (const auto& c : report.clients) {
      switch (c.status) {
        case notify::ClientStatus::acknowledged:
          out[client(c.client)] = {NotifyState::acknowledged, c.acknowledged_ns};
          break;
        case notify::ClientStatus::notified:
          out[client(c.client)] = {NotifyState::notified, c.notified_ns};
          break;
        case notify::ClientStatus::unreachable:
          out[client(c.client)] = {NotifyState::unreachable, at_ns};
          break;
      }
    }
    return out;
  }
  // sm-notify says only who is left in sm.bak/.
  for (const auto& f : report.notified) out[client(f)] = {NotifyState::acknowledged, at_ns};
  for (const auto& f : report.not_notified) out[client(f)] = {NotifyState::pending, at_ns};
  return out;
}

Result<NotifyResults> notify_results_from_sm_bak(const std::string& state_dir,
                                                 const std::vector<MonitorRecord>& records) {
  auto dir = files::open_trusted_directory(state_dir, files::ParentOwners::or_its_owner);
  if (!dir) return make_error("cannot read sm.bak/ of {}: {}", state_dir, dir.error().message);
  const std::int64_t now = clock::now_ns();
  NotifyResults out;
  for (const auto& r : records)
    out[r.mon_name] = {pending_in_sm_bak(dir->get(), r.file_name) ? NotifyState::pending
                                                                  : NotifyState::acknowledged,
                       now};
  return out;
}

Result<FailoverAudit> failover_audit_from_store(store::Store& store, const std::string& from_node,
                                                const std::string& to_node,
                                                const std::string& state_dir) {
  auto locks = audit_from_store(store, from_node, to_node);
  if (!locks) return locks.error();
  auto records = store.list_monitor(from_node);
  if (!records)
    return make_error("cannot read the monitor records of node {} from {}: {}", from_node,
                      store.url(), records.error().message);
  NotifyResults notify;
  std::string source = "unknown: recognition does not notify through sm.bak/";
  if (!state_dir.empty()) {
    if (auto n = notify_results_from_sm_bak(state_dir, *records)) {
      notify = std::move(*n);
      source = "sm.bak/ of " + state_dir;
    } else {
      source = "unknown: " + n.error().message;
    }
  }
  FailoverAudit out{std::move(*locks), {}};
  out.clients = build_client_report(*records, notify, out.locks);
  out.clients.notify_source = std::move(source);
  return out;
}

}  // namespace lockferry::failover
