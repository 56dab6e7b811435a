// SPDX-License-Identifier: Apache-2.0
// SIGHUP's table: every changed setting is either applied or reported as needing a restart,
// with its running and its file value; a restart-only setting keeps its running value.
#include "daemon/reload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace lockferry::daemon {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Config parse(const std::string& text) {
  auto c = parse_config("node = \"nodeA\"\n" + text, "test.toml");
  EXPECT_TRUE(c.ok()) << c.error().message;
  return c.ok() ? *c : Config{};
}

// A [health] section with `extra` keys in it.
std::string health(const std::string& extra = "") {
  return "[health]\nlisten = \"127.0.0.1:7001\"\nkey_file = \"/etc/lockferry/key\"\n" + extra +
         "[health.peers]\nnodeB = \"127.0.0.1:7002\"\n";
}
const std::string kHealth = health();

TEST(Reload, TheSameFileChangesNothing) {
  const Config c = parse("[failover]\nautomatic = true\n" + kHealth);
  EXPECT_TRUE(diff_config(c, c).empty());
}

TEST(Reload, FailoverSettingsAndLockManagersApplyLive) {
  const Config running = parse(kHealth);
  const Config file = parse(
      "log_level = \"debug\"\n[failover]\nautomatic = true\nadopt_order = [\"nodeB\"]\n"
      "statmon_dir = \"/srv/sm\"\nrecognize = \"none\"\n[locks]\nmanagers = [\"lockd\"]\n" +
      kHealth);
  const auto d = diff_config(running, file);
  EXPECT_THAT(d.restart, IsEmpty());
  EXPECT_EQ(
      std::set<std::string>(d.live.begin(), d.live.end()),
      (std::set<std::string>{"log_level", "failover.automatic", "failover.adopt_order",
                             "failover.statmon_dir", "failover.recognize", "locks.managers"}));
  const Config after = running_after_reload(running, file);
  EXPECT_TRUE(after.automatic);
  EXPECT_EQ(after.statmon_dir, "/srv/sm");
  EXPECT_TRUE(diff_config(after, file).empty());
}

TEST(Reload, AChangedHealthSectionNeedsARestartAndKeepsItsRunningValue) {
  const Config running = parse(kHealth);
  const Config file = parse(health("interval_ms = 200\n"));
  const auto d = diff_config(running, file);
  EXPECT_THAT(d.live, IsEmpty());
  EXPECT_THAT(d.restart, ElementsAre("health.interval_ms: running 500, file 200"));
  const Config after = running_after_reload(running, file);
  EXPECT_EQ(after.health.interval, running.health.interval);
}

TEST(Reload, RemovedSectionsAreReportedToo) {
  const Config running = parse("[metrics]\nlisten = \"127.0.0.1:9464\"\n" + kHealth);
  const Config file = parse("");
  const auto d = diff_config(running, file);
  EXPECT_THAT(d.restart, ::testing::Contains(
                             HasSubstr("metrics.listen: running \"127.0.0.1:9464\", file \"\"")));
  EXPECT_THAT(d.restart, ::testing::Contains(HasSubstr("health: running true, file false")));
  EXPECT_THAT(d.restart, ::testing::Contains(HasSubstr("health.listen")));
  const Config after = running_after_reload(running, file);
  EXPECT_TRUE(after.health.enabled);  // it still runs
  EXPECT_EQ(after.metrics_listen, "127.0.0.1:9464");
}

TEST(Reload, NodeStoreAndBpfSettingsNeedARestart) {
  const Config running = parse("");
  const Config file = parse(
      "store = \"dir:///elsewhere\"\n[capture]\nmode = \"inotify\"\nring_buffer_kb = 2048\n"
      "[locks]\nhook = \"tracepoint\"\n[control]\nsocket = \"/run/x.sock\"\n");
  const auto d = diff_config(running, file);
  EXPECT_THAT(d.live, IsEmpty());
  EXPECT_EQ(d.restart.size(), 5u);
  EXPECT_THAT(d.restart,
              ::testing::Contains(HasSubstr("capture.mode: running auto, file inotify")));
  EXPECT_EQ(running_after_reload(running, file).store_url, running.store_url);
}

TEST(Reload, EveryKeyOfTheFileIsInTheTable) {
  std::set<std::string> keys;
  for (const auto& s : settings_table()) keys.insert(s.key);
  for (const std::string key : {"node",
                                "store",
                                "log_level",
                                "capture.monitor_dirs",
                                "capture.mode",
                                "capture.reconcile_interval_s",
                                "capture.pin_dir",
                                "capture.ring_buffer_kb",
                                "control.socket",
                                "failover.statmon_dir",
                                "failover.service_ip",
                                "failover.recognize",
                                "failover.recognize_command",
                                "failover.recognize_timeout_s",
                                "failover.automatic",
                                "failover.adopt_order",
                                "failover.takeover_command",
                                "failover.takeover_timeout_s",
                                "failover.audit_after_s",
                                "health.heartbeats",
                                "health.listen",
                                "health.peers",
                                "health.key_file",
                                "health.interval_ms",
                                "health.dead_after_ms",
                                "health.replay_window_ms",
                                "health.check_command",
                                "health.check_interval_ms",
                                "health.check_timeout_ms",
                                "health.check_failures",
                                "locks.enabled",
                                "locks.managers",
                                "locks.manager_binaries",
                                "locks.hook",
                                "locks.ring_buffer_kb",
                                "locks.reconcile_interval_s",
                                "metrics.listen"})
    EXPECT_TRUE(keys.contains(key)) << key;
}

TEST(Reload, TheReportIsWhatStatusShows) {
  ReloadReport r;
  r.at_ns = 1'700'000'000'000'000'000;
  r.applied = {"failover.automatic"};
  r.needs_restart = {"health.interval_ms: running 500, file 200"};
  const auto j = r.to_json();
  EXPECT_EQ(j["applied"], nlohmann::json::array({"failover.automatic"}));
  EXPECT_EQ(j["needs_restart"][0], "health.interval_ms: running 500, file 200");
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_EQ(ReloadReport{}.to_json()["last"], "");
}

}  // namespace
}  // namespace lockferry::daemon
