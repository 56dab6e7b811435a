// SPDX-License-Identifier: Apache-2.0
// Capture against the real kernel: records written the way rpc.statd writes them (nfs-utils
// support/nsm/file.c) must come out as FileChanges, in BPF mode and in both fallback modes.
#include "capture/capture.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "bpf_env.h"
#include "capture/dir_keys.h"
#include "lockferry/events.h"

namespace lockferry::capture {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kRecord =
    "0100007f 000186b5 00000004 00000010 0a0b0c0d0e0f10111213141516171819 127.0.0.1 vm\n";

// A fresh directory tree under /tmp, removed at the end of the test.
class TempTree {
 public:
  TempTree() {
    std::string tmpl = "/tmp/lockferry-capture-XXXXXX";
    root_ = ::mkdtemp(tmpl.data());
  }
  ~TempTree() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  std::string dir(const std::string& rel) const {
    std::string path = root_ + "/" + rel;
    fs::create_directories(path);
    return path;
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

std::string test_pin_dir() { return "/sys/fs/bpf/lockferry-test-" + std::to_string(::getpid()); }

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

// --- what rpc.statd does, as raw syscalls (returning false on any failure) ---

bool write_all_and_close(int fd) {
  if (fd < 0) return false;
  const std::string content = kRecord;
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  return ::close(fd) == 0 && ok;
}

// nsm_insert_monitored_host: open(O_WRONLY|O_CREAT|O_EXCL|O_SYNC), write, close.
bool statd_create(int dfd, const std::string& path) {
  return write_all_and_close(
      ::openat(dfd, path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_SYNC, 0600));
}

// nsm_atomic_write: temp file with O_CREAT|O_TRUNC|O_SYNC, write, close, rename() over the
// record. New nfs-utils name the temp ".<name>.new", older ones "<name>.new".
bool statd_update(int dfd, const std::string& dir, const std::string& name, bool dot_temp = true) {
  const std::string temp = join(dir, dot_temp ? "." + name + ".new" : name + ".new");
  if (!write_all_and_close(
          ::openat(dfd, temp.c_str(), O_CREAT | O_TRUNC | O_SYNC | O_WRONLY, 0644)))
    return false;
  return ::renameat(dfd, temp.c_str(), dfd, join(dir, name).c_str()) == 0;
}

bool statd_delete(int dfd, const std::string& path) {
  return ::unlinkat(dfd, path.c_str(), 0) == 0;
}

// Runs `body` in a child process (so events carry a pid that is not ours, and chdir() stays
// there) and returns the child's pid; the child's false return fails the test.
pid_t in_child(const std::function<bool()>& body) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(body() ? 0 : 1);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "file operations in child " << pid << " failed";
  return pid;
}

// A Capture on its own io_context, collecting what it reports.
class Harness {
 public:
  Harness(Mode mode, std::vector<std::string> dirs, std::string pin_dir = {}) {
    Options options;
    options.mode = mode;
    options.dirs = std::move(dirs);
    options.pin_dir = std::move(pin_dir);
    auto started = Capture::start(
        io_, options, [this](const FileChange& c) { changes.push_back(c); },
        [this](const std::string& dir) { resyncs.push_back(dir); });
    if (started) {
      capture = std::move(*started);
    } else {
      error = started.error().message;
    }
  }
  ~Harness() {
    if (capture) capture->stop();
  }

  // Runs the loop until `n` changes have arrived, or fails after `timeout` (the failsafe).
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (changes.size() < n && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(20ms);
    }
    return changes.size() >= n;
  }
  // Lets late (unexpected) events arrive.
  void settle(std::chrono::milliseconds d = 300ms) {
    io_.restart();
    io_.run_for(d);
  }

  std::unique_ptr<Capture> capture;
  std::string error;
  std::vector<FileChange> changes;
  std::vector<std::string> resyncs;

