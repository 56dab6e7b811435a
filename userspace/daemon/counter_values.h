// SPDX-License-Identifier: Apache-2.0
// The running pieces' counters in the order of their tables (common/counters.h): the one place
// that says which struct member is which named counter. Each function is checked at compile time
// to give exactly one value per row of its table.
#pragma once

#include "capture/capture.h"
#include "capture/lock_capture.h"
#include "common/counters.h"
#include "control/server.h"
#include "failover/client_report.h"
#include "health/agent.h"
#include "record/lock_recorder.h"
#include "record/recorder.h"

namespace lockferry::daemon {

counters::Values capture_values(const capture::Counters& c);
counters::Values records_values(const record::RecorderStats& r);
counters::Values reconcile_values(const record::RecorderStats& r);
counters::Values lock_events_values(const capture::LockCounters& c);
counters::Values lock_impostors_values(const capture::LockCounters& c);
counters::Values lock_reconcile_values(const capture::LockCounters& c,
                                       const record::LockRecorderStats& r);
counters::Values lock_table_values(std::size_t held, const record::LockRecorderStats& r);
counters::Values heartbeats_values(const health::Counters& c);
counters::Values heartbeats_dropped_values(const health::Counters& c);
counters::Values health_checks_values(const health::Counters& c);
counters::Values control_values(const control::ControlServer::Counters& c);
counters::Values failover_clients_values(const failover::ClientReport& r);
counters::Values failover_notify_values(const failover::ClientReport& r);

// Every health counter in one object (status "health"."counters").
nlohmann::json health_counters_json(const health::Counters& c);

}  // namespace lockferry::daemon
