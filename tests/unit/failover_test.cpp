// SPDX-License-Identifier: Apache-2.0
// Failover: replay into a statd directory, recognition commands, and the migration as a whole
// (fencing, idempotence, one adopter) against a real dir:// store in a temp directory.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "dir_store_test_util.h"
#include "failover/migration.h"

namespace lockferry::failover {
namespace {

using testing::dir_names;
using testing::make_record;
using testing::read_raw_file;
using testing::TempDir;

struct Cluster {
  TempDir tmp;
  std::string store_dir = tmp / "store";
  std::string state_dir = tmp / "nodeB-nfs";
  std::string sm = state_dir + "/sm";
  std::unique_ptr<store::Store> store;

  Cluster() {
    std::filesystem::create_directories(sm);
    std::filesystem::create_directories(store_dir);
    store = testing::open_at(store_dir);
  }

  MigrateOptions options(const std::string& to = "nodeB") const {
    MigrateOptions o;
    o.from_node = "nodeA";
    o.to_node = to;
    o.statmon_dir = sm;
    o.recognize.method = RecognizeMethod::none;
    return o;
  }
};

TEST(Replay, WritesRecordsExactlyAsStatdWouldWithTheDirectorysOwner) {
  Cluster c;
  ASSERT_EQ(::chown(c.sm.c_str(), 4242, 4343), 0);
  auto a = make_record("nodeA", "192.0.2.101");
  auto report = replay({a}, ReplayOptions{c.sm, false});
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->written, 1u);
  EXPECT_EQ(read_raw_file(c.sm + "/192.0.2.101"), a.raw);
  struct stat st {};
  ASSERT_EQ(::stat((c.sm + "/192.0.2.101").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4242u);
  EXPECT_EQ(st.st_gid, 4343u);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(dir_names(c.sm), std::vector<std::string>{"192.0.2.101"}) << "no temp file left";
}

TEST(Replay, RunningItTwiceChangesNothing) {
  Cluster c;
  std::vector<MonitorRecord> records{make_record("nodeA", "192.0.2.101"),
                                     make_record("nodeA", "192.0.2.102")};
  ASSERT_TRUE(replay(records, ReplayOptions{c.sm, false}).ok());
  auto again = replay(records, ReplayOptions{c.sm, false});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->written, 0u);
  EXPECT_EQ(again->unchanged, 2u);
}

TEST(Replay, KeepsTheRecordsTheAdoptiveServerAlreadyHas) {
  Cluster c;
  testing::write_raw_file(c.sm + "/192.0.2.200", make_record("nodeB", "192.0.2.200").raw);
  ASSERT_TRUE(replay({make_record("nodeA", "192.0.2.101")}, ReplayOptions{c.sm, false}).ok());
  EXPECT_EQ(dir_names(c.sm), (std::vector<std::string>{"192.0.2.101", "192.0.2.200"}));
}

TEST(Replay, RefusesNamesThatEscapeTheDirectoryAndStillWritesTheGoodOnes) {
  Cluster c;
  std::vector<MonitorRecord> records;
  for (const std::string& bad :
       std::vector<std::string>{"../escaped", "/etc/passwd-lf", "a/b", "..", ".hidden", "x\ny",
                                std::string("nul\0name", 8), std::string(5000, 'n')}) {
    auto r = make_record("nodeA", "192.0.2.101");
    r.file_name = bad;
    records.push_back(r);
  }
  auto evil_content = make_record("nodeA", "192.0.2.103");
  evil_content.mon_name = "evil name with spaces";
  records.push_back(evil_content);
  records.push_back(make_record("nodeA", "192.0.2.102"));

  auto report = replay(records, ReplayOptions{c.sm, false});
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->written, 1u);
  EXPECT_EQ(report->refused, records.size() - 1);
  EXPECT_EQ(dir_names(c.sm), std::vector<std::string>{"192.0.2.102"});
  EXPECT_EQ(dir_names(c.state_dir), std::vector<std::string>{"sm"}) << "nothing written beside sm/";
  EXPECT_FALSE(std::filesystem::exists("/etc/passwd-lf"));
  for (const auto& e : report->entries) {
    if (e.action == "refused") {
      EXPECT_FALSE(e.reason.empty());
    }
  }
}

