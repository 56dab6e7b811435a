// SPDX-License-Identifier: Apache-2.0
// JSON forms of records and reports, shared by the CLI's --json output and the control socket.
#pragma once

#include <nlohmann/json.hpp>

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

}  // namespace lockferry::daemon

namespace lockferry::daemon {

struct Config;

// A migrate request as sent by `lockferry migrate` ({"command":"migrate","from":..,...}) turned
// into options, with anything not given taken from `defaults` (the daemon's configuration, or the
// CLI's defaults when it runs offline). Errors name the field.
Result<failover::MigrateOptions> migrate_options(const nlohmann::json& request,
                                                 const Config& defaults);

}  // namespace lockferry::daemon