 private:
  boost::asio::io_context io_;
};

std::string describe(const std::vector<FileChange>& changes) {
  std::string out;
  for (const auto& c : changes)
    out += std::string(c.kind == FileChange::Kind::written ? " written " : " removed ") + c.dir +
           "/" + c.name + " pid " + std::to_string(c.pid) + ";";
  return out.empty() ? " none" : out;
}

void expect_change(const FileChange& c, FileChange::Kind kind, const std::string& dir,
                   const std::string& name, pid_t pid) {
  EXPECT_EQ(c.kind, kind) << "for " << c.dir << "/" << c.name;
  EXPECT_EQ(c.dir, dir);
  EXPECT_EQ(c.name, name);
  if (pid != 0) {
    EXPECT_EQ(c.pid, static_cast<std::uint32_t>(pid)) << "for " << c.name;
  }
}

constexpr auto W = FileChange::Kind::written;
constexpr auto R = FileChange::Kind::removed;

// ---------------------------------------------------------------- BPF mode

// Every test of the BPF capture runs once per hook set (test::kHookSets): the host runs those
// its kernel loads, the guest (vm.bpf_tests, LOCKFERRY_REQUIRE_HOOKS) all of them.
class BpfCapture : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override { LOCKFERRY_REQUIRE_HOOKS_OR_SKIP(GetParam()); }
};

TEST_P(BpfCapture, ReportsRecordsCreatedUpdatedAndDeletedTheStatdWay) {
  TempTree t;
  const std::string sm = t.dir("sm");
  Harness h(GetParam(), {sm}, test_pin_dir());
  ASSERT_TRUE(h.capture) << h.error;
  EXPECT_EQ(h.capture->mode(), GetParam());

  pid_t creator = in_child([&] { return statd_create(AT_FDCWD, sm + "/client1"); });
  ASSERT_TRUE(h.wait_for(1));
  expect_change(h.changes[0], W, sm, "client1", creator);
  EXPECT_FALSE(h.changes[0].comm.empty());
  EXPECT_GT(h.changes[0].ts_ns, 0);

  pid_t updater = in_child([&] { return statd_update(AT_FDCWD, sm, "client1"); });
  ASSERT_TRUE(h.wait_for(2));
  expect_change(h.changes[1], W, sm, "client1", updater);

  pid_t old_updater =
      in_child([&] { return statd_update(AT_FDCWD, sm, "client1", /*dot_temp=*/false); });
  ASSERT_TRUE(h.wait_for(3));
  expect_change(h.changes[2], W, sm, "client1", old_updater);

  pid_t deleter = in_child([&] { return statd_delete(AT_FDCWD, sm + "/client1"); });
  ASSERT_TRUE(h.wait_for(4));
  expect_change(h.changes[3], R, sm, "client1", deleter);

  h.settle();
  EXPECT_EQ(h.changes.size(), 4u) << "temp files must not be reported";
}

TEST_P(BpfCapture, IgnoresFilesOutsideTheWatchedDirectory) {
  TempTree t;
  const std::string sm = t.dir("sm");
  const std::string other = t.dir("other");
  const std::string sub = t.dir("sm/sub");
  Harness h(GetParam(), {sm}, test_pin_dir());
  ASSERT_TRUE(h.capture) << h.error;

  pid_t child = in_child([&] {
    return statd_create(AT_FDCWD, other + "/client1") && statd_update(AT_FDCWD, other, "client1") &&
           statd_create(AT_FDCWD, sub + "/client2") &&
           statd_create(AT_FDCWD, t.root() + "/client3") &&
           statd_delete(AT_FDCWD, other + "/client1") &&
           ::rename((sub + "/client2").c_str(), (other + "/client2").c_str()) == 0 &&
           statd_create(AT_FDCWD, sm + "/marker");
  });
  ASSERT_TRUE(h.wait_for(1));
  h.settle();
  ASSERT_EQ(h.changes.size(), 1u) << "first unexpected change: " << h.changes[0].dir << "/"
                                  << h.changes[0].name;
  expect_change(h.changes[0], W, sm, "marker", child);
}

