// SPDX-License-Identifier: Apache-2.0
// The control protocol both binaries speak: the response envelope, the JSON forms of records and
// reports (the CLI's --json output and lockferryd's answers), and the migrate request.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "failover/audit.h"
#include "failover/migration.h"
#include "lockferry/records.h"
#include "lockferry/result.h"
#include "notify/client_result.h"
#include "store/store.h"

namespace lockferry::control {

// Responses: {"ok": true, "result": ...} or {"ok": false, "error": "..."}.
nlohmann::json ok_response(nlohmann::json result);
nlohmann::json error_response(const std::string& message);

nlohmann::json to_json(const MonitorRecord& record);
// A held lock: "end" is null for "to the end of the file", owner a hex string, dev "major:minor".
nlohmann::json to_json(const LockRecord& lock);
nlohmann::json to_json(const store::MigrationRecord& migration);
nlohmann::json to_json(const failover::MigrateReport& report);
// One client of the built-in notifier (in migrate's "recognize.clients").
nlohmann::json to_json(const notify::ClientResult& client);
nlohmann::json to_json(const failover::AuditReport& report);
// The per-client failover report ("client_report" of migrate's and audit's JSON).
nlohmann::json to_json(const failover::ClientReport& report);
// The audit's JSON with its "client_report".
nlohmann::json to_json(const failover::FailoverAudit& audit);

// `lockferry migrate`'s arguments; empty strings and an empty command mean "the default".
struct MigrateRequest {
  std::string from;
  std::string node;
  std::string statmon_dir;
  std::string service_ip;
  std::string recognize;
  std::string state_dir;
  std::vector<std::string> command;
  int timeout_s = 60;
  int retry_minutes = 1;
  bool dry_run = false;
  bool force = false;
};
// {"command":"migrate","from":..,...}
nlohmann::json to_json(const MigrateRequest& request);

// A migrate request turned into options, with anything not given taken from `defaults` (from the
// daemon's configuration, or the CLI's when it runs offline: config/config.h migrate_defaults).
// Errors name the field.
Result<failover::MigrateOptions> migrate_options(const nlohmann::json& request,
                                                 const failover::MigrateOptions& defaults);

}  // namespace lockferry::control
