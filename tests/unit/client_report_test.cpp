// SPDX-License-Identifier: Apache-2.0
// The per-client failover report (failover/client_report.h): the notification results joined
// with the reclaim audit, one row per client, without any network or BPF.
#include "failover/client_report.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "failover/audit.h"

namespace lockferry::failover {
namespace {

MonitorRecord monitored(const std::string& client) {
  MonitorRecord m;
  m.node = "nodeA";
  m.mon_name = client;
  m.file_name = client;
  return m;
}

LockRecord lock(const std::string& node, const std::string& path, std::uint64_t start,
                std::uint64_t end, const std::string& client) {
  LockRecord l;
  l.node = node;
  l.path = path;
  l.start = start;
  l.end = end;
  l.type = "write";
  l.nlm_host = client;
  return l;
}

const ClientFailover& row(const ClientReport& r, const std::string& client) {
  for (const auto& c : r.clients)
    if (c.client == client) return c;
  throw std::runtime_error("no row for client " + client);
}

// Three clients locked two ranges each on nodeA; after the failover c1 reclaimed both, c2 one
// of them with another range and nothing else, c3 nothing (it never came back); c4 was monitored
// but held no lock; one lock no client is named for came back.
TEST(ClientReport, JoinsNotificationAndReclaimPerClient) {
  const std::vector<LockRecord> before = {
      lock("nodeA", "/x/f1", 0, 99, "c1"), lock("nodeA", "/x/s", 100, 199, "c1"),
      lock("nodeA", "/x/f2", 0, 99, "c2"), lock("nodeA", "/x/s", 200, 299, "c2"),
      lock("nodeA", "/x/f3", 0, 99, "c3"), lock("nodeA", "/x/s", 300, 399, "c3"),
      lock("nodeA", "/x/anon", 0, 9, ""),
  };
  const std::vector<LockRecord> after = {
      lock("nodeB", "/x/f1", 0, 99, "c1"),
      lock("nodeB", "/x/s", 100, 199, "c1"),
      lock("nodeB", "/x/f2", 0, 49, "c2"),
      lock("nodeB", "/x/anon", 0, 9, ""),
  };
  const auto audit = audit_locks(before, after);
  const NotifyResults notify = {{"c1", {NotifyState::acknowledged, 5}},
                                {"c2", {NotifyState::acknowledged, 6}},
                                {"c3", {NotifyState::pending, 7}},
                                {"c4", {NotifyState::acknowledged, 8}}};
  const auto report = build_client_report(
      {monitored("c1"), monitored("c2"), monitored("c3"), monitored("c4")}, notify, audit);

  ASSERT_EQ(report.clients.size(), 5u);
  EXPECT_EQ(report.clients.back().client, "") << "the unnamed locks come last";
  const auto& c1 = row(report, "c1");
  EXPECT_TRUE(c1.monitored);
  EXPECT_EQ(c1.notify, (NotifyStatus{NotifyState::acknowledged, 5}));
  EXPECT_EQ(c1.locks, 2u);
  EXPECT_EQ(c1.reclaimed, 2u);
  EXPECT_EQ(c1.outcome, ClientOutcome::reclaimed);
  const auto& c2 = row(report, "c2");
  EXPECT_EQ(c2.different_range, 1u);
  EXPECT_EQ(c2.not_reclaimed, 1u);
  EXPECT_EQ(c2.outcome, ClientOutcome::partly);
  const auto& c3 = row(report, "c3");
  EXPECT_EQ(c3.notify.state, NotifyState::pending);
  EXPECT_EQ(c3.not_reclaimed, 2u);
  EXPECT_EQ(c3.outcome, ClientOutcome::not_reclaimed);
  EXPECT_EQ(row(report, "c4").outcome, ClientOutcome::no_locks);
  const auto& unnamed = row(report, "");
  EXPECT_FALSE(unnamed.monitored);
  EXPECT_EQ(unnamed.notify.state, NotifyState::unknown);
  EXPECT_EQ(unnamed.outcome, ClientOutcome::reclaimed);

  EXPECT_EQ(report.outcomes.at(ClientOutcome::reclaimed), 2u);
  EXPECT_EQ(report.outcomes.at(ClientOutcome::partly), 1u);
  EXPECT_EQ(report.outcomes.at(ClientOutcome::not_reclaimed), 1u);
  EXPECT_EQ(report.outcomes.at(ClientOutcome::no_locks), 1u);
  EXPECT_EQ(report.notifications.at(NotifyState::acknowledged), 3u);
  EXPECT_EQ(report.notifications.at(NotifyState::pending), 1u);
  EXPECT_EQ(report.notifications.at(NotifyState::unknown), 1u);
}

TEST(ClientReport, AllComeBackWithADifferentRange) {
  const auto audit =
      audit_locks({lock("nodeA", "/x/f", 0, 99, "c")}, {lock("nodeB", "/x/f", 0, 10, "c")});
  const auto report = build_client_report({monitored("c")}, {}, audit);
  ASSERT_EQ(report.clients.size(), 1u);
  EXPECT_EQ(report.clients[0].outcome, ClientOutcome::different_range);
  EXPECT_EQ(report.clients[0].notify.state, NotifyState::unknown);
}

// A client that locked but has no monitor record (statd lost it) still gets its row.
TEST(ClientReport, AClientWithLocksButNoRecordIsListed) {
  const auto audit = audit_locks({lock("nodeA", "/x/f", 0, 99, "ghost")}, {});
  const auto report = build_client_report({}, {}, audit);
  ASSERT_EQ(report.clients.size(), 1u);
  EXPECT_FALSE(report.clients[0].monitored);
  EXPECT_EQ(report.clients[0].outcome, ClientOutcome::not_reclaimed);
}

// sm-notify's answer by file name in sm/, reported by the client's mon_name.
TEST(ClientReport, NotifyResultsOfSmNotifyByMonName) {
  RecognizeReport rec;
  rec.notified = {"host-a"};
  rec.not_notified = {"host-b"};
  MonitorRecord a = monitored("a.example");
  a.file_name = "host-a";
  MonitorRecord b = monitored("b.example");
  b.file_name = "host-b";
  const auto n = notify_results(rec, {a, b}, 42);
  EXPECT_EQ(n.at("a.example"), (NotifyStatus{NotifyState::acknowledged, 42}));
  EXPECT_EQ(n.at("b.example"), (NotifyStatus{NotifyState::pending, 42}));
  EXPECT_EQ(n.size(), 2u);
}

TEST(ClientReport, NotifyResultsFromSmBak) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("lf-client-report-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "sm.bak");
  ::chmod(dir.c_str(), 0700);
  std::ofstream(dir / "sm.bak" / "c2") << "pending\n";
  auto n = notify_results_from_sm_bak(dir.string(), {monitored("c1"), monitored("c2")});
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(n->at("c1").state, NotifyState::acknowledged);
  EXPECT_EQ(n->at("c2").state, NotifyState::pending);
  EXPECT_FALSE(notify_results_from_sm_bak((dir / "missing").string(), {monitored("c1")}));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lockferry::failover