TEST_P(BpfCapture, ResolvesNamesRelativeToTheWorkingDirectory) {
  TempTree t;
  const std::string sm = t.dir("nfs/sm");
  Harness h(GetParam(), {sm}, test_pin_dir());
  ASSERT_TRUE(h.capture) << h.error;

  // rpc.statd chdir()s into its state directory (nsm_drop_privileges).
  pid_t child = in_child([&] {
    return ::chdir(sm.c_str()) == 0 && statd_create(AT_FDCWD, "a") &&
           statd_update(AT_FDCWD, "", "a") && statd_delete(AT_FDCWD, "a") && ::chdir("..") == 0 &&
           statd_create(AT_FDCWD, "sm/b") && statd_update(AT_FDCWD, "sm", "b") &&
           ::chdir("..") == 0 && statd_delete(AT_FDCWD, "nfs/sm/b");
  });
  ASSERT_TRUE(h.wait_for(6));
  expect_change(h.changes[0], W, sm, "a", child);
  expect_change(h.changes[1], W, sm, "a", child);
  expect_change(h.changes[2], R, sm, "a", child);
  expect_change(h.changes[3], W, sm, "b", child);
  expect_change(h.changes[4], W, sm, "b", child);
  expect_change(h.changes[5], R, sm, "b", child);
  h.settle();
  EXPECT_EQ(h.changes.size(), 6u);
}

TEST_P(BpfCapture, ResolvesNamesRelativeToADirectoryFd) {
  TempTree t;
  const std::string sm = t.dir("nfs/sm");
  const std::string nfs = t.root() + "/nfs";
  Harness h(GetParam(), {sm}, test_pin_dir());
  ASSERT_TRUE(h.capture) << h.error;

  pid_t child = in_child([&] {
    int smfd = ::open(sm.c_str(), O_DIRECTORY | O_RDONLY);
    int nfsfd = ::open(nfs.c_str(), O_DIRECTORY | O_RDONLY);
    bool ok = smfd >= 0 && nfsfd >= 0 && statd_create(smfd, "c") && statd_update(smfd, "", "c") &&
              statd_delete(smfd, "c") && statd_create(nfsfd, "sm/d") &&
              statd_update(nfsfd, "sm", "d") && statd_delete(nfsfd, "sm/d");
    ::close(smfd);
    ::close(nfsfd);
    return ok;
  });
  ASSERT_TRUE(h.wait_for(6));
  expect_change(h.changes[0], W, sm, "c", child);
  expect_change(h.changes[1], W, sm, "c", child);
  expect_change(h.changes[2], R, sm, "c", child);
  expect_change(h.changes[3], W, sm, "d", child);
  expect_change(h.changes[4], W, sm, "d", child);
  expect_change(h.changes[5], R, sm, "d", child);
}

TEST_P(BpfCapture, RenameFromMonitorToNotifyDirectoryIsRemovedThenWritten) {
  TempTree t;
  const std::string sm = t.dir("sm");
  const std::string bak = t.dir("sm.bak");
  Harness h(GetParam(), {sm, bak}, test_pin_dir());
  ASSERT_TRUE(h.capture) << h.error;

  // nsm_retire_monitored_hosts moves every record from sm/ to sm.bak/ at statd start.
  pid_t child = in_child([&] {
    return statd_create(AT_FDCWD, sm + "/client1") &&
           ::rename((sm + "/client1").c_str(), (bak + "/client1").c_str()) == 0;
  });
  ASSERT_TRUE(h.wait_for(3));
  expect_change(h.changes[0], W, sm, "client1", child);
  expect_change(h.changes[1], R, sm, "client1", child);
  expect_change(h.changes[2], W, bak, "client1", child);
}

