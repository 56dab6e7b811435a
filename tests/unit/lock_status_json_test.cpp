// SPDX-License-Identifier: Apache-2.0
// The lock capture's reconcile in `lockferry status` ("locks"."reconcile"): every counter the
// capture and the lock recorder expose, under the names the monitor capture's "reconcile" uses.
#include <gtest/gtest.h>

#include "common/clock.h"
#include "daemon/lock_status.h"

namespace lockferry::daemon {
namespace {

TEST(LockStatusJson, ReconcileHasEveryCounterNamedLikeTheMonitorCaptures) {
  capture::LockCounters c;
  c.reconciles = 6;
  c.reconciles_after_drops = 2;
  c.reconcile_locks = 31;
  c.reconcile_us = 1200;
  c.drops = 99;  // shown as "locks"."drops", not here
  record::LockRecorderStats r;
  r.reconcile_repairs = 14;
  r.reconcile_provisional = 3;
  const std::int64_t last = 1'700'000'050'000'000'000;
  const auto j = lock_reconcile_json(c, r, std::chrono::seconds(10), last);
  EXPECT_EQ(j.at("runs").get<std::uint64_t>(), 6u);
  EXPECT_EQ(j.at("after_drops").get<std::uint64_t>(), 2u);
  EXPECT_EQ(j.at("repairs").get<std::uint64_t>(), 14u);
  EXPECT_EQ(j.at("provisional").get<std::uint64_t>(), 3u);
  EXPECT_EQ(j.at("interval_s").get<std::int64_t>(), 10);
  EXPECT_EQ(j.at("last").get<std::string>(), clock::format_ns(last));
  EXPECT_EQ(j.at("kernel_locks").get<std::uint64_t>(), 31u);
  EXPECT_EQ(j.at("took_us").get<std::uint64_t>(), 1200u);
  EXPECT_EQ(j.size(), 8u) << j.dump();
  // The same keys as the monitor capture's "reconcile" where they mean the same thing.
  for (const char* key : {"runs", "repairs", "interval_s", "last"})
    EXPECT_TRUE(j.contains(key)) << key;
}

TEST(LockStatusJson, NoReconcileYetAndOnlyAfterDrops) {
  const auto j = lock_reconcile_json({}, {}, std::chrono::seconds(0), 0);
  EXPECT_EQ(j.at("runs").get<std::uint64_t>(), 0u);
  EXPECT_EQ(j.at("interval_s").get<std::int64_t>(), 0);
  // Same text the monitor capture's "last" shows before its first run.
  EXPECT_EQ(j.at("last").get<std::string>(), clock::format_ns(0));
}

}  // namespace
}  // namespace lockferry::daemon
