// SPDX-License-Identifier: Apache-2.0
// Fault injection with real processes, no mocks: lockferryd SIGKILLed at random points while a
// statd-like writer keeps writing, a ring buffer too small for the burst, a store that fills up
// or turns read-only, a store lost during a migration, and `lockferry migrate` or lockferryd
// SIGKILLed mid-migration. Each test ends by proving that nothing acknowledged was lost: the
// store holds exactly what the monitor directory holds, or the replayed directory exactly what
// the store holds. LOCKFERRY_FAULT_SEED=N replays the random choices of a failed run.
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <random>

#include "bpf_env.h"
#include "common/process.h"
#include "fault_env.h"
#include "statmon/record.h"

namespace lockferry::faults {
namespace {

std::uint32_t fault_seed() {
  if (const char* s = std::getenv("LOCKFERRY_FAULT_SEED"))
    return static_cast<std::uint32_t>(std::strtoul(s, nullptr, 10));
  return std::random_device{}();
}

class Faults : public ::testing::Test {
 protected:
  void SetUp() override {
    LOCKFERRY_REQUIRE_BPF_OR_SKIP();
    char tmpl[] = "/tmp/lockferry-faults-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    sm_ = root_ + "/sm";
    store_ = root_ + "/store";
    socket_ = root_ + "/ctl.sock";
    log_ = root_ + "/lockferryd.log";
    pin_dir_ = "/sys/fs/bpf/lockferry-faults-test-" + std::to_string(::getpid());
    fs::create_directories(sm_);
    fs::create_directories(store_);
    seed_ = fault_seed();
    rng_.seed(seed_);
    std::cout << "[ seed     ] LOCKFERRY_FAULT_SEED=" << seed_ << "\n";
  }

  void TearDown() override {
    daemon_.kill_and_reap();
    mount_.reset();
    std::error_code ec;
    if (HasFailure())
      std::cout << "lockferryd log (" << log_ << "):\n" << file_text(log_).substr(0, 20000);
    fs::remove_all(root_, ec);
    // SIGKILLed daemons leave their pins (maps and programs, and the lock capture's "-locks"
    // directory): remove every pin directory this test's name starts.
    for (const auto& e : fs::directory_iterator(fs::path(pin_dir_).parent_path(), ec)) {
      if (e.path().string().starts_with(pin_dir_)) fs::remove_all(e.path(), ec);
    }
  }

  void write_config(const std::string& node, int reconcile_s, int ring_kb = 1024) {
    std::ofstream(root_ + "/lockferry.toml")
        << "node = \"" << node << "\"\nstore = \"dir://" << store_ << "\"\n"
        << "[capture]\nmonitor_dirs = [\"" << sm_ << "\"]\nmode = \"" << mode_ << "\"\n"
        << "reconcile_interval_s = " << reconcile_s << "\nring_buffer_kb = " << ring_kb << "\n"
        << "pin_dir = \"" << pin_dir_ << "\"\n[control]\nsocket = \"" << socket_ << "\"\n"
        << "[failover]\nstatmon_dir = \"" << sm_ << "\"\nrecognize = \"none\"\n";
  }

  // Starts lockferryd and waits until its control socket answers (after the start reconcile).
  void start_daemon() {
    ASSERT_TRUE(
        daemon_.spawn({kBinDir + "lockferryd", "--config", root_ + "/lockferry.toml"}, log_))
        << "cannot start lockferryd (is it built?)";
    for (auto deadline = std::chrono::steady_clock::now() + 20s;
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(10ms)) {
      if (control(socket_, "status").ok()) return;
      int code = 0;
      if (daemon_.wait_exit(0ms, &code))
        FAIL() << "lockferryd exited with " << code << "\n" << file_text(log_);
    }
    FAIL() << "lockferryd did not become ready\n" << file_text(log_);
  }

  nlohmann::json status() {
    auto s = control(socket_, "status");
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? *s : nlohmann::json::object();
  }

