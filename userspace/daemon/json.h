// SPDX-License-Identifier: Apache-2.0
// JSON forms of records and reports, shared by the CLI's --json output and the control socket.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "capture/lock_capture.h"
#include "capture/lock_recorder.h"
#include "failover/audit.h"
#include "failover/migration.h"
#include "lockferry/records.h"
#include "store/store.h"

namespace lockferry::daemon {

nlohmann::json to_json(const MonitorRecord& record);
// A held lock: "end" is null for "to the end of the file", owner a hex string, dev "major:minor".
nlohmann::json to_json(const LockRecord& lock);
nlohmann::json to_json(const store::MigrationRecord& migration);
nlohmann::json to_json(const failover::MigrateReport& report);
nlohmann::json to_json(const failover::AuditReport& report);

// The lock capture's reconciles with the kernel's locks ("locks"."reconcile" of `lockferry
// status`), named like the monitor capture's "reconcile": runs, after_drops, repairs (ranges
// added or removed), provisional (owners made up), interval_s (0 = only after drops), last,
// kernel_locks and took_us (of the last snapshot).
nlohmann::json lock_reconcile_json(const capture::LockCounters& counters,
                                   const capture::LockRecorderStats& recorder,
                                   std::chrono::seconds interval, std::int64_t last_ns);

}  // namespace lockferry::daemon

namespace lockferry::daemon {

struct Config;

// A migrate request as sent by `lockferry migrate` ({"command":"migrate","from":..,...}) turned
// into options, with anything not given taken from `defaults` (the daemon's configuration, or the
// CLI's defaults when it runs offline). Errors name the field.
Result<failover::MigrateOptions> migrate_options(const nlohmann::json& request,
                                                 const Config& defaults);

}  // namespace lockferry::daemon
