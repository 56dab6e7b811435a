// SPDX-License-Identifier: Apache-2.0
// The lock capture's part of `lockferry status` that lockferryd builds from its counters.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "capture/lock_capture.h"
#include "record/lock_recorder.h"

namespace lockferry::daemon {

// The lock capture's reconciles with the kernel's locks ("locks"."reconcile" of `lockferry
// status`), named like the monitor capture's "reconcile": runs, after_drops, repairs (ranges
// added or removed), provisional (owners made up), interval_s (0 = only after drops), last,
// kernel_locks and took_us (of the last snapshot).
nlohmann::json lock_reconcile_json(const capture::LockCounters& counters,
                                   const record::LockRecorderStats& recorder,
                                   std::chrono::seconds interval, std::int64_t last_ns);

}  // namespace lockferry::daemon