  // Waits until the store holds exactly what the monitor directory holds.
  ::testing::AssertionResult store_matches_dir(const std::string& node,
                                               std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::map<std::string, std::string> in_dir, stored;
    do {
      in_dir = dir_state(sm_);
      stored = store_state(store_, node);
      if (in_dir == stored) return ::testing::AssertionSuccess() << in_dir.size() << " records";
      std::this_thread::sleep_for(20ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return ::testing::AssertionFailure()
           << "store and monitor directory differ (" << in_dir.size() << " files in the directory, "
           << stored.size() << " in the store):\n"
           << describe_difference(in_dir, stored);
  }

  // Puts `n` records of node `from` into the store the way its lockferryd would.
  void seed_store(const std::string& from, int n) {
    auto store = store::open_store("dir://" + store_);
    ASSERT_TRUE(store.ok()) << store.error().message;
    for (int i = 0; i < n; ++i) {
      auto records = statmon::parse_record_file("client" + std::to_string(i),
                                                statd_line("client" + std::to_string(i), from));
      ASSERT_TRUE(records.ok()) << records.error().message;
      for (auto& r : *records) r.node = from;
      ASSERT_TRUE((*store)->put_monitor_file(*records).ok());
    }
  }

  std::string mode_ = "bpf";  // the capture mode write_config() writes

  std::uint64_t epoch_of(const std::string& node) {
    auto store = store::open_store("dir://" + store_);
    if (!store) return ~0ull;
    auto e = (*store)->epoch(node);
    return e ? *e : ~0ull;
  }

  std::vector<store::MigrationRecord> migrations() {
    auto store = store::open_store("dir://" + store_);
    if (!store) return {};
    auto m = (*store)->list_migrations();
    return m ? *m : std::vector<store::MigrationRecord>{};
  }

  process::CommandResult cli(std::vector<std::string> args, std::chrono::seconds timeout = 60s) {
    args.insert(args.begin(), kBinDir + "lockferry");
    auto r = process::run_command(args, timeout);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : process::CommandResult{};
  }

  std::vector<std::string> migrate_args(const std::string& sm, bool via_store = true) {
    std::vector<std::string> a{"migrate",       "--from", "nodeA",       "--node", "nodeB",
                               "--statmon-dir", sm,       "--recognize", "none"};
    if (via_store)
      a.insert(a.end(), {"--store", "dir://" + store_});
    else
      a.insert(a.end(), {"--socket", socket_});
    return a;
  }

  std::string root_, sm_, store_, socket_, log_, pin_dir_;
  Child daemon_;
  std::unique_ptr<TmpfsMount> mount_;
  std::uint32_t seed_ = 0;
  std::mt19937 rng_;
};

// A statd-like writer on its own thread: creates, rewrites (both temp-file styles) and deletes
// records of a fixed set of clients at random until stopped.
class StatdWriter {
 public:
  StatdWriter(std::string dir, std::uint32_t seed, int clients)
      : dir_(std::move(dir)), rng_(seed), clients_(clients) {
    thread_ = std::thread([this] { run(); });
  }
  ~StatdWriter() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t ops() const { return ops_; }

 private:
  void run() {
    std::uniform_int_distribution<int> client(0, clients_ - 1), op(0, 9);
    std::uint64_t version = 0;
    while (!stop_) {
      const std::string name = "192.0.2." + std::to_string(client(rng_));
      const bool exists = fs::exists(dir_ + "/" + name);
      const int o = op(rng_);
      if (!exists)
        statd_create(dir_, name, "nodeA");
      else if (o < 6)
        statd_rewrite(dir_, name, "nodeA-v" + std::to_string(++version), o < 2);
      else
        statd_delete(dir_, name);
      ++ops_;
      std::this_thread::sleep_for(std::chrono::microseconds(200 + rng_() % 800));
    }
  }

  std::string dir_;
  std::mt19937 rng_;
  int clients_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> ops_{0};
  std::thread thread_;
};

// The capture's own faults, once per BPF hook set (the host runs those its kernel loads).
class CaptureFaults : public Faults, public ::testing::WithParamInterface<capture::Mode> {
 protected:
  void SetUp() override {
    LOCKFERRY_REQUIRE_HOOKS_OR_SKIP(GetParam());
    Faults::SetUp();
    mode_ = capture::to_string(GetParam());
  }
};

TEST_P(CaptureFaults, KillNineOfLockferrydAtRandomPointsLosesNoRecord) {
  // No periodic reconcile: only the start scan and live events may repair the store.
  write_config("nodeA", 3600);
  StatdWriter writer(sm_, seed_, 40);
  std::uniform_int_distribution<int> alive_ms(20, 600), dead_ms(0, 300);
  for (int round = 0; round < 6; ++round) {
    ASSERT_NO_FATAL_FAILURE(start_daemon());
    std::this_thread::sleep_for(std::chrono::milliseconds(alive_ms(rng_)));
    daemon_.signal(SIGKILL);
    ASSERT_TRUE(daemon_.wait_exit(5s));
    std::this_thread::sleep_for(std::chrono::milliseconds(dead_ms(rng_)));
  }
  ASSERT_NO_FATAL_FAILURE(start_daemon());
  std::this_thread::sleep_for(300ms);
  writer.stop();
  std::cout << "[ measure  ] " << writer.ops() << " statd operations across 6 SIGKILLs\n";
  EXPECT_TRUE(store_matches_dir("nodeA", 5s)) << "live capture after the last restart";

  // And with the writer stopped: a SIGKILL, a restart, and the start scan alone is exact.
  daemon_.signal(SIGKILL);
  ASSERT_TRUE(daemon_.wait_exit(5s));
  statd_create(sm_, "192.0.2.250");
  statd_delete(sm_, dir_state(sm_).begin()->first);
  ASSERT_NO_FATAL_FAILURE(start_daemon());
  EXPECT_TRUE(store_matches_dir("nodeA", 0ms)) << "right after the start reconcile";
  EXPECT_EQ(status()["records"]["store_errors"], 0);
}

TEST_P(CaptureFaults, RingBufferOverflowIsRepairedByTheRescan) {
  write_config("nodeA", 3600, /*ring_kb=*/4);
  ASSERT_NO_FATAL_FAILURE(start_daemon());
  EXPECT_NE(status()["capture"]["reason"].get<std::string>().find("4 KiB ring buffer"),
            std::string::npos);
  // Stop the reader so the burst cannot be drained while it happens.
  daemon_.signal(SIGSTOP);
  for (int i = 0; i < 300; ++i) statd_create(sm_, "198.51.100." + std::to_string(i));
  for (int i = 0; i < 100; ++i)
    statd_rewrite(sm_, "198.51.100." + std::to_string(i), "nodeA-2", i % 2 == 0);
  for (int i = 200; i < 250; ++i) statd_delete(sm_, "198.51.100." + std::to_string(i));
  daemon_.signal(SIGCONT);
  EXPECT_TRUE(store_matches_dir("nodeA", 10s));
  auto s = status();
  std::cout << "[ measure  ] capture " << s["capture"].dump() << ", reconcile "
            << s["reconcile"].dump() << "\n";
  EXPECT_GT(s["capture"]["drops"].get<std::uint64_t>(), 0u)
      << "the 4 KiB ring buffer must have overflowed";
  EXPECT_GE(s["reconcile"]["runs"].get<std::uint64_t>(), 2u) << "a drop triggers a rescan";
  EXPECT_NE(file_text(log_).find("dropped"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(HookSets, CaptureFaults, ::testing::ValuesIn(test::hook_sets_to_test()),
                         test::hook_set_name);

// The store fills up (ENOSPC) or turns read-only (EROFS) under a running lockferryd.
class StoreFaults : public Faults, public ::testing::WithParamInterface<const char*> {};

TEST_P(StoreFaults, WritesFailClearlyAreRetriedAndNothingIsLost) {
  const std::string fault = GetParam();
  mount_ = std::make_unique<TmpfsMount>(store_, "512k");
  ASSERT_TRUE(mount_->mounted()) << "cannot mount a tmpfs on " << store_;
  write_config("nodeA", 1);
  for (int i = 0; i < 5; ++i) statd_create(sm_, "192.0.2." + std::to_string(i));
  ASSERT_NO_FATAL_FAILURE(start_daemon());
  ASSERT_TRUE(store_matches_dir("nodeA", 5s));
  const auto before = store_state(store_, "nodeA");

  // A full file system still lets files be removed (and that frees space): delete first there.
  const bool enospc = fault == std::string("ENOSPC");
  if (enospc) {
    statd_delete(sm_, "192.0.2.2");
    ASSERT_TRUE(store_matches_dir("nodeA", 5s));
  }
  std::string filler;
  if (enospc)
    filler = fill_up(store_);
  else
    ASSERT_TRUE(mount_->set_read_only(true));

  statd_create(sm_, "192.0.2.100");                    // new record
  statd_rewrite(sm_, "192.0.2.1", "nodeA-v2", false);  // changed record
  if (!enospc) statd_delete(sm_, "192.0.2.2");         // removed record
  bool saw_error = false;
  for (int i = 0; i < 300 && !saw_error; ++i, std::this_thread::sleep_for(10ms))
    saw_error = status()["records"]["store_errors"].get<std::uint64_t>() > 0;
  ASSERT_TRUE(saw_error) << "the failed write was not counted";
  std::this_thread::sleep_for(1500ms);  // at least one reconcile retry against the broken store

  auto s = status();
  EXPECT_NE(s["records"]["last_error"].get<std::string>().find(fault), std::string::npos)
      << s.dump();
  auto text = cli({"status", "--socket", socket_});
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("last error:"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find(fault), std::string::npos) << text.output;
  // What was stored before is still there: a failed write never removes the last good record.
  auto during = store_state(store_, "nodeA");
  for (const auto& [name, content] : before) {
    if (name == "192.0.2.2" && enospc) continue;  // deleted before the file system filled up
    EXPECT_EQ(during[name], content) << name;
  }
  EXPECT_EQ(during.count("192.0.2.100"), 0u);

  // Space (or write access) comes back: the periodic reconcile retries and catches up.
  if (!filler.empty())
    ASSERT_TRUE(fs::remove(filler));
  else
    ASSERT_TRUE(mount_->set_read_only(false));
  EXPECT_TRUE(store_matches_dir("nodeA", 10s));
  EXPECT_EQ(control(socket_, "status").ok(), true) << "lockferryd kept running";
}

INSTANTIATE_TEST_SUITE_P(Faults, StoreFaults, ::testing::Values("ENOSPC", "EROFS"));

TEST_F(Faults, AMigrationAgainstAnUnwritableStoreFailsCleanlyAndCanBeRerun) {
  mount_ = std::make_unique<TmpfsMount>(store_, "4m");
  ASSERT_TRUE(mount_->mounted());
  ASSERT_NO_FATAL_FAILURE(seed_store("nodeA", 20));
  const auto records = store_state(store_, "nodeA");
  ASSERT_TRUE(mount_->set_read_only(true));

  auto failed = cli(migrate_args(sm_));
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  EXPECT_NE(failed.output.find("EROFS"), std::string::npos) << failed.output;
  EXPECT_TRUE(dir_state(sm_).empty()) << "nothing replayed before the old primary is fenced";
  EXPECT_EQ(epoch_of("nodeA"), 0u);

  ASSERT_TRUE(mount_->set_read_only(false));
  auto rerun = cli(migrate_args(sm_));
  EXPECT_EQ(rerun.exit_code, 0) << rerun.output;
  EXPECT_EQ(dir_state(sm_), records);
  EXPECT_EQ(epoch_of("nodeA"), 1u);
}

TEST_F(Faults, AStoreLostHalfWayThroughAMigrationLeavesItRerunnable) {
  mount_ = std::make_unique<TmpfsMount>(store_, "4m");
  ASSERT_TRUE(mount_->mounted());
  ASSERT_NO_FATAL_FAILURE(seed_store("nodeA", 20));
  const auto records = store_state(store_, "nodeA");
  // The recognition step runs after fencing and replay: the store goes read-only right then, so
  // the migration's final record cannot be written.
  const std::string script = root_ + "/store-goes-read-only";
  std::ofstream(script) << "#!/bin/sh\nexec mount -o remount,ro " << store_ << "\n";
  fs::permissions(script, fs::perms::owner_all);
  auto args = migrate_args(sm_);
  args[8] = "command";
  args.insert(args.end(), {"--command", script});
  auto half = cli(args);
  EXPECT_NE(half.output.find("could not record the finished migration"), std::string::npos)
      << half.output;
  ASSERT_TRUE(mount_->set_read_only(false));
  auto m = migrations();
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].result, "running") << "the store shows the migration never finished";

  auto rerun = cli(migrate_args(sm_));
  EXPECT_EQ(rerun.exit_code, 0) << rerun.output;
  EXPECT_EQ(dir_state(sm_), records);
  EXPECT_EQ(epoch_of("nodeA"), 1u) << "a re-run does not fence again";
  m = migrations();
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].result, "ok");
}

TEST_F(Faults, KillNineOfLockferryMigrateAtRandomPointsThenARerunCompletesIt) {
  constexpr int kRecords = 1000;
  // Round 0 runs uninterrupted, for comparison.
  int interrupted = 0, double_fenced = 0, litter = 0;
  for (int round = 0; round < 6; ++round) {
    store_ = root_ + "/store" + std::to_string(round);
    const std::string sm = root_ + "/sm" + std::to_string(round);
    fs::create_directories(sm);
    ASSERT_NO_FATAL_FAILURE(seed_store("nodeA", kRecords));
    const auto records = store_state(store_, "nodeA");
    ASSERT_EQ(records.size(), static_cast<std::size_t>(kRecords));

    std::vector<std::string> argv{kBinDir + "lockferry"};
    for (const auto& a : migrate_args(sm)) argv.push_back(a);
    Child migrate;
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(migrate.spawn(argv, root_ + "/migrate.log"));
    if (round == 0) {
      int code = -1;
      ASSERT_TRUE(migrate.wait_exit(120s, &code));
      ASSERT_EQ(code, 0) << file_text(root_ + "/migrate.log");
      std::cout << "[ measure  ] migrating " << kRecords << " records takes "
                << std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - t0)
                       .count()
                << " ms\n";
    } else {
      // The kill point is a number of records already replayed (0: during start-up and
      // fencing), so it lands mid-migration however fast this machine is today.
      std::uniform_int_distribution<int> after(0, kRecords - 1);
      const int k = after(rng_);
      if (k == 0) std::this_thread::sleep_for(std::chrono::milliseconds(rng_() % 30));
      while (k > 0 && static_cast<int>(dir_state(sm).size()) < k && !migrate.wait_exit(0ms))
        std::this_thread::sleep_for(1ms);
      int code = -1;
      if (migrate.running() && !migrate.wait_exit(0ms, &code)) {
        migrate.signal(SIGKILL);
        ASSERT_TRUE(migrate.wait_exit(5s));
        ++interrupted;
      } else {
        std::cout << "[ measure  ] round " << round << ": finished (exit " << code
                  << ") before its SIGKILL\n";
      }
      auto rerun = cli(migrate_args(sm));
      EXPECT_EQ(rerun.exit_code, 0) << "round " << round << ": " << rerun.output;
    }
    EXPECT_EQ(dir_state(sm), records) << "round " << round << ": the replay is complete and exact";
    const auto epoch = epoch_of("nodeA");
    // Killed between fencing and recording the migration, too: the fence names nodeB, so the
    // rerun resumes at it instead of fencing again.
    EXPECT_EQ(epoch, 1u) << "round " << round;
    if (epoch != 1) ++double_fenced;
    auto m = migrations();
    ASSERT_FALSE(m.empty());
    EXPECT_EQ(m.back().epoch, epoch);
    EXPECT_EQ(m.back().result, "ok") << "round " << round;
    for (const auto& e : fs::directory_iterator(sm))
      if (e.path().filename().string()[0] == '.') ++litter;
  }
  std::cout << "[ measure  ] " << interrupted << " of 5 migrations SIGKILLed mid-way, "
            << double_fenced << " fenced twice, " << litter
            << " temp files left in statd directories\n";
  EXPECT_GE(interrupted, 3) << "too few runs were actually interrupted";
}

TEST_F(Faults, LockferrydKilledDuringAMigrationThenARerunCompletesIt) {
  ASSERT_NO_FATAL_FAILURE(seed_store("nodeA", 30));
  const auto records = store_state(store_, "nodeA");
  write_config("nodeB", 3600);
  ASSERT_NO_FATAL_FAILURE(start_daemon());
  // The migration runs inside lockferryd; its recognition step takes long enough to kill it.
  auto args = migrate_args(sm_, /*via_store=*/false);
  args[8] = "command";
  args.insert(args.end(), {"--command", "sleep", "3"});
  std::vector<std::string> argv{kBinDir + "lockferry"};
  argv.insert(argv.end(), args.begin(), args.end());
  Child migrate;
  ASSERT_TRUE(migrate.spawn(argv, root_ + "/migrate.log"));
  std::this_thread::sleep_for(1s);
  daemon_.signal(SIGKILL);
  ASSERT_TRUE(daemon_.wait_exit(5s));
  int code = 0;
  ASSERT_TRUE(migrate.wait_exit(10s, &code));
  EXPECT_NE(code, 0) << "the caller learns that the migration did not finish";

  ASSERT_NO_FATAL_FAILURE(start_daemon());
  auto rerun = cli(migrate_args(sm_, false));
  EXPECT_EQ(rerun.exit_code, 0) << rerun.output;
  EXPECT_EQ(dir_state(sm_), records);
  EXPECT_EQ(epoch_of("nodeA"), 1u);
  auto m = migrations();
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].result, "ok");
  // The adoptive node's own lockferryd captured the replayed records as its own.
  EXPECT_TRUE(store_matches_dir("nodeB", 5s));
}