TEST(Replay, AFileWithSeveralLinesIsWrittenWholeAsStatdWroteIt) {
  Cluster c;
  const std::string real =
      read_raw_file(std::string(LOCKFERRY_TEST_DATA) + "/statd/198.51.100.2.record");
  auto lines = statmon::parse_record_file("198.51.100.2", real);
  ASSERT_TRUE(lines.ok()) << lines.error().message;
  ASSERT_EQ(lines->size(), 2u);
  for (auto& l : *lines) l.node = "nodeA";
  auto report = replay(*lines, ReplayOptions{c.sm, false});
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->written, 1u);
  EXPECT_EQ(read_raw_file(c.sm + "/198.51.100.2"), real);
}

TEST(Replay, DryRunWritesNothing) {
  Cluster c;
  auto report = replay({make_record("nodeA", "192.0.2.101")}, ReplayOptions{c.sm, true});
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->written, 1u);
  EXPECT_TRUE(dir_names(c.sm).empty());
}

TEST(Replay, AMissingStatdDirectoryIsAClearError) {
  Cluster c;
  auto report = replay({make_record("nodeA", "x")}, ReplayOptions{c.tmp / "nope", false});
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.error().message.find("nope"), std::string::npos);
}

TEST(Recognize, FillsInTheServiceIpAndStateDirectory) {
  TempDir tmp;
  RecognizeOptions o;
  o.method = RecognizeMethod::command;
  o.service_ip = "192.0.2.10";
  o.state_dir = tmp.path();
  o.command = {"sh", "-c", "echo {service_ip} > {state_dir}/out"};
  auto report = recognize(o);
  EXPECT_TRUE(report.ok) << report.message;
  EXPECT_EQ(read_raw_file(tmp / "out"), "192.0.2.10\n");
}

TEST(Recognize, SmNotifyNeedsTheServiceIp) {
  RecognizeOptions o;
  o.method = RecognizeMethod::sm_notify;
  o.state_dir = "/tmp";
  auto report = recognize(o);
  EXPECT_FALSE(report.ok);
  EXPECT_NE(report.message.find("service IP"), std::string::npos);
  EXPECT_TRUE(report.commands.empty());
}

TEST(Recognize, SmNotifyCommandLineIsForcedBoundedAndFromTheServiceIp) {
  RecognizeOptions o;
  o.service_ip = "192.0.2.10";
  o.state_dir = "/var/lib/nfs";
  auto cmds = recognize_commands(o);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0], (std::vector<std::string>{"sm-notify", "-f", "-d", "-m", "1", "-P",
                                               "/var/lib/nfs", "-v", "192.0.2.10"}));
}

TEST(Recognize, ClientsLeftInSmBakAreReportedAsNotNotified) {
  TempDir tmp;
  std::filesystem::create_directories(tmp / "sm.bak");
  RecognizeOptions o;
  o.method = RecognizeMethod::sm_notify;
  o.service_ip = "192.0.2.10";
  o.state_dir = tmp.path();
  o.clients = {"192.0.2.101", "192.0.2.102"};
  // Stands in for sm-notify: the second client never answered, so its record stays in sm.bak/.
  o.command = {"sh", "-c", "touch {state_dir}/sm.bak/192.0.2.102"};
  auto report = recognize(o);
  EXPECT_TRUE(report.ok) << report.message;
  EXPECT_EQ(report.notified, std::vector<std::string>{"192.0.2.101"});
  EXPECT_EQ(report.not_notified, std::vector<std::string>{"192.0.2.102"});
  EXPECT_NE(report.message.find("did not acknowledge"), std::string::npos);
}

TEST(Recognize, AHangingCommandIsKilledAndReported) {
  RecognizeOptions o;
  o.method = RecognizeMethod::command;
  o.command = {"sleep", "30"};
  o.timeout = std::chrono::seconds(1);
  auto report = recognize(o);
  EXPECT_FALSE(report.ok);
  ASSERT_EQ(report.commands.size(), 1u);
  EXPECT_TRUE(report.commands[0].timed_out);
  EXPECT_NE(report.message.find("timed out"), std::string::npos);
}

