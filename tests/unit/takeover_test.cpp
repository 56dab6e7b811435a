// SPDX-License-Identifier: Apache-2.0
// Automatic failover's pieces without a network: the takeover command runs after the fence and
// before replay, a failed takeover replays nothing, only the fence winner takes the service, and
// the AutoAdopter reports through the loop; plus the [health]/[failover] configuration keys.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "config/config.h"
#include "dir_store_test_util.h"
#include "failover/auto_adopt.h"
#include "failover/migration.h"

namespace lockferry::failover {
namespace {

using ::testing::HasSubstr;
using testing::make_record;
using testing::TempDir;

struct Bed {
  TempDir tmp;
  std::string store_dir = tmp / "store";
  std::string sm = tmp / "sm";
  std::string log = tmp / "takeover.log";
  std::unique_ptr<store::Store> store;

  Bed() {
    std::filesystem::create_directories(sm);
    std::filesystem::create_directories(store_dir);
    store = testing::open_at(store_dir);
    EXPECT_TRUE(store->put_monitor(make_record("nodeA", "192.0.2.101")).ok());
  }

  // The takeover "command" logs its arguments, the epoch it sees and what sm/ holds at that moment.
  MigrateOptions options(const std::string& exit_code = "0") const {
    MigrateOptions o;
    o.from_node = "nodeA";
    o.to_node = "nodeB";
    o.statmon_dir = sm;
    o.recognize.method = RecognizeMethod::none;
    o.recognize.service_ip = "192.0.2.10";
    o.takeover_command = {"sh",
                          "-c",
                          "echo \"$0 $1 $2 epochs=$(ls " + store_dir +
                              "/nodeA/epochs | tr '\\n' ,) "
                              "sm=$(ls " +
                              sm + " | tr '\\n' ,)\" >> " + log + "; exit " + exit_code,
                          "{from}",
                          "{node}",
                          "{service_ip}"};
    return o;
  }
};

TEST(Takeover, RunsAfterTheFenceAndBeforeReplayWithPlaceholdersFilled) {
  Bed b;
  auto report = migrate(*b.store, b.options());
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_TRUE(report->ok) << report->message;
  ASSERT_TRUE(report->takeover.has_value());
  EXPECT_EQ(report->takeover->exit_code, 0);
  // Fenced (epoch 1 exists) and nothing replayed yet when it ran.
  EXPECT_EQ(testing::read_raw_file(b.log), "nodeA nodeB 192.0.2.10 epochs=1, sm=\n");
  EXPECT_EQ(testing::dir_names(b.sm), std::vector<std::string>{"192.0.2.101"});
}

TEST(Takeover, AFailedTakeoverReplaysNothingAndSaysWhatToDo) {
  Bed b;
  auto report = migrate(*b.store, b.options("3"));
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.error().message, HasSubstr("takeover failed"));
  EXPECT_THAT(report.error().message, HasSubstr("run the migration again"));
  EXPECT_TRUE(testing::dir_names(b.sm).empty());
  EXPECT_EQ(*b.store->epoch("nodeA"), 1u);  // stays fenced: the old primary must not write
  auto migrations = b.store->list_migrations();
  ASSERT_TRUE(migrations.ok());
  ASSERT_EQ(migrations->size(), 1u);
  EXPECT_THAT((*migrations)[0].result, HasSubstr("takeover failed"));
  // Fixed, and run again on the same node: no second fence, the takeover and replay happen.
  auto again = migrate(*b.store, b.options());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->repeated);
  EXPECT_EQ(again->epoch, 1u);
  EXPECT_EQ(testing::dir_names(b.sm), std::vector<std::string>{"192.0.2.101"});
}

TEST(Takeover, TheNodeThatLostTheFenceNeverTakesTheService) {
  Bed b;
  ASSERT_TRUE(migrate(*b.store, b.options()).ok());
  MigrateOptions other = b.options();
  other.to_node = "nodeC";
  auto refused = migrate(*b.store, other);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message, HasSubstr("already adopted by nodeB"));
  // Only nodeB's takeover ran.
  EXPECT_EQ(testing::read_raw_file(b.log), "nodeA nodeB 192.0.2.10 epochs=1, sm=\n");
}

TEST(Takeover, DryRunShowsTheCommandAndRunsNothing) {
  Bed b;
  MigrateOptions o = b.options();
  o.dry_run = true;
  auto report = migrate(*b.store, o);
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(report->takeover.has_value());
  EXPECT_EQ(report->takeover->argv[3], "nodeA");
  EXPECT_FALSE(std::filesystem::exists(b.log));
}

