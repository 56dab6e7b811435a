// SPDX-License-Identifier: Apache-2.0
// The counter tables (common/counters.h): each counter has one name, and the status JSON, the
// Prometheus families and the CLI's rows are all made from it, so they cannot drift apart.
#include "common/counters.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "daemon/counter_values.h"

namespace lockferry::counters {
namespace {

using ::testing::HasSubstr;

const Group* const kGroups[] = {&kCapture,           &kRecords,       &kReconcile, &kLockEvents,
                                &kLockImpostors,     &kLockReconcile, &kLockTable, &kHeartbeats,
                                &kHeartbeatsDropped, &kHealthChecks,  &kControl};

// 101, 102, ... : a value no other counter of the group has.
Values distinct(const Group& g) {
  Values v;
  for (std::size_t i = 0; i < g.counters.size(); ++i) v.push_back(101 + i);
  return v;
}

TEST(CounterTables, EveryNameOnceInItsGroupAndEveryFamilyOnce) {
  std::set<std::string> families;
  for (const Group* g : kGroups) {
    std::set<std::string_view> names;
    for (const Counter& c : g->counters) {
      EXPECT_TRUE(names.insert(c.name).second) << "counter named twice: " << c.name;
      EXPECT_FALSE(c.help.empty()) << c.name;
      if (g->label.empty()) {
        EXPECT_TRUE(families.insert(metric_name(*g, c)).second)
            << "Prometheus family twice: " << metric_name(*g, c);
      }
    }
  }
}

TEST(CounterTables, StatusJsonPrometheusAndCliRowsShowTheSameCounters) {
  for (const Group* g : kGroups) {
    const Values v = distinct(*g);
    const auto json = to_json(*g, v);
    EXPECT_EQ(json.size(), g->counters.size());
    Exposition e;
    e.group(*g, v);
    const std::string text = e.take();
    const std::string shown = row(*g, json);
    for (std::size_t i = 0; i < g->counters.size(); ++i) {
      const Counter& c = g->counters[i];
      ASSERT_TRUE(json.contains(std::string(c.name))) << c.name;
      EXPECT_EQ(json.at(std::string(c.name)).get<std::uint64_t>(), v[i]) << c.name;
      if (!g->label.empty()) {
        EXPECT_THAT(text, HasSubstr(fmt::format("lockferry_{}total{{{}=\"{}\"}} {}\n", g->prefix,
                                                g->label, c.name, v[i])));
      } else if (c.unit == Unit::none) {
        EXPECT_THAT(text, HasSubstr(fmt::format("\n{} {}\n", metric_name(*g, c), v[i])));
      } else {
        EXPECT_THAT(text, HasSubstr(fmt::format("\n{} 0.", metric_name(*g, c))));
      }
      if (!c.shown.empty()) {
        EXPECT_THAT(shown, HasSubstr(fmt::format("{} {}", v[i], c.shown)));
      }
    }
  }
}

TEST(CounterTables, TheRowsOfTodaysStatusRead) {
  EXPECT_EQ(row(kCapture, to_json(kCapture, {120, 40, 2, 5})),
            "120 hits, 40 emitted, 2 dropped, 5 changes");
  EXPECT_EQ(row(kRecords, to_json(kRecords, {17, 3, 1, 5})),
            "17 written, 3 deleted, 1 bad files ignored, 5 store errors");
  // An older lockferryd sent fewer counters: the row has what it sent.
  EXPECT_EQ(row(kCapture, nlohmann::json{{"hits", 7}}), "7 hits");
}

TEST(CounterTables, SecondsForPrometheusWhereStatusHasMilliseconds) {
  Exposition e;
  Values v = distinct(kHeartbeats);
  v[5] = 1500;  // max_send_gap_ms
  ASSERT_EQ(kHeartbeats.counters[5].name, "max_send_gap_ms");
  e.group(kHeartbeats, v);
  EXPECT_THAT(e.take(), HasSubstr("\nlockferry_heartbeat_max_send_gap_seconds 1.5\n"));
}

// The one place that binds struct members to table rows (daemon/counter_values.cpp): the names
// the issue found drifting are the status JSON's now, everywhere.
TEST(CounterValues, EachStructMemberLandsUnderItsName) {
  capture::LockCounters c;
  c.refused = 4;
  c.drops = 2;
  c.impostors = 1;
  c.impostor_events = 9;
  c.other_netns_events = 7;
  const auto events = to_json(kLockEvents, daemon::lock_events_values(c));
  EXPECT_EQ(events.at("refused").get<std::uint64_t>(), 4u);
  EXPECT_EQ(events.at("other_netns").get<std::uint64_t>(), 7u);
  EXPECT_EQ(events.at("drops").get<std::uint64_t>(), 2u);
  const auto impostors = to_json(kLockImpostors, daemon::lock_impostors_values(c));
  EXPECT_EQ(impostors.at("processes").get<std::uint64_t>(), 1u);
  EXPECT_EQ(impostors.at("events_ignored").get<std::uint64_t>(), 9u);
  record::LockRecorderStats r;
  r.forgotten = 6;
  r.tables_written = 3;
  const auto table = to_json(kLockTable, daemon::lock_table_values(20, r));
  EXPECT_EQ(table.at("forgotten").get<std::uint64_t>(), 6u);
  EXPECT_EQ(table.at("held").get<std::uint64_t>(), 20u);
  EXPECT_EQ(table.at("tables_written").get<std::uint64_t>(), 3u);
  Exposition e;
  e.group(kLockEvents, daemon::lock_events_values(c));
  EXPECT_THAT(e.take(), HasSubstr("\nlockferry_lock_events_refused_total 4\n"));

  health::Counters h;
  h.sent = 5;
  h.wrong_source = 7;
  h.check_failures = 2;
  h.max_send_gap_ms = 800;
  const auto health = daemon::health_counters_json(h);
  EXPECT_EQ(health.at("sent").get<std::uint64_t>(), 5u);
  EXPECT_EQ(health.at("wrong_source").get<std::uint64_t>(), 7u);
  EXPECT_EQ(health.at("check_failures").get<std::uint64_t>(), 2u);
  EXPECT_EQ(health.at("max_send_gap_ms").get<std::int64_t>(), 800);
  EXPECT_EQ(health.size(), kHeartbeats.counters.size() + kHeartbeatsDropped.counters.size() +
                               kHealthChecks.counters.size());
}

}  // namespace
}  // namespace lockferry::counters