TEST(Migrate, ReplaysTheOldPrimarysRecordsAndFencesIt) {
  Cluster c;
  ASSERT_TRUE(c.store->put_monitor(make_record("nodeA", "192.0.2.101")).ok());
  ASSERT_TRUE(c.store->put_monitor(make_record("nodeA", "192.0.2.102")).ok());
  auto report = migrate(*c.store, c.options());
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_TRUE(report->ok) << report->message;
  EXPECT_EQ(report->records, 2u);
  EXPECT_EQ(report->epoch, 1u);
  EXPECT_EQ(dir_names(c.sm), (std::vector<std::string>{"192.0.2.101", "192.0.2.102"}));

  // The old primary, only partitioned, comes back and writes with the epoch it had.
  auto late = c.store->put_monitor(make_record("nodeA", "192.0.2.103", 0));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, store::kErrFenced);
  auto late_delete = c.store->delete_monitor("nodeA", "192.0.2.101", 0);
  ASSERT_FALSE(late_delete.ok());
  EXPECT_EQ(c.store->list_monitor("nodeA")->size(), 2u);

  auto migrations = c.store->list_migrations();
  ASSERT_TRUE(migrations.ok());
  ASSERT_EQ(migrations->size(), 1u);
  EXPECT_EQ((*migrations)[0].to_node, "nodeB");
  EXPECT_EQ((*migrations)[0].result, "ok");
}

// A recognition that finished with a client still pending (sm-notify gave up on it, or the
// built-in notifier never got its acknowledgement) is a finished migration that says so: the
// stored result names it, and the success metric reads it as a problem.
TEST(Migrate, AClientThatNeverAcknowledgedIsInTheStoredResult) {
  Cluster c;
  ASSERT_TRUE(c.store->put_monitor(make_record("nodeA", "192.0.2.101")).ok());
  ASSERT_TRUE(c.store->put_monitor(make_record("nodeA", "192.0.2.102")).ok());
  auto o = c.options();
  o.recognize.method = RecognizeMethod::sm_notify;
  o.recognize.service_ip = "192.0.2.10";
  // What sm-notify leaves when one client never answered: its record pending in sm.bak/.
  o.recognize.command = {"sh", "-c",
                         "mkdir -p {state_dir}/sm.bak && : >{state_dir}/sm.bak/192.0.2.102"};
  auto report = migrate(*c.store, o);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_TRUE(report->ok) << report->message;
  EXPECT_EQ(report->message, "1 client(s) did not acknowledge SM_NOTIFY");
  auto migrations = c.store->list_migrations();
  ASSERT_TRUE(migrations.ok());
  ASSERT_EQ(migrations->size(), 1u);
  EXPECT_EQ((*migrations)[0].result, "1 client(s) did not acknowledge SM_NOTIFY");
}

TEST(Migrate, RunningItAgainOnTheSameNodeChangesNothing) {
  Cluster c;
  ASSERT_TRUE(c.store->put_monitor(make_record("nodeA", "192.0.2.101")).ok());
  ASSERT_TRUE(migrate(*c.store, c.options()).ok());
  auto again = migrate(*c.store, c.options());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->repeated);
  EXPECT_EQ(again->epoch, 1u) << "no second fencing bump";
  EXPECT_EQ(again->replay.written, 0u);
  EXPECT_EQ(again->replay.unchanged, 1u);
}

TEST(Migrate, ASecondAdoptiveNodeIsRefusedUnlessForced) {
  Cluster c;
  ASSERT_TRUE(c.store->put_monitor(make_record("nodeA", "192.0.2.101")).ok());
  ASSERT_TRUE(migrate(*c.store, c.options("nodeB")).ok());
  auto second = migrate(*c.store, c.options("nodeC"));
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("already adopted by nodeB"), std::string::npos)
      << second.error().message;
  auto o = c.options("nodeC");
  o.force = true;
  auto forced = migrate(*c.store, o);
  ASSERT_TRUE(forced.ok()) << forced.error().message;
  EXPECT_EQ(forced->epoch, 2u);
}