TEST_P(BpfCapture, CountersMoveWithEvents) {
  TempTree t;
  const std::string sm = t.dir("sm");
  Harness h(GetParam(), {sm}, test_pin_dir());
  ASSERT_TRUE(h.capture) << h.error;
  h.settle(50ms);
  const Counters before = h.capture->counters();

  in_child([&] {
    return statd_create(AT_FDCWD, sm + "/client1") && statd_delete(AT_FDCWD, sm + "/client1");
  });
  ASSERT_TRUE(h.wait_for(2));
  const Counters after = h.capture->counters();
  EXPECT_GT(after.hits, before.hits);
  if (GetParam() == Mode::tracepoint) {
    EXPECT_GE(after.emits, before.emits + 3) << "created, closed and deleted events";
  } else {
    EXPECT_GE(after.emits, before.emits + 2) << "closed (the last fput) and deleted events";
  }
  EXPECT_EQ(after.drops, 0u);
  EXPECT_EQ(after.changes, 2u);
  EXPECT_TRUE(h.resyncs.empty());
}

TEST_P(BpfCapture, PinsExistWhileRunningAndAreRemovedOnStop) {
  TempTree t;
  const std::string sm = t.dir("sm");
  const std::string pins = test_pin_dir();
  Harness h(GetParam(), {sm}, pins);
  ASSERT_TRUE(h.capture) << h.error;
  EXPECT_NE(h.capture->mode_reason().find(pins), std::string::npos) << h.capture->mode_reason();

  const std::vector<std::string> programs =
      GetParam() == Mode::fentry ? std::vector<std::string>{"enter_fput", "exit_vfs_unlink",
                                                            "enter_vfs_rename", "exit_vfs_rename"}
      : GetParam() == Mode::kprobe
          ? std::vector<std::string>{"enter_fput", "enter_vfs_unlink", "exit_vfs_unlink",
                                     "enter_vfs_rename", "exit_vfs_rename"}
          : std::vector<std::string>{"sys_enter_openat", "sys_exit_openat", "sys_enter_close",
                                     "sys_exit_close", "sys_exit_renameat2"};
  for (const auto& name : programs) EXPECT_TRUE(fs::exists(pins + "/" + name)) << name;
  for (const char* name : {"watched_dirs", "watched_paths", "tracked_fds", "counters", "events"})
    EXPECT_TRUE(fs::exists(pins + "/" + name)) << name;

  // What `bpftool map dump pinned .../watched_dirs` shows: our directory's kernel identity.
  int fd = bpf_obj_get((pins + "/watched_dirs").c_str());
  ASSERT_GE(fd, 0);
  auto id = dir_identity(sm);
  ASSERT_TRUE(id);
  lf_dir_key key{id->dev, id->ino};
  lf_dir_value value{};
  EXPECT_EQ(bpf_map_lookup_elem(fd, &key, &value), 0);
  EXPECT_GT(value.dir_id, 0u);
  ::close(fd);

  h.capture->stop();
  EXPECT_FALSE(fs::exists(pins)) << "pins must be removed on stop()";
}

TEST_P(BpfCapture, ReplacesStalePinsFromACrashedRun) {
  TempTree t;
  const std::string sm = t.dir("sm");
  const std::string pins = test_pin_dir();
  {
    // What a crashed run leaves: a pinned object under the same name (here a different map).
    fs::create_directories("/sys/fs/bpf");
    std::error_code ec;
    fs::create_directories(pins, ec);
    int stale = bpf_map_create(BPF_MAP_TYPE_ARRAY, "stale", 4, 4, 1, nullptr);
    ASSERT_GE(stale, 0);
    ASSERT_EQ(bpf_obj_pin(stale, (pins + "/watched_dirs").c_str()), 0);
    ::close(stale);
  }
  Harness h(GetParam(), {sm}, pins);
  ASSERT_TRUE(h.capture) << h.error;
  int fd = bpf_obj_get((pins + "/watched_dirs").c_str());
  ASSERT_GE(fd, 0);
  bpf_map_info info{};
  std::uint32_t len = sizeof(info);
  ASSERT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
  EXPECT_EQ(info.key_size, sizeof(lf_dir_key)) << "the stale pin must be replaced by the new map";
  ::close(fd);
  h.capture->stop();
  EXPECT_FALSE(fs::exists(pins));
}