TEST_F(Faults, HostileFilesInTheMonitorDirectoryAreSkippedAndGoodRecordsKept) {
  write_config("nodeA", 1);
  ASSERT_NO_FATAL_FAILURE(start_daemon());
  statd_create(sm_, "192.0.2.1");
  {
    std::ofstream big(sm_ + "/big", std::ios::binary);
    big << std::string(8 << 20, 'x');  // 8 MiB
  }
  std::ofstream(sm_ + "/binary", std::ios::binary) << std::string(
      "\x7f"
      "ELF\0\0\x01\x02",
      8);
  ASSERT_EQ(::mkfifo((sm_ + "/fifo").c_str(), 0600), 0);  // would block a naive read
  std::ofstream(root_ + "/outside") << statd_line("outside");
  fs::create_symlink(root_ + "/outside", sm_ + "/outside");  // content from elsewhere
  fs::create_symlink("/etc/shadow", sm_ + "/shadow");
  fs::create_directories(sm_ + "/subdir");
  std::ofstream(sm_ + "/" + std::string("latin1-\xe9", 8)) << statd_line("latin1");
  // The longest names statd writes (NAME_MAX): the dir:// store keeps them under an encoded name.
  std::ofstream(sm_ + "/" + std::string(250, 'n')) << statd_line(std::string(250, 'n'));
  std::ofstream(sm_ + "/" + std::string(255, 'n')) << statd_line(std::string(255, 'n'));
  statd_create(sm_, "192.0.2.2");
  ASSERT_EQ(control(socket_, "reconcile").ok(), true);

  auto stored = store_state(store_, "nodeA");
  std::map<std::string, std::string> expected{
      {"192.0.2.1", statd_line("192.0.2.1")},
      {"192.0.2.2", statd_line("192.0.2.2")},
      {std::string(250, 'n'), statd_line(std::string(250, 'n'))},
      {std::string(255, 'n'), statd_line(std::string(255, 'n'))}};
  EXPECT_EQ(stored, expected) << describe_difference(expected, stored);
  auto s = status();
  EXPECT_GE(s["records"]["bad"].get<std::uint64_t>(), 5u) << s.dump();
  statd_create(sm_, "192.0.2.3");
  expected["192.0.2.3"] = statd_line("192.0.2.3");
  for (int i = 0; i < 200 && store_state(store_, "nodeA") != expected; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(store_state(store_, "nodeA"), expected) << "still capturing after all of that";
}

}  // namespace
}  // namespace lockferry::faults