TEST(Migrate, AnAdopterInterruptedRightAfterItsFenceResumesAndNoOtherNodeTakesOver) {
  Cluster c;
  ASSERT_TRUE(c.store->put_monitor(make_record("nodeA", "192.0.2.101")).ok());
  // nodeB won the fence and died before it wrote its migration record (or replayed anything).
  ASSERT_EQ(*c.store->bump_epoch("nodeA", 0, "nodeB"), 1u);
  ASSERT_TRUE(c.store->list_migrations()->empty());

  auto other = migrate(*c.store, c.options("nodeC"));
  ASSERT_FALSE(other.ok()) << "nodeC fenced nodeA again at epoch " << other->epoch;
  EXPECT_NE(other.error().message.find("was already adopted by nodeB at epoch 1"),
            std::string::npos)
      << other.error().message;
  EXPECT_EQ(*c.store->epoch("nodeA"), 1u);

  auto resumed = migrate(*c.store, c.options("nodeB"));
  ASSERT_TRUE(resumed.ok()) << resumed.error().message;
  EXPECT_TRUE(resumed->repeated);
  EXPECT_EQ(resumed->epoch, 1u) << "no second fencing bump";
  EXPECT_EQ(dir_names(c.sm), std::vector<std::string>{"192.0.2.101"});
}

TEST(Migrate, AnEpochFencedByAnOlderLockferryBelongsToItsMigrationRecord) {
  Cluster c;
  ASSERT_TRUE(c.store->put_monitor(make_record("nodeA", "192.0.2.101")).ok());
  // What lockferry wrote before the adopter was part of the fence: an epoch file naming nobody,
  // then the migration record.
  std::filesystem::create_directories(c.store_dir + "/nodeA/epochs");
  testing::write_raw_file(
      c.store_dir + "/nodeA/epochs/1",
      R"({"format": 1, "node": "nodeA", "epoch": 1, "by_host": "b", "by_pid": 7, "at_ns": 5})");
  ASSERT_EQ(*c.store->fence("nodeA"), (store::Fence{1, ""}));
  ASSERT_TRUE(c.store->put_migration({"nodeA", "nodeB", 1, 100, 200, 1, "", "none", "ok"}).ok());

  auto other = migrate(*c.store, c.options("nodeC"));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message.find("was already adopted by nodeB at epoch 1"),
            std::string::npos)
      << other.error().message;
  auto again = migrate(*c.store, c.options("nodeB"));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->repeated);
}

TEST(Migrate, ATypoIsRefusedEvenInADryRunAndForceAdoptsAnEmptyNode) {
  Cluster c;
  ASSERT_TRUE(c.store->put_monitor(make_record("nodeA", "192.0.2.101")).ok());
  auto o = c.options();
  o.from_node = "nodeAA";
  o.dry_run = true;
  auto dry = migrate(*c.store, o);
  ASSERT_FALSE(dry.ok());
  EXPECT_NE(dry.error().message.find("node nodeAA is unknown to the store dir://" + c.store_dir +
                                     ": it has no monitor records"),
            std::string::npos)
      << dry.error().message;
  EXPECT_NE(dry.error().message.find("The store knows these nodes: nodeA."), std::string::npos);
  o.dry_run = false;
  EXPECT_FALSE(migrate(*c.store, o).ok());
  EXPECT_EQ(*c.store->list_nodes(), std::vector<std::string>{"nodeA"}) << "nothing fenced";
  EXPECT_TRUE(c.store->list_migrations()->empty());

  o.adopt_unknown = true;
  auto forced = migrate(*c.store, o);
  ASSERT_TRUE(forced.ok()) << forced.error().message;
  EXPECT_EQ(forced->records, 0u);
  EXPECT_EQ(*c.store->fence("nodeAA"), (store::Fence{1, "nodeB"}));
  // An empty store says so.
  Cluster empty;
  auto none = migrate(*empty.store, empty.options());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("knows no node at all"), std::string::npos)
      << none.error().message;
}

TEST(Migrate, DryRunNeitherFencesNorWrites) {
  Cluster c;
  ASSERT_TRUE(c.store->put_monitor(make_record("nodeA", "192.0.2.101")).ok());
  auto o = c.options();
  o.dry_run = true;
  auto report = migrate(*c.store, o);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(*c.store->epoch("nodeA"), 0u);
  EXPECT_TRUE(dir_names(c.sm).empty());
  EXPECT_TRUE(c.store->list_migrations()->empty());
}

TEST(Migrate, ANodeCannotAdoptItself) {
  Cluster c;
  auto report = migrate(*c.store, c.options("nodeA"));
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.error().message.find("onto itself"), std::string::npos);
}

}  // namespace
}  // namespace lockferry::failover