TEST_P(BpfCapture, ASecondInstanceLeavesALiveInstancesPinsAlone) {
  TempTree t;
  const std::string sm = t.dir("sm");
  const std::string pins = test_pin_dir();
  Harness first(GetParam(), {sm}, pins);
  ASSERT_TRUE(first.capture) << first.error;
  int before = bpf_obj_get((pins + "/watched_dirs").c_str());
  ASSERT_GE(before, 0);
  bpf_map_info first_info{};
  std::uint32_t len = sizeof(first_info);
  ASSERT_EQ(bpf_obj_get_info_by_fd(before, &first_info, &len), 0);
  ::close(before);

  {
    Harness second(GetParam(), {sm}, pins);
    ASSERT_TRUE(second.capture) << "pinning is optional, capture must still start: "
                                << second.error;
    EXPECT_NE(second.capture->mode_reason().find("not pinned"), std::string::npos)
        << second.capture->mode_reason();
    pid_t child = in_child([&] { return statd_create(AT_FDCWD, sm + "/client1"); });
    ASSERT_TRUE(second.wait_for(1));
    expect_change(second.changes[0], W, sm, "client1", child);
  }

  int after = bpf_obj_get((pins + "/watched_dirs").c_str());
  ASSERT_GE(after, 0) << "the second instance must not remove the first one's pins";
  bpf_map_info info{};
  len = sizeof(info);
  ASSERT_EQ(bpf_obj_get_info_by_fd(after, &info, &len), 0);
  EXPECT_EQ(info.id, first_info.id);
  ::close(after);
}

TEST_P(BpfCapture, SetDirsMovesTheWatch) {
  TempTree t;
  const std::string a = t.dir("a");
  const std::string b = t.dir("b");
  Harness h(GetParam(), {a}, test_pin_dir());
  ASSERT_TRUE(h.capture) << h.error;
  ASSERT_TRUE(h.capture->set_dirs({b}));

  pid_t child = in_child([&] {
    return statd_create(AT_FDCWD, a + "/client1") && statd_delete(AT_FDCWD, a + "/client1") &&
           statd_create(AT_FDCWD, b + "/client2");
  });
  ASSERT_TRUE(h.wait_for(1));
  h.settle();
  ASSERT_EQ(h.changes.size(), 1u);
  expect_change(h.changes[0], W, b, "client2", child);

  auto bad = h.capture->set_dirs({b, t.root() + "/missing"});
  EXPECT_FALSE(bad) << "a reload naming a missing directory must be refused";
}

INSTANTIATE_TEST_SUITE_P(HookSets, BpfCapture, ::testing::ValuesIn(test::hook_sets_to_test()),
                         test::hook_set_name);

// A kernel where a writer dies with the record open (kill -9 before close): its files are closed
// at exit, and the function-level hooks (fentry or kprobe) see that last fput like any close.
class BpfCaptureFunctionHooks : public ::testing::TestWithParam<Mode> {};

TEST_P(BpfCaptureFunctionHooks, AWriterKilledBeforeCloseStillHasItsRecordRead) {
  LOCKFERRY_REQUIRE_HOOKS_OR_SKIP(GetParam());
  TempTree t;
  const std::string sm = t.dir("sm");
  Harness h(GetParam(), {sm}, test_pin_dir());
  ASSERT_TRUE(h.capture) << h.error;
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open((sm + "/client1").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_SYNC, 0600);
    const std::string content = kRecord;
    if (fd < 0 || ::write(fd, content.data(), content.size()) < 0) ::_exit(1);
    ::kill(::getpid(), SIGKILL);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the writer must die by SIGKILL";
  ASSERT_TRUE(h.wait_for(1)) << "got:" << describe(h.changes);
  expect_change(h.changes[0], W, sm, "client1", pid);
}

