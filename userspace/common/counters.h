// SPDX-License-Identifier: Apache-2.0
// Every counter lockferryd reports, named once. One table per group gives each counter its name
// (its key in `lockferry status --json` and the word in its Prometheus family), kind, help text
// and the words `lockferry status` prints after its value; the status JSON, /metrics and the
// CLI's rows are all produced from these tables, so one counter cannot have two names. The
// tables are plain data (no capture, store or BPF types): the CLI renders the daemon's JSON with
// them, and the daemon binds its structs' values to them in table order (daemon/counter_values.h).
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <iterator>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lockferry::counters {

enum class Kind {
  counter,  // only grows: Prometheus family ends in _total
  gauge,    // a value now
};

// How the status JSON value relates to Prometheus's base unit (seconds).
enum class Unit { none, milliseconds, microseconds };

struct Counter {
  std::string_view name;  // JSON key; Prometheus family lockferry_<prefix><name>[_total]
  Kind kind;
  std::string_view help;   // Prometheus HELP
  std::string_view shown;  // `lockferry status`: "<value> <shown>"; empty: not on the row
  // The Prometheus family (without "lockferry_" and "_total") where dashboards already know it
  // by another name than the derived one; empty: derived.
  std::string_view metric = {};
  Unit unit = Unit::none;
};

struct Group {
  std::string_view prefix;  // of the Prometheus families: lockferry_<prefix><name>
  std::span<const Counter> counters;
  // Non-empty: the group is one Prometheus family lockferry_<prefix>total, one sample per
  // counter labelled <label>="<name>", with `help` as its HELP.
  std::string_view label = {};
  std::string_view help = {};
};

// The values of one group, in the order of its table.
using Values = std::vector<std::uint64_t>;

// The monitor capture (status "capture").
inline constexpr Counter kCaptureCounters[] = {
    {"hits", Kind::counter,
     "Syscalls on a watched monitor directory seen by the capture (BPF: after in-kernel filters).",
     "hits"},
    {"emits", Kind::counter, "Capture events delivered to lockferryd.", "emitted"},
    {"drops", Kind::counter,
     "Capture events lost (ring buffer full, queue overflow); each triggers a reconcile scan.",
     "dropped"},
    {"changes", Kind::counter, "Monitor file changes handed to the recorder.", "changes"},
};
inline constexpr Group kCapture{"events_", kCaptureCounters};

// The monitor recorder (status "records").
inline constexpr Counter kRecordsCounters[] = {
    {"written", Kind::counter, "Monitor records written to the store.", "written"},
    {"deleted", Kind::counter, "Monitor records deleted from the store.", "deleted"},
    {"bad", Kind::counter,
     "Files in the monitor directory that are not valid statd records (kept out of the store).",
     "bad files ignored"},
    {"store_errors", Kind::counter, "Store writes that failed or were refused.", "store errors",
     "store_errors"},
};
inline constexpr Group kRecords{"records_", kRecordsCounters};

// The monitor directories' reconcile scans (status "reconcile").
inline constexpr Counter kReconcileCounters[] = {
    {"runs", Kind::counter, "Full scans of the monitor directories against the store.", "runs"},
    {"repairs", Kind::counter,
     "Differences reconcile scans found and fixed (each one an event capture missed).", "repairs"},
};
inline constexpr Group kReconcile{"reconcile_", kReconcileCounters};

// The lock capture's events (status "locks").
inline constexpr Counter kLockEventsCounters[] = {
    {"hits", Kind::counter, "Lock operations by lock manager processes seen by the lock capture.",
     "lock operations"},
    {"grants", Kind::counter, "Lock grants the kernel side emitted.", "grants"},
    {"releases", Kind::counter, "Lock releases the kernel side emitted.", "releases"},
    {"refused", Kind::counter,
     "Lock operations not granted (conflict, deferred) or only tested: nothing to record.",
     "refused"},
    {"drops", Kind::counter,
     "Lock events lost (ring buffer full); each burst triggers a reconcile with the kernel's "
     "locks.",
     "dropped"},
    {"changes", Kind::counter, "Lock grants and releases handed to the lock recorder.", ""},
    {"path_truncated", Kind::counter,
     "Lock paths recorded cut short (deeper than the capture reads, or disconnected).", ""},
    {"other_netns", Kind::counter,
     "Lock events of another network namespace (another NFS server sharing this kernel), not "
     "recorded.",
     "of another network namespace"},
};
inline constexpr Group kLockEvents{"lock_events_", kLockEventsCounters};

// Processes named like a lock manager that are not one (status "locks"."impostors").
inline constexpr Counter kLockImpostorsCounters[] = {
    {"processes", Kind::counter,
     "Processes named like a lock manager that are not one (not root from a manager binary, "
     "not a kernel thread): their locks are not recorded.",
     "process(es) named like a lock manager but not one", "lock_manager_impostors"},
    {"refused_in_kernel", Kind::counter,
     "Times the kernel side refused a process that took a lock manager's name without being root.",
     "refused in the kernel"},
    {"events_ignored", Kind::counter,
     "Lock events of processes named like a lock manager that are not one, ignored.",
     "of their lock events ignored", "lock_manager_impostor_events"},
};
inline constexpr Group kLockImpostors{"lock_manager_impostors_", kLockImpostorsCounters};

// The lock table's reconciles with the kernel's locks (status "locks"."reconcile").
inline constexpr Counter kLockReconcileCounters[] = {
    {"runs", Kind::counter,
     "Reconciles of the lock table with the lock managers' kernel locks (timer and drops).",
     "runs"},
    {"after_drops", Kind::counter, "Reconciles of the lock table started by dropped lock events.",
     "after drops", "lock_reconcile_runs_after_drops"},
    {"repairs", Kind::counter,
     "Lock ranges reconciles added or removed (each one a lock event capture missed).", "repairs"},
    {"provisional", Kind::counter,
     "Lock owners reconciles had to make up (owner never seen in an event).", "provisional owners"},
    {"kernel_locks", Kind::gauge, "Kernel locks of the lock managers in the last snapshot.",
     "kernel locks in the last snapshot", "lock_reconcile_last_kernel_locks"},
    {"took_us", Kind::gauge, "How long reading the last kernel lock snapshot took.",
     "us to read it", "lock_reconcile_last_duration_seconds", Unit::microseconds},
};
inline constexpr Group kLockReconcile{"lock_reconcile_", kLockReconcileCounters};

// This node's lock table and its writes (status "locks").
inline constexpr Counter kLockTableCounters[] = {
    {"held", Kind::gauge, "Lock ranges in this node's lock table.", "locks held", "locks_held"},
    {"tables_written", Kind::counter, "Lock tables written to the store.", "tables written"},
    {"forgotten", Kind::counter,
     "Lock ranges forgotten because their lock manager process went away.", "forgotten"},
    {"store_errors", Kind::counter, "Lock table writes that failed or were refused.",
     "store errors"},
};
inline constexpr Group kLockTable{"lock_", kLockTableCounters};

// The health agent's heartbeats (status "health"."counters").
inline constexpr Counter kHeartbeatsCounters[] = {
    {"sent", Kind::counter, "Heartbeat datagrams sent to peers.", "sent"},
    {"send_errors", Kind::counter, "Heartbeats that could not be sent.", "send errors"},
    {"leaving_sent", Kind::counter, "\"Leaving\" heartbeats sent when this node stopped.", ""},
    {"received", Kind::counter, "Datagrams read from the heartbeat port.", "received"},
    {"accepted", Kind::counter, "Authentic, fresh heartbeats from peers.", "accepted"},
    {"max_send_gap_ms", Kind::gauge,
     "Longest time between two heartbeats this node sent (peers declare it dead after "
     "dead_after_ms).",
     "ms longest gap between two sent", "heartbeat_max_send_gap_seconds", Unit::milliseconds},
    {"late_sends", Kind::counter,
     "Heartbeats sent more than dead_after_ms/2 after the previous one (this node was starved).",
     "late (over half of dead_after)", "heartbeat_late_sends"},
};
inline constexpr Group kHeartbeats{"heartbeats_", kHeartbeatsCounters};

// Datagrams at the heartbeat port that changed nothing, by why (status "health"."counters").
inline constexpr Counter kHeartbeatsDroppedCounters[] = {
    {"malformed", Kind::counter, "Not a heartbeat.", "malformed"},
    {"unknown_node", Kind::counter, "From a node that is not a peer.", "from unknown nodes"},
    {"wrong_source", Kind::counter, "A peer's name from another address (before the HMAC).",
     "from a wrong address"},
    {"rate_limited", Kind::counter, "Over the per-peer or global rate (before the HMAC).",
     "over the rate limit"},
    {"forged", Kind::counter, "Failed the HMAC.", "forged"},
    {"replayed", Kind::counter, "Seen before, or outside the time window.", "replayed or stale"},
};
inline constexpr Group kHeartbeatsDropped{
    "heartbeats_dropped_", kHeartbeatsDroppedCounters, "reason",
    "Datagrams at the heartbeat port that changed nothing, by why (a flood shows as "
    "wrong_source and rate_limited: dropped before their HMAC)."};

// The local health check (status "health"."counters").
inline constexpr Counter kHealthChecksCounters[] = {
    {"checks", Kind::counter, "Local health checks run.", "checks"},
    {"check_failures", Kind::counter, "Local health checks that failed.", "failed"},
};
inline constexpr Group kHealthChecks{"health_", kHealthChecksCounters};

// The control socket (status "control").
inline constexpr Counter kControlCounters[] = {
    {"open", Kind::gauge, "Control connections open now.", "open"},
    {"accepted", Kind::counter, "Control connections accepted.", "accepted"},
    {"refused_full", Kind::counter,
     "Control connections closed at once: every slot taken by busy clients.", "refused (full)"},
    {"refused_per_process", Kind::counter,
     "Control connections closed at once: that process has too many.", "refused (per process)"},
    {"evicted_idle", Kind::counter,
     "Control connections still waiting for their request when room was needed, closed.",
     "evicted"},
    {"timed_out", Kind::counter,
     "Control connections too slow to send the request or read the answer.", "timed out"},
    {"accept_errors", Kind::counter,
     "Failed accepts on the control socket (EMFILE and the like; retried).", "accept errors"},
};
inline constexpr Group kControl{"control_", kControlCounters};

// The per-client report of this node's latest adoption, at the end of its grace period
// (failover/client_report.h): how many clients ended how.
inline constexpr Counter kFailoverClientsCounters[] = {
    {"reclaimed", Kind::gauge, "Clients of the latest adopted node that reclaimed every lock.",
     "reclaimed"},
    {"different_range", Kind::gauge,
     "Clients of the latest adopted node whose locks all came back, some with another range.",
     "with a different range"},
    {"partly_reclaimed", Kind::gauge,
     "Clients of the latest adopted node that reclaimed some of their locks, not all.", "partly"},
    {"not_reclaimed", Kind::gauge,
     "Clients of the latest adopted node that reclaimed none of their locks.", "NOT reclaimed"},
    {"no_locks", Kind::gauge, "Clients of the latest adopted node that held no lock.",
     "without locks"},
};
inline constexpr Group kFailoverClients{"failover_clients_", kFailoverClientsCounters};

// ... and how they were told (SM_NOTIFY).
inline constexpr Counter kFailoverNotifyCounters[] = {
    {"acknowledged", Kind::gauge, "Clients of the latest adopted node that acknowledged SM_NOTIFY.",
     "acknowledged"},
    {"notified", Kind::gauge,
     "Clients of the latest adopted node sent SM_NOTIFY without a known answer.", "notified"},
    {"pending", Kind::gauge, "Clients of the latest adopted node still to be notified (sm.bak/).",
     "pending"},
    {"unreachable", Kind::gauge, "Clients of the latest adopted node that could not be reached.",
     "unreachable"},
    {"unknown", Kind::gauge,
     "Clients of the latest adopted node whose notification is not known (not monitored).",
     "unknown"},
};
inline constexpr Group kFailoverNotify{"failover_clients_notify_", kFailoverNotifyCounters};

// `values` in table order as a JSON object's members: added to `into` (an object).
void add_json(nlohmann::json& into, const Group& group, const Values& values);
nlohmann::json to_json(const Group& group, const Values& values);

// A `lockferry status` row from a status JSON object holding the group's counters: "120 hits,
// 40 emitted, 2 dropped, 5 changes". Counters the object lacks (an older lockferryd) are left out.
std::string row(const Group& group, const nlohmann::json& object);

// The Prometheus family of one counter: lockferry_<prefix><name>, or its established name, with
// _total for a counter.
std::string metric_name(const Group& group, const Counter& counter);

// The Prometheus text exposition format (version 0.0.4), written once here for every family.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(text_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }
  template <typename V>
  void sample(std::string_view name, std::string_view labels, V value) {
    if (labels.empty())
      fmt::format_to(std::back_inserter(text_), "{} {}\n", name, value);
    else
      fmt::format_to(std::back_inserter(text_), "{}{{{}}} {}\n", name, labels, value);
  }
  template <typename V>
  void one(std::string_view name, std::string_view type, std::string_view help, V value,
           std::string_view labels = {}) {
    family(name, type, help);
    sample(name, labels, value);
  }
  // Every counter of `group`, from its table: one family each, or one labelled family.
  void group(const Group& group, const Values& values);
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

// A label value escaped as the exposition format wants (backslash, double quote, new line).
std::string label_value(std::string_view value);

}  // namespace lockferry::counters
