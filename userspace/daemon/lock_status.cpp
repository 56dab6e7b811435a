// SPDX-License-Identifier: Apache-2.0
// The lock capture's status JSON; see lock_status.h.
#include "daemon/lock_status.h"

#include "common/clock.h"

namespace lockferry::daemon {

nlohmann::json lock_reconcile_json(const capture::LockCounters& counters,
                                   const record::LockRecorderStats& recorder,
                                   std::chrono::seconds interval, std::int64_t last_ns) {
  return {{"runs", counters.reconciles},
          {"after_drops", counters.reconciles_after_drops},
          {"repairs", recorder.reconcile_repairs},
          {"provisional", recorder.reconcile_provisional},
          {"interval_s", interval.count()},
          {"last", clock::format_ns(last_ns)},
          {"kernel_locks", counters.reconcile_locks},
          {"took_us", counters.reconcile_us}};
}

}  // namespace lockferry::daemon