// Only where the kernel loads the set (or LOCKFERRY_REQUIRE_HOOKS names it): else no test at all.
INSTANTIATE_TEST_SUITE_P(HookSets, BpfCaptureFunctionHooks,
                         ::testing::ValuesIn(test::hook_sets_to_test({Mode::fentry, Mode::kprobe})),
                         test::hook_set_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(BpfCaptureFunctionHooks);

// ---------------------------------------------------------------- which mode auto and bpf pick

// auto: the cheapest complete capture. fentry where it loads; else fanotify (cheaper than the
// kprobe set, which comes next); never the syscall tracepoints, even where they load (they tax
// every syscall on the machine).
TEST(CaptureModeChoice, AutoPicksFunctionLevelHooksElseFanotifyNeverSyscallTracepoints) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  TempTree t;
  Harness h(Mode::automatic, {t.dir("sm")}, test_pin_dir());
  ASSERT_TRUE(h.capture) << h.error;
  const std::string& reason = h.capture->mode_reason();
  EXPECT_NE(reason.find("chosen by auto"), std::string::npos) << reason;
  if (test::hook_set_unavailable_reason(Mode::fentry).empty()) {
    EXPECT_EQ(h.capture->mode(), Mode::fentry) << reason;
    EXPECT_EQ(reason.rfind("fentry:", 0), 0u) << reason;
  } else {
    EXPECT_FALSE(test::hook_set_required(Mode::fentry))
        << test::hook_set_unavailable_reason(Mode::fentry);
    EXPECT_EQ(h.capture->mode(), Mode::fanotify) << reason;
    EXPECT_NE(reason.find("fentry unavailable"), std::string::npos) << reason;
    EXPECT_NE(reason.find("syscall tracepoints skipped"), std::string::npos) << reason;
  }
}

// bpf: the best BPF hook set: fentry, else kprobe, the syscall tracepoints only where both fail.
TEST(CaptureModeChoice, BpfPicksFunctionLevelHooksElseSyscallTracepoints) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  TempTree t;
  Harness h(Mode::bpf, {t.dir("sm")}, test_pin_dir());
  ASSERT_TRUE(h.capture) << h.error;
  const bool fentry = test::hook_set_unavailable_reason(Mode::fentry).empty();
  const bool kprobe = test::hook_set_unavailable_reason(Mode::kprobe).empty();
  const std::string& reason = h.capture->mode_reason();
  EXPECT_EQ(h.capture->mode(), fentry   ? Mode::fentry
                               : kprobe ? Mode::kprobe
                                        : Mode::tracepoint)
      << reason;
  if (!fentry) {
    EXPECT_NE(reason.find("fentry unavailable"), std::string::npos) << reason;
  }
  if (!fentry && !kprobe) {
    EXPECT_NE(reason.find("kprobe unavailable"), std::string::npos) << reason;
  }
}

// kprobe, asked for by name: it runs where the kernel allows kprobes on the four functions; where
// it does not (the 6.18 CI host has no kprobe PMU), the capture refuses to start and says why,
// and nothing of it stays loaded.
TEST(CaptureModeChoice, KprobeRunsWhereTheKernelAllowsItElseSaysWhyNot) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  TempTree t;
  const std::string pins = test_pin_dir();
  Harness h(Mode::kprobe, {t.dir("sm")}, pins);
  if (test::hook_set_unavailable_reason(Mode::kprobe).empty()) {
    ASSERT_TRUE(h.capture) << h.error;
    EXPECT_EQ(h.capture->mode(), Mode::kprobe);
    EXPECT_EQ(h.capture->mode_reason().rfind("kprobe: ", 0), 0u) << h.capture->mode_reason();
    EXPECT_NE(h.capture->mode_reason().find("kprobe/kretprobe"), std::string::npos)
        << h.capture->mode_reason();
    return;
  }
  EXPECT_FALSE(test::hook_set_required(Mode::kprobe))
      << test::hook_set_unavailable_reason(Mode::kprobe);
  ASSERT_FALSE(h.capture) << "mode kprobe must not start where kprobes are refused";
  EXPECT_NE(h.error.find("in kprobe mode"), std::string::npos) << h.error;
  EXPECT_NE(h.error.find("kprobe unavailable: "), std::string::npos) << h.error;
  EXPECT_FALSE(fs::exists(pins)) << "a refused hook set leaves no pins";
}