TEST(AutoAdopter, AdoptsOnItsOwnThreadAndReportsOnTheLoop) {
  Bed b;
  boost::asio::io_context io;
  AutoAdopter adopter("dir://" + b.store_dir,
                      [&io](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); });
  std::vector<Adoption> done;
  auto work = boost::asio::make_work_guard(io);
  ASSERT_TRUE(adopter.adopt(b.options(), "silent for 3000 ms",
                            [&](const Adoption& a, const Result<MigrateReport>& r) {
                              EXPECT_TRUE(r.ok());
                              done.push_back(a);
                              io.stop();
                            }));
  EXPECT_FALSE(adopter.adopt(b.options(), "again", nullptr)) << "one adoption of a node at a time";
  io.run_for(std::chrono::seconds(20));  // failsafe; stops once the report was delivered
  adopter.join();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].ok) << done[0].message;
  EXPECT_EQ(done[0].epoch, 1u);
  EXPECT_EQ(done[0].records, 1u);
  EXPECT_GE(done[0].finished_ns, done[0].detected_ns);
  ASSERT_EQ(adopter.adoptions().size(), 1u);
  EXPECT_FALSE(adopter.adoptions().front().running);
  // The per-client report as the migration ended, for `lockferry health` (the daemon's adoption
  // reports per client as `lockferry migrate` does).
  const Adoption a = adopter.adoptions().front();
  EXPECT_EQ(a.recognize, RecognizeMethod::none);
  ASSERT_EQ(a.clients.clients.size(), 1u);
  EXPECT_EQ(a.clients.clients[0].client, "192.0.2.101");
  EXPECT_TRUE(a.clients.clients[0].monitored);
}

TEST(AutoAdopter, TheAuditReadsSmBakAfterEveryMethodThatKeepsIt) {
  // sm-notify and the built-in notifier both leave unacknowledged clients in sm.bak/: the audit
  // of an adoption by either reads who is still pending there.
  MigrateOptions o;
  o.statmon_dir = "/var/lib/nfs/sm";
  for (auto m :
       {RecognizeMethod::sm_notify, RecognizeMethod::notify, RecognizeMethod::restart_statd}) {
    o.recognize.method = m;
    EXPECT_EQ(sm_notify_state_dir(o), "/var/lib/nfs") << to_string(m);
  }
  o.recognize.state_dir = "/srv/nfs";
  EXPECT_EQ(sm_notify_state_dir(o), "/srv/nfs");
  for (auto m : {RecognizeMethod::ganesha_grace, RecognizeMethod::restart_nfs,
                 RecognizeMethod::command, RecognizeMethod::none}) {
    o.recognize.method = m;
    EXPECT_EQ(sm_notify_state_dir(o), "") << to_string(m);
  }
}

TEST(AutoAdopter, TakesOverAPeerThatNeverStoredAnything) {
  // Automatic adoption uses the same fence (and loses it the same way), but a configured peer
  // seen serving is no typo: its service is taken over even with nothing to replay.
  Bed b;
  boost::asio::io_context io;
  AutoAdopter adopter("dir://" + b.store_dir,
                      [&io](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); });
  MigrateOptions o = b.options();
  o.from_node = "nodeQ";
  std::vector<Adoption> done;
  auto work = boost::asio::make_work_guard(io);
  ASSERT_TRUE(
      adopter.adopt(o, "silent for 3000 ms", [&](const Adoption& a, const Result<MigrateReport>&) {
        done.push_back(a);
        io.stop();
      }));
  io.run_for(std::chrono::seconds(20));  // failsafe
  adopter.join();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].ok) << done[0].message;
  EXPECT_EQ(done[0].records, 0u);
  EXPECT_EQ(*b.store->fence("nodeQ"), (store::Fence{1, "nodeB"}));
  EXPECT_EQ(testing::read_raw_file(b.log), "nodeQ nodeB 192.0.2.10 epochs= sm=\n")
      << "the takeover ran";
}

}  // namespace
}  // namespace lockferry::failover

