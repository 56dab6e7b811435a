// SPDX-License-Identifier: Apache-2.0
// The per-client failover report: for each NFS client of the old primary, whether it was told of
// the failover (SM_NOTIFY sent, acknowledged) and what became of the locks it held (reclaimed,
// reclaimed with a different range, not reclaimed). It joins the two halves of a failover: the
// notification results (today from sm-notify: its exit status and what it leaves in sm.bak/; a
// built-in notifier's per-client results plug in as the same NotifyResults) and the reclaim
// audit (audit.h). Building it is a pure function; reading its inputs is not.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "failover/audit.h"
#include "failover/recognizer.h"
#include "lockferry/records.h"
#include "lockferry/result.h"
#include "store/store.h"

namespace lockferry::failover {

// What the adoptive server knows of one client's notification.
enum class NotifyState {
  unknown,       // not notified by lockferry (no monitor record, or a method that does not notify)
  notified,      // SM_NOTIFY sent, no answer known (yet)
  acknowledged,  // the client answered SM_NOTIFY
  pending,       // still to be notified: sm-notify gave up or was stopped (left in sm.bak/)
  unreachable,   // the client could not be reached (no route, no statd, refused)
};
const char* to_string(NotifyState state);

struct NotifyStatus {
  NotifyState state = NotifyState::unknown;
  std::int64_t at_ns = 0;  // when it was last known to be so (0: not known)
  bool operator==(const NotifyStatus&) const = default;
};

// Per client (mon_name, as in the monitor record and the NLM caller_name).
using NotifyResults = std::map<std::string, NotifyStatus>;

// What became of one client's locks, in one word.
enum class ClientOutcome {
  reclaimed,        // every lock held again exactly as before
  different_range,  // every lock came back, some with another range or type
  partly,           // some locks came back, others did not
  not_reclaimed,    // none of its locks came back
  no_locks,         // it held no lock (monitored only)
};
const char* to_string(ClientOutcome outcome);

struct ClientFailover {
  std::string client;      // "" = the locks whose client the lock table does not name
  bool monitored = false;  // the old primary's statd monitored it (a record was replayed)
  NotifyStatus notify;
  std::size_t locks = 0;  // held on the old primary
  std::size_t reclaimed = 0;
  std::size_t different_range = 0;
  std::size_t not_reclaimed = 0;
  ClientOutcome outcome = ClientOutcome::no_locks;
  bool operator==(const ClientFailover&) const = default;
};

struct ClientReport {
  std::vector<ClientFailover> clients;  // by name; the unnamed ("") last
  // Where the notification states come from: "sm-notify", "sm.bak/ of DIR", or why unknown.
  std::string notify_source;
  // How many clients ended how (ClientOutcome), and were told how (NotifyState).
  std::map<ClientOutcome, std::size_t> outcomes;
  std::map<NotifyState, std::size_t> notifications;
};

// Joins the monitored clients (the old primary's monitor records), the notification results and
// the audit's per-client counts: one row per client that is in any of them.
ClientReport build_client_report(const std::vector<MonitorRecord>& monitored,
                                 const NotifyResults& notify, const AuditReport& audit);

// Recognition's results as NotifyResults. The built-in notifier's are per client, with times
// (acknowledged, notified, unreachable). From sm-notify: the clients it no longer has in sm.bak/
// acknowledged, the others pending, at `at_ns` (when recognition ended). Empty when neither ran.
NotifyResults notify_results(const RecognizeReport& report,
                             const std::vector<MonitorRecord>& records, std::int64_t at_ns);

// The same read from sm.bak/ of `state_dir` now (for an audit after the migration): a client whose
// record file is still there is pending, any other acknowledged.
Result<NotifyResults> notify_results_from_sm_bak(const std::string& state_dir,
                                                 const std::vector<MonitorRecord>& records);

// The reclaim audit and the per-client report of one adoption, as `lockferry audit` shows them.
struct FailoverAudit {
  AuditReport locks;
  ClientReport clients;
};

// Audits from_node's locks against to_node's (audit_from_store) and joins from_node's monitor
// records and the notification states read from sm.bak/ of `state_dir` ("" when recognition does
// not use sm-notify: states unknown). An unreadable sm.bak/ leaves the states unknown and says
// why in notify_source; only the store failing is an error.
Result<FailoverAudit> failover_audit_from_store(store::Store& store, const std::string& from_node,
                                                const std::string& to_node,
                                                const std::string& state_dir);

}  // namespace lockferry::failover