// poll: no kernel events; every watched directory is handed to the rescan every second.
TEST(CaptureModeChoice, PollAsksForARescanOfEveryDirectoryEverySecond) {
  TempTree t;
  const std::string a = t.dir("a"), b = t.dir("b");
  Harness h(Mode::poll, {a, b});
  ASSERT_TRUE(h.capture) << h.error;
  EXPECT_EQ(h.capture->mode(), Mode::poll);
  h.settle(2300ms);
  ASSERT_GE(h.resyncs.size(), 4u);
  EXPECT_LE(h.resyncs.size(), 6u);
  EXPECT_EQ(h.resyncs[0], a);
  EXPECT_EQ(h.resyncs[1], b);
}

// ---------------------------------------------------------------- fallback modes

class FallbackCapture : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    if (GetParam() == Mode::fanotify && ::geteuid() != 0)
      GTEST_SKIP() << "fanotify needs root here";
  }
};

TEST_P(FallbackCapture, ReportsTheSameChangesAsBpf) {
  TempTree t;
  const std::string sm = t.dir("sm");
  const std::string bak = t.dir("sm.bak");
  const std::string other = t.dir("other");
  Harness h(GetParam(), {sm, bak});
  ASSERT_TRUE(h.capture) << h.error;
  EXPECT_EQ(h.capture->mode(), GetParam());
  EXPECT_NE(h.capture->mode_reason().find("forced"), std::string::npos) << h.capture->mode_reason();
  const bool has_pid = GetParam() == Mode::fanotify;

  // One step at a time: fanotify merges queued events on the same name (the final state stays
  // right, see notify_capture.cpp), and each step here must show its own change.
  const pid_t creator = in_child([&] {
    return statd_create(AT_FDCWD, other + "/ignored") && statd_create(AT_FDCWD, sm + "/client1");
  });
  ASSERT_TRUE(h.wait_for(1)) << "got:" << describe(h.changes);
  expect_change(h.changes[0], W, sm, "client1", has_pid ? creator : 0);

  const pid_t updater = in_child([&] { return statd_update(AT_FDCWD, sm, "client1"); });
  ASSERT_TRUE(h.wait_for(2)) << "got:" << describe(h.changes);
  expect_change(h.changes[1], W, sm, "client1", has_pid ? updater : 0);

  in_child([&] { return statd_update(AT_FDCWD, sm, "client1", /*dot_temp=*/false); });
  ASSERT_TRUE(h.wait_for(3)) << "got:" << describe(h.changes);
  expect_change(h.changes[2], W, sm, "client1", 0);

  const pid_t mover = in_child(
      [&] { return ::rename((sm + "/client1").c_str(), (bak + "/client1").c_str()) == 0; });
  ASSERT_TRUE(h.wait_for(5)) << "got:" << describe(h.changes);
  expect_change(h.changes[3], R, sm, "client1", has_pid ? mover : 0);
  expect_change(h.changes[4], W, bak, "client1", has_pid ? mover : 0);

  in_child([&] { return statd_delete(AT_FDCWD, bak + "/client1"); });
  ASSERT_TRUE(h.wait_for(6)) << "got:" << describe(h.changes);
  expect_change(h.changes[5], R, bak, "client1", 0);

  h.settle();
  EXPECT_EQ(h.changes.size(), 6u) << "got:" << describe(h.changes);
  EXPECT_GE(h.capture->counters().emits, 6u);
  EXPECT_EQ(h.capture->counters().changes, 6u);
}

INSTANTIATE_TEST_SUITE_P(Modes, FallbackCapture, ::testing::Values(Mode::fanotify, Mode::inotify),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace lockferry::capture