namespace lockferry::daemon {
namespace {

using ::testing::HasSubstr;

TEST(ConfigHealth, ParsesHealthAndAutomaticFailover) {
  auto cfg = parse_config(R"(
node = "nodeB"
[failover]
service_ip = "203.0.113.10"
automatic = true
adopt_order = ["nodeB", "nodeC"]
takeover_command = ["/usr/local/sbin/take-nfs", "{from}", "{node}"]
takeover_timeout_s = 30
recognize_command = ["sm-notify", "-f", "-v", "{service_ip}"]
[health]
listen = "203.0.113.12:7789"
key_file = "/etc/lockferry/heartbeat.key"
interval_ms = 250
dead_after_ms = 1500
check_command = ["/usr/local/bin/nfs-ok"]
check_failures = 2
[health.peers]
nodeA = "203.0.113.11:7789"
nodeB = "203.0.113.12:7789"
)",
                          "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_TRUE(cfg->automatic);
  EXPECT_EQ(cfg->adopt_order, (std::vector<std::string>{"nodeB", "nodeC"}));
  EXPECT_EQ(cfg->takeover_command.size(), 3u);
  EXPECT_EQ(cfg->takeover_timeout.count(), 30);
  EXPECT_EQ(cfg->recognize_command.back(), "{service_ip}");
  EXPECT_TRUE(cfg->health.enabled);
  EXPECT_TRUE(cfg->health.heartbeats);
  EXPECT_EQ(cfg->health.interval.count(), 250);
  EXPECT_EQ(cfg->health.dead_after.count(), 1500);
  EXPECT_EQ(cfg->health.peers.size(), 2u);
  EXPECT_EQ(cfg->health.check_failures, 2);
  EXPECT_EQ(cfg->health.service_ip, "203.0.113.10");
}

TEST(ConfigHealth, DefaultsAreOffAndMistakesAreNamed) {
  auto plain = parse_config("node = \"n1\"\n", "t");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->health.enabled);
  EXPECT_FALSE(plain->automatic);
  EXPECT_EQ(plain->health.interval.count(), 500);
  EXPECT_EQ(plain->health.dead_after.count(), 3000);

  auto no_health = parse_config("node = \"n1\"\n[failover]\nautomatic = true\n", "t");
  ASSERT_FALSE(no_health.ok());
  EXPECT_THAT(no_health.error().message, HasSubstr("needs a [health] section"));
  auto typo = parse_config("node = \"n1\"\n[health]\nheartbeat = false\n", "t");
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(typo.error().message, HasSubstr("unknown key 'health.heartbeat'"));
  auto no_peers =
      parse_config("node = \"n1\"\n[health]\nlisten = \"127.0.0.1:1\"\nkey_file = \"/k\"\n", "t");
  ASSERT_FALSE(no_peers.ok());
  EXPECT_THAT(no_peers.error().message, HasSubstr("health.peers"));
  auto external = parse_config(
      "node = \"n1\"\n[health]\nheartbeats = false\n[failover]\nautomatic = true\n", "t");
  EXPECT_TRUE(external.ok()) << external.error().message;
  auto fast = parse_config("node = \"n1\"\n[health]\ninterval_ms = 10\n", "t");
  ASSERT_FALSE(fast.ok());
  EXPECT_THAT(fast.error().message, HasSubstr("health.interval_ms"));
}

// Moved from the health library's tests (HealthOptions.ErrorsNameTheKey) with its assertions:
// the library's typed errors come out of lockferryd's config naming the key.
TEST(ConfigHealth, OptionErrorsNameTheKey) {
  const std::string head =
      "node = \"nodeA\"\n[health]\nlisten = \"127.0.0.1:7789\"\nkey_file = \"/k\"\n";
  auto parse = [&](const std::string& health_extra, const std::string& peers) {
    return parse_config(head + health_extra + "[health.peers]\n" + peers, "t");
  };
  auto only_self = parse("", "nodeA = \"127.0.0.1:7789\"\n");
  ASSERT_FALSE(only_self.ok());
  EXPECT_THAT(only_self.error().message, HasSubstr("health.peers"));
  const std::string self = "nodeA = \"127.0.0.1:7789\"\n";
  auto named = parse("", self + "nodeB = \"nodeb.example:7789\"\n");
  ASSERT_FALSE(named.ok());
  EXPECT_THAT(named.error().message, HasSubstr("not an IP address"));
  EXPECT_THAT(named.error().message, HasSubstr("'health.peers.nodeB'"));
  const std::string both = self + "nodeB = \"[::1]:7789\"\n";
  EXPECT_TRUE(parse("", both).ok());
  auto fast = parse("dead_after_ms = 600\ninterval_ms = 500\n", both);
  ASSERT_FALSE(fast.ok());
  EXPECT_THAT(fast.error().message, HasSubstr("dead_after_ms"));
  EXPECT_THAT(fast.error().message, HasSubstr("health.interval_ms"));
  // An external manager decides: no socket needed.
  auto external = parse_config("node = \"nodeA\"\n[health]\nheartbeats = false\n", "t");
  EXPECT_TRUE(external.ok()) << external.error().message;
}

}  // namespace
}  // namespace lockferry::daemon