namespace lockferry::faults {
namespace {

// The real daemon's handlers, not just the socket framing (tests/unit/control_test.cpp): fields
// of the wrong type or naming things outside the store get an error, and lockferryd keeps going.
TEST_F(Faults, MalformedControlRequestsGetAnErrorAndLockferrydKeepsServing) {
  write_config("nodeA", 3600);
  ASSERT_NO_FATAL_FAILURE(start_daemon());
  const std::vector<nlohmann::json> bad{
      {{"command", "records"}, {"node", 5}},
      {{"command", "records"}, {"node", "../../etc"}},
      {{"command", "records"}, {"node", std::string("x\0y", 3)}},
      {{"command", "migrate"}, {"from", nlohmann::json::array({"nodeB"})}},
      {{"command", "migrate"}, {"from", "../nodeB"}, {"recognize", "none"}},
      {{"command", "migrate"}, {"from", "nodeB"}, {"statmon_dir", 7}},
      {{"command", "migrate"}, {"from", "nodeB"}, {"recognize", "rm -rf /"}},
      {{"command", "migrate"}, {"from", "nodeB"}, {"timeout_s", -1}},
      {{"command", std::string(100000, 'x')}},
  };
  for (const auto& request : bad) {
    auto answer = control::request(socket_, request, 10s);
    EXPECT_FALSE(answer.ok()) << request.dump().substr(0, 200);
  }
  EXPECT_TRUE(dir_state(sm_).empty()) << "no malformed migrate wrote anything";
  statd_create(sm_, "192.0.2.9");
  EXPECT_TRUE(store_matches_dir("nodeA", 5s)) << "still capturing";
}

}  // namespace
}  // namespace lockferry::faults
