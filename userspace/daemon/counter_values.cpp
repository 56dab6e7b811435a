// SPDX-License-Identifier: Apache-2.0
// Struct members bound to the counter tables; see counter_values.h.
#include "daemon/counter_values.h"

namespace lockferry::daemon {
namespace {

// One value per row of `table`, in its order (a row added to a table without its value here, or
// the other way round, does not compile).
template <const auto& table, typename... V>
counters::Values in_table_order(V... values) {
  static_assert(sizeof...(V) == std::size(table), "one value per row of the counter table");
  return {static_cast<std::uint64_t>(values)...};
}

}  // namespace

counters::Values capture_values(const capture::Counters& c) {
  return in_table_order<counters::kCaptureCounters>(c.hits, c.emits, c.drops, c.changes);
}

counters::Values records_values(const record::RecorderStats& r) {
  return in_table_order<counters::kRecordsCounters>(r.records_written, r.records_deleted,
                                                    r.bad_records, r.store_errors);
}

counters::Values reconcile_values(const record::RecorderStats& r) {
  return in_table_order<counters::kReconcileCounters>(r.reconciles, r.reconcile_repairs);
}

counters::Values lock_events_values(const capture::LockCounters& c) {
  return in_table_order<counters::kLockEventsCounters>(c.hits, c.grants, c.releases, c.refused,
                                                       c.drops, c.changes, c.path_truncated,
                                                       c.other_netns_events);
}

counters::Values lock_impostors_values(const capture::LockCounters& c) {
  return in_table_order<counters::kLockImpostorsCounters>(
      c.impostors, c.impostors_refused_in_kernel, c.impostor_events);
}

counters::Values lock_reconcile_values(const capture::LockCounters& c,
                                       const record::LockRecorderStats& r) {
  return in_table_order<counters::kLockReconcileCounters>(
      c.reconciles, c.reconciles_after_drops, r.reconcile_repairs, r.reconcile_provisional,
      c.reconcile_locks, c.reconcile_us);
}

counters::Values lock_table_values(std::size_t held, const record::LockRecorderStats& r) {
  return in_table_order<counters::kLockTableCounters>(held, r.tables_written, r.forgotten,
                                                      r.store_errors);
}

counters::Values heartbeats_values(const health::Counters& c) {
  return in_table_order<counters::kHeartbeatsCounters>(c.sent, c.send_errors, c.leaving_sent,
                                                       c.received, c.accepted, c.max_send_gap_ms,
                                                       c.late_sends);
}

counters::Values heartbeats_dropped_values(const health::Counters& c) {
  return in_table_order<counters::kHeartbeatsDroppedCounters>(
      c.malformed, c.unknown_node, c.wrong_source, c.rate_limited, c.forged, c.replayed);
}

counters::Values health_checks_values(const health::Counters& c) {
  return in_table_order<counters::kHealthChecksCounters>(c.checks, c.check_failures);
}

counters::Values control_values(const control::ControlServer::Counters& c) {
  return in_table_order<counters::kControlCounters>(c.open, c.accepted, c.refused_full,
                                                    c.refused_per_process, c.evicted_idle,
                                                    c.timed_out, c.accept_errors);
}

nlohmann::json health_counters_json(const health::Counters& c) {
  nlohmann::json out = nlohmann::json::object();
  counters::add_json(out, counters::kHeartbeats, heartbeats_values(c));
  counters::add_json(out, counters::kHeartbeatsDropped, heartbeats_dropped_values(c));
  counters::add_json(out, counters::kHealthChecks, health_checks_values(c));
  return out;
}

counters::Values failover_clients_values(const failover::ClientReport& r) {
  using failover::ClientOutcome;
  auto n = [&](ClientOutcome o) {
    auto it = r.outcomes.find(o);
    return it == r.outcomes.end() ? std::size_t{0} : it->second;
  };
  return in_table_order<counters::kFailoverClientsCounters>(
      n(ClientOutcome::reclaimed), n(ClientOutcome::different_range), n(ClientOutcome::partly),
      n(ClientOutcome::not_reclaimed), n(ClientOutcome::no_locks));
}

counters::Values failover_notify_values(const failover::ClientReport& r) {
  using failover::NotifyState;
  auto n = [&](NotifyState s) {
    auto it = r.notifications.find(s);
    return it == r.notifications.end() ? std::size_t{0} : it->second;
  };
  return in_table_order<counters::kFailoverNotifyCounters>(
      n(NotifyState::acknowledged), n(NotifyState::notified), n(NotifyState::pending),
      n(NotifyState::unreachable), n(NotifyState::unknown));
}

}  // namespace lockferry::daemon
