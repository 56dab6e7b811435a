// SPDX-License-Identifier: Apache-2.0
// The lock capture's status JSON; see lock_status.h.
#include "daemon/lock_status.h"

#include "common/clock.h"
#include "common/counters.h"
#include "daemon/counter_values.h"

namespace lockferry::daemon {

nlohmann::json lock_reconcile_json(const capture::LockCounters& counters,
                                   const record::LockRecorderStats& recorder,
                                   std::chrono::seconds interval, std::int64_t last_ns) {
  auto out = counters::to_json(counters::kLockReconcile, lock_reconcile_values(counters, recorder));
  out["interval_s"] = interval.count();
  out["last"] = clock::format_ns(last_ns);
  return out;
}

}  // namespace lockferry::daemon
