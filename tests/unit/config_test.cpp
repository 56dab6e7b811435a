// SPDX-License-Identifier: Apache-2.0
// lockferryd configuration: defaults, a full file, and errors that name the key.
#include "config/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "config/settings.h"

namespace lockferry::daemon {
namespace {

TEST(Config, AnEmptyFileMeansTheDefaults) {
  auto cfg = parse_config("node = \"nodeA\"\n", "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->node, "nodeA");
  EXPECT_EQ(cfg->store_url, kDefaultStoreUrl);
  EXPECT_EQ(cfg->monitor_dirs, std::vector<std::string>{"/var/lib/nfs/sm"});
  EXPECT_EQ(cfg->reconcile_interval, std::chrono::seconds(30));
  EXPECT_EQ(cfg->capture_mode, capture::Mode::automatic);
  EXPECT_EQ(cfg->socket_path, kDefaultSocketPath);
}

TEST(Config, EveryOptionIsRead) {
  auto cfg = parse_config(R"(
node = "nodeB"
store = "dir:///shared/lockferry"
log_level = "debug"
[capture]
monitor_dirs = ["/srv/a/sm", "/srv/b/sm"]
mode = "inotify"
reconcile_interval_s = 5
pin_dir = ""
[control]
socket = "/run/lf.sock"
[failover]
statmon_dir = "/srv/a/sm"
service_ip = "192.0.2.10"
recognize = "ganesha-grace"
)",
                          "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->node, "nodeB");
  EXPECT_EQ(cfg->store_url, "dir:///shared/lockferry");
  EXPECT_EQ(cfg->log_level, "debug");
  EXPECT_EQ(cfg->monitor_dirs, (std::vector<std::string>{"/srv/a/sm", "/srv/b/sm"}));
  EXPECT_EQ(cfg->capture_mode, capture::Mode::inotify);
  EXPECT_EQ(cfg->reconcile_interval, std::chrono::seconds(5));
  EXPECT_EQ(cfg->pin_dir, "");
  EXPECT_EQ(cfg->socket_path, "/run/lf.sock");
  EXPECT_EQ(cfg->service_ip, "192.0.2.10");
  EXPECT_EQ(cfg->recognize, "ganesha-grace");
}

void expect_error(std::string_view toml, std::string_view fragment) {
  auto cfg = parse_config(toml, "bad.toml");
  ASSERT_FALSE(cfg.ok()) << "accepted: " << toml;
  EXPECT_NE(cfg.error().message.find(fragment), std::string::npos) << cfg.error().message;
  EXPECT_NE(cfg.error().message.find("bad.toml"), std::string::npos) << cfg.error().message;
}

TEST(Config, ErrorsNameTheFileAndTheKey) {
  expect_error("node = \"a\"\nstroe = \"dir:///x\"\n", "stroe");
  expect_error("node = \"a\"\n[capture]\nmonitor_dir = [\"/x\"]\n", "monitor_dir");
  expect_error("node = 5\n", "node");
  expect_error("node = \"a\"\n[capture]\nmonitor_dirs = [\"relative/sm\"]\n", "absolute");
  expect_error("node = \"a\"\n[capture]\nmonitor_dirs = []\n", "empty");
  expect_error("node = \"a\"\n[capture]\nmode = \"magic\"\n", "magic");
  expect_error("node = \"a\"\n[capture]\nreconcile_interval_s = 0\n", "reconcile_interval_s");
  expect_error("node = \"a\"\nlog_level = \"chatty\"\n", "log_level");
  expect_error("node = \"a\" = \"b\"\n", "bad.toml:1");
}

// Every capture mode reads back under its own name, kprobe included; the error lists them all.
TEST(Config, EveryCaptureModeIsReadByItsName) {
  for (auto mode : {capture::Mode::automatic, capture::Mode::bpf, capture::Mode::fentry,
                    capture::Mode::kprobe, capture::Mode::tracepoint, capture::Mode::fanotify,
                    capture::Mode::inotify, capture::Mode::poll}) {
    const std::string name = capture::to_string(mode);
    auto cfg = parse_config("node = \"a\"\n[capture]\nmode = \"" + name + "\"\n", "test.toml");
    ASSERT_TRUE(cfg.ok()) << name << ": " << cfg.error().message;
    EXPECT_EQ(cfg->capture_mode, mode) << name;
  }
  expect_error("node = \"a\"\n[capture]\nmode = \"kretprobe\"\n", "fentry, kprobe, tracepoint");
}

TEST(Config, NodeNamesThatCouldEscapeTheStoreAreRefused) {
  expect_error("node = \"../etc\"\n", "node");
  expect_error("node = \"a/b\"\n", "node");
}

TEST(Config, LockCaptureIsOnForLockdAndGaneshaByDefault) {
  auto cfg = parse_config("node = \"nodeA\"\n", "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_TRUE(cfg->locks_enabled);
  EXPECT_EQ(cfg->lock_managers, (std::vector<std::string>{"lockd", "ganesha.nfsd"}));
  EXPECT_EQ(cfg->lock_hook, capture::LockHook::automatic);
  // The lock capture's own defaults (LockOptions): nothing changes for a config without the keys.
  EXPECT_EQ(cfg->lock_ring_buffer_kb, 4096u);
  EXPECT_EQ(cfg->lock_reconcile_interval, std::chrono::seconds(10));
  EXPECT_EQ(std::chrono::milliseconds(cfg->lock_reconcile_interval),
            capture::LockOptions{}.reconcile_interval);
  EXPECT_EQ(lock_owner_key_path(*cfg), "/run/lockferry/lock-owner-key");
  EXPECT_EQ(lock_owner_key_path(*cfg), capture::LockOptions{}.owner_key_path);
}

TEST(Config, LockOwnerKeyFollowsTheRuntimeDirectoryOfTheSocket) {
  auto cfg =
      parse_config("node = \"n\"\n[control]\nsocket = \"/run/lf-test/ctl.sock\"\n", "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(lock_owner_key_path(*cfg), "/run/lf-test/lock-owner-key");
}

TEST(Config, LockRingBufferAndReconcileIntervalAreRead) {
  auto cfg = parse_config(
      "node = \"n\"\n[capture]\nring_buffer_kb = 64\nreconcile_interval_s = 7\n"
      "[locks]\nring_buffer_kb = 16384\nreconcile_interval_s = 60\n",
      "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->lock_ring_buffer_kb, 16384u);
  EXPECT_EQ(cfg->lock_reconcile_interval, std::chrono::seconds(60));
  // The [capture] keys of the same names stay the monitor capture's.
  EXPECT_EQ(cfg->ring_buffer_kb, 64u);
  EXPECT_EQ(cfg->reconcile_interval, std::chrono::seconds(7));

  // 0: reconcile only after dropped events (the capture's own meaning of 0).
  auto after_drops = parse_config(
      "node = \"n\"\n[locks]\nreconcile_interval_s = 0\nring_buffer_kb = 4\n", "test.toml");
  ASSERT_TRUE(after_drops.ok()) << after_drops.error().message;
  EXPECT_EQ(after_drops->lock_reconcile_interval, std::chrono::seconds(0));
  EXPECT_EQ(after_drops->lock_ring_buffer_kb, 4u);
}

TEST(Config, BadLockRingBufferAndReconcileIntervalNameTheKey) {
  expect_error("node = \"n\"\n[locks]\nring_buffer_kb = 3000\n",
               "'locks.ring_buffer_kb' must be a power of two from 4 to 262144, not 3000");
  expect_error("node = \"n\"\n[locks]\nring_buffer_kb = 2\n", "'locks.ring_buffer_kb'");
  expect_error("node = \"n\"\n[locks]\nring_buffer_kb = 524288\n", "'locks.ring_buffer_kb'");
  expect_error("node = \"n\"\n[locks]\nring_buffer_kb = \"4M\"\n", "locks.ring_buffer_kb");
  expect_error("node = \"n\"\n[locks]\nreconcile_interval_s = -1\n",
               "'locks.reconcile_interval_s' must be 0..86400");
  expect_error("node = \"n\"\n[locks]\nreconcile_interval_s = 86401\n",
               "'locks.reconcile_interval_s'");
  expect_error("node = \"n\"\n[locks]\nreconcile_interval_s = \"10s\"\n",
               "locks.reconcile_interval_s");
  expect_error("node = \"n\"\n[locks]\nreconcile_interval_ms = 100\n",
               "unknown key 'locks.reconcile_interval_ms'");
}

TEST(Config, ReloadedFileIsValidatedLikeTheFirst) {
  // SIGHUP re-reads with load_config: a bad [locks] value there is refused the same way.
  const std::string path = ::testing::TempDir() + "/lockferry-config-reload.toml";
  {
    std::ofstream out(path);
    out << "node = \"n\"\n[locks]\nring_buffer_kb = 8192\nreconcile_interval_s = 30\n";
  }
  auto good = load_config(path);
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(good->lock_ring_buffer_kb, 8192u);
  EXPECT_EQ(good->lock_reconcile_interval, std::chrono::seconds(30));
  {
    std::ofstream out(path);
    out << "node = \"n\"\n[locks]\nring_buffer_kb = 5000\n";
  }
  auto bad = load_config(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(path), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("locks.ring_buffer_kb"), std::string::npos)
      << bad.error().message;
  std::remove(path.c_str());
}

TEST(Config, LocksSectionIsRead) {
  auto cfg = parse_config(
      "node = \"n\"\n[locks]\nenabled = false\nmanagers = [\"ganesha.nfsd\"]\n"
      "hook = \"tracepoint\"\n",
      "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_FALSE(cfg->locks_enabled);
  EXPECT_EQ(cfg->lock_managers, std::vector<std::string>{"ganesha.nfsd"});
  EXPECT_EQ(cfg->lock_hook, capture::LockHook::tracepoint);
}

TEST(Config, BadLocksSettingsNameTheKey) {
  auto bad = [](const std::string& text) {
    auto cfg = parse_config("node = \"n\"\n" + text, "test.toml");
    return cfg.ok() ? std::string() : cfg.error().message;
  };
  EXPECT_NE(bad("[locks]\nmanagers = [\"a-very-long-daemon-name\"]\n").find("locks.managers"),
            std::string::npos);
  EXPECT_NE(bad("[locks]\nhook = \"fentry\"\n").find("locks.hook"), std::string::npos);
  EXPECT_NE(bad("[locks]\nenabled = \"yes\"\n").find("locks.enabled"), std::string::npos);
  EXPECT_NE(bad("[locks]\nmanager = [\"lockd\"]\n").find("unknown key 'locks.manager'"),
            std::string::npos);
  EXPECT_NE(bad("locks = 1\n").find("[locks]"), std::string::npos);
}

// The settings table (config/settings.h) is the one definition of every key: its type, default
// and range are what the parser enforces.
TEST(Settings, EachKeyHasItsTypeDefaultAndRange) {
  std::map<std::string, SettingInfo> table;
  for (const auto& s : settings_table()) EXPECT_TRUE(table.emplace(s.key, s).second) << s.key;
  EXPECT_EQ(table.at("capture.ring_buffer_kb").type, "integer");
  EXPECT_EQ(table.at("capture.ring_buffer_kb").default_value, "1024");
  EXPECT_EQ(table.at("capture.ring_buffer_kb").range, "a power of two from 4 to 262144");
  EXPECT_EQ(table.at("locks.ring_buffer_kb").range, table.at("capture.ring_buffer_kb").range);
  EXPECT_EQ(table.at("health.interval_ms").range, "50..60000");
  EXPECT_EQ(table.at("health.interval_ms").default_value, "500");
  EXPECT_EQ(table.at("locks.managers").type, "array of strings");
  EXPECT_EQ(table.at("failover.automatic").takes, Takes::live);
  EXPECT_EQ(table.at("capture.mode").takes, Takes::restart);
  // Every integer key says its range, and the parser refuses what is outside it.
  for (const auto& [key, s] : table) {
    if (s.type != "integer") continue;
    EXPECT_FALSE(s.range.empty()) << key;
    const auto dot = key.find('.');
    const std::string text =
        "node = \"n\"\n[" + key.substr(0, dot) + "]\n" + key.substr(dot + 1) + " = 999999999\n";
    auto cfg = parse_config(text, "t.toml");
    ASSERT_FALSE(cfg.ok()) << key;
    EXPECT_NE(cfg.error().message.find("'" + key + "' must be " + s.range), std::string::npos)
        << cfg.error().message;
  }
}

TEST(Settings, BothRingBuffersAreCheckedByTheSameRule) {
  for (const char* section : {"capture", "locks"}) {
    auto cfg = parse_config(std::string("node = \"n\"\n[") + section + "]\nring_buffer_kb = 3000\n",
                            "t.toml");
    ASSERT_FALSE(cfg.ok());
    EXPECT_NE(cfg.error().message.find(std::string("'") + section +
                                       ".ring_buffer_kb' must be a power of two from 4 to "
                                       "262144, not 3000"),
              std::string::npos)
        << cfg.error().message;
  }
}

// lockferryd --node: applied before validation, at start-up and on each SIGHUP alike (both call
// load_config with the same overrides), so a bad name on the command line is refused too.
TEST(Config, CommandLineOverridesAreValidatedLikeTheFile) {
  auto cfg = parse_config("node = \"file-name\"\n", "t.toml", Overrides{"cli-name"});
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->node, "cli-name");
  auto bad = parse_config("node = \"file-name\"\n", "t.toml", Overrides{"../etc"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("'node'"), std::string::npos) << bad.error().message;
  const std::string path = ::testing::TempDir() + "/lockferry-config-override.toml";
  {
    std::ofstream out(path);
    out << "node = \"file-name\"\n";
  }
  auto loaded = load_config(path, Overrides{"cli-name"});
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->node, "cli-name");
  std::remove(path.c_str());
}

TEST(Config, EverySectionMustBeATable) {
  for (const char* section : {"capture", "control", "failover", "health", "locks", "metrics"})
    expect_error(std::string("node = \"n\"\n") + section + " = 1\n",
                 std::string("'") + section + "' must be a table ([" + section + "])");
}

}  // namespace
}  // namespace lockferry::daemon
