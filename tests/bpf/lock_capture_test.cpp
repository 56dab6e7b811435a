// SPDX-License-Identifier: Apache-2.0
// Lock capture against the real kernel, per hook set that sees any process's locks (tp_btf and
// classic tracepoints, where the kernel loads them): a child process named like a lock manager
// takes, splits, merges and releases fcntl and OFD locks (as NFS-Ganesha's VFS backend does:
// F_OFD_SETLK on one open file per lock owner), and the recorded table must match exactly at
// every step; locks of other processes must not be recorded.
#include "capture/lock_capture.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "../support/fcntl_lock.h"
#include "bpf_env.h"
#include "lock_hook_env.h"
#include "lockferry/events.h"
#include "procfs/locks.h"
#include "procfs/process.h"
#include "record/lock_recorder.h"
#include "store/store.h"

namespace lockferry::capture {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using record::LockRecorder;
using record::LockTable;
constexpr std::uint64_t kEof = LockRecord::kToEndOfFile;

class TempTree {
 public:
  TempTree() {
    std::string tmpl = "/tmp/lockferry-locks-XXXXXX";
    root_ = fs::canonical(::mkdtemp(tmpl.data())).string();
  }
  ~TempTree() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  std::string file(const std::string& name) const {
    const std::string path = root_ + "/" + name;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
    if (fd >= 0) ::close(fd);
    return path;
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

// The kernel's device encoding (what the BPF side reports) of a file.
std::pair<std::uint64_t, std::uint64_t> kernel_dev_ino(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return {(static_cast<std::uint64_t>(major(st.st_dev)) << 20) | minor(st.st_dev), st.st_ino};
}

using lockferry::test::set_lock;

// A child process that runs numbered steps when told to (one byte down a pipe) and answers with
// one byte ('k' done, 'f' a lock call failed). Steps run in the child, so its locks have the
// child's owner, pid and name.
class Child {
 public:
  // `uid` != 0: the child drops root (group too) before it takes its name.
  Child(std::string name, std::vector<std::function<bool()>> steps, uid_t uid = 0) {
    int down[2], up[2];
    if (::pipe(down) != 0 || ::pipe(up) != 0) std::abort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(down[1]);
      ::close(up[0]);
      ::alarm(60);  // failsafe: never outlive a hung test
      if (uid != 0 && (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setuid(uid) != 0))
        ::_exit(3);
      if (!name.empty()) ::prctl(PR_SET_NAME, name.c_str(), 0, 0, 0);
      char c = 'k';
      if (::write(up[1], &c, 1) != 1) ::_exit(2);
      std::size_t i = 0;
      while (::read(down[0], &c, 1) == 1) {
        if (c == 'x' || i >= steps.size()) ::_exit(0);
        c = steps[i++]() ? 'k' : 'f';
        if (::write(up[1], &c, 1) != 1) ::_exit(2);
      }
      ::_exit(0);
    }
    ::close(down[0]);
    ::close(up[1]);
    to_ = down[1];
    from_ = up[0];
    char c = 0;
    ready_ = ::read(from_, &c, 1) == 1 && c == 'k';
  }
  ~Child() { finish(); }

  bool ready() const { return ready_; }
  pid_t pid() const { return pid_; }
  // Runs the next step; true when it succeeded.
  bool step() {
    char c = 's';
    if (::write(to_, &c, 1) != 1) return false;
    return ::read(from_, &c, 1) == 1 && c == 'k';
  }
  // Tells the child to exit (releasing whatever it holds) and reaps it.
  int finish() {
    if (pid_ <= 0) return -1;
    char c = 'x';
    (void)!::write(to_, &c, 1);
    ::close(to_);
    ::close(from_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1;
  int from_ = -1;
  bool ready_ = false;
};

std::string self_exe() { return fs::read_symlink("/proc/self/exe").string(); }

// A LockCapture feeding a LockTable, on its own io_context.
class Harness {
 public:
  Harness(LockHook hook, std::vector<std::string> managers,
          std::chrono::milliseconds rescan_interval = 200ms,
          const std::function<void(LockOptions&)>& tweak = {}) {
    LockOptions options;
    options.managers = std::move(managers);
    options.hook = hook;
    options.rescan_interval = rescan_interval;
    options.owner_key_path = "";  // a key of this run: tests leave /run alone
    // The children taking locks are forks of this binary, running as root: real managers.
    options.manager_binaries = {self_exe()};
    if (tweak) tweak(options);
    auto started = LockCapture::start(
        io_, options,
        [this](const LockChange& c) {
          if (c.kind == LockChange::Kind::reconciled)
            ++reconciles;
          else
            changes.push_back(c);
          table.apply(c);
          if (also) also(c);
        },
        [this](const ManagerProcess& m) {
          gone.push_back(m);
          if (also_gone) also_gone(m);
        });
    if (started)
      capture = std::move(*started);
    else
      error = started.error().message;
  }
  ~Harness() {
    if (capture) capture->stop();
  }

  // Runs the loop until `done()` or the failsafe timeout.
  bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(20ms);
      capture->poll();
    }
    return done();
  }
  bool wait_for_changes(std::size_t n) {
    return wait_until([&] { return changes.size() >= n; });
  }
  bool is_manager(pid_t pid) const {
    for (const auto& m : capture->managers())
      if (m.pid == static_cast<std::uint32_t>(pid)) return true;
    return false;
  }

  boost::asio::io_context io_;
  std::unique_ptr<LockCapture> capture;
  std::string error;
  std::vector<LockChange> changes;
  std::vector<ManagerProcess> gone;
  LockTable table;
  std::size_t reconciles = 0;
  std::function<void(const LockChange&)> also;  // e.g. a LockRecorder's on_change
  std::function<void(const ManagerProcess&)> also_gone;
};

// `owner` labels who holds a range: 'P' the child's fcntl (POSIX) locks, which share one
// owner (its files_struct); any other letter one open file's OFD locks (owner: that file).
struct Expected {
  std::string path;
  std::uint64_t start, end;
  std::string type;
  char owner;
};

// Checks the table against `expected` exactly, and that ranges with one owner label share one
// kernel owner while different labels have different owners.
void expect_table(const LockTable& table, pid_t child, const std::string& comm,
                  const std::vector<Expected>& expected) {
  using Row = std::tuple<std::string, std::uint64_t, std::uint64_t, std::string>;
  std::map<Row, std::uint64_t> got;  // -> owner
  for (const auto& r : table.records("nfs1", 0)) {
    EXPECT_EQ(r.manager_pid, static_cast<std::uint32_t>(child)) << r.path;
    EXPECT_EQ(r.manager_comm, comm) << r.path;
    // fl_pid is the taking process for fcntl and OFD locks alike (/proc/locks shows -1 for OFD).
    EXPECT_EQ(r.owner_pid, child) << r.path;
    auto [dev, ino] = kernel_dev_ino(r.path);
    EXPECT_EQ(r.dev, dev) << r.path;
    EXPECT_EQ(r.ino, ino) << r.path;
    EXPECT_NE(r.owner, 0u);
    EXPECT_GT(r.granted_ns, 0);
    got[{r.path, r.start, r.end, r.type}] = r.owner;
  }
  std::vector<Row> got_rows, want_rows;
  for (const auto& [row, owner] : got) got_rows.push_back(row);
  for (const auto& e : expected) want_rows.emplace_back(e.path, e.start, e.end, e.type);
  std::sort(want_rows.begin(), want_rows.end());
  ASSERT_EQ(got_rows, want_rows);
  std::map<char, std::uint64_t> owner_of;
  std::map<std::uint64_t, char> label_of;
  for (const auto& e : expected) {
    const std::uint64_t owner = got[{e.path, e.start, e.end, e.type}];
    auto [it, added] = owner_of.emplace(e.owner, owner);
    EXPECT_EQ(it->second, owner) << "ranges labelled " << e.owner << " must share one owner";
    auto [jt, added2] = label_of.emplace(owner, e.owner);
    EXPECT_EQ(jt->second, e.owner)
        << "labels " << jt->second << " and " << e.owner << " share owner " << owner;
  }
}

class LockCaptureTest : public ::testing::TestWithParam<LockHook> {};

TEST_P(LockCaptureTest, RecordsFcntlAndOfdLocksOfAManagerExactly) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  const std::string name = "lfmgr" + std::to_string(::getpid() % 1000000);
  TempTree tree;
  const std::string a = tree.file("a.dat"), b = tree.file("b.dat");
  Harness h(GetParam(), {name});
  ASSERT_TRUE(h.capture) << h.error;
  EXPECT_EQ(h.capture->hook(), GetParam());
  EXPECT_NE(h.capture->hook_reason().find(to_string(GetParam())), std::string::npos)
      << h.capture->hook_reason();

  int fd_a = -1, ofd_b = -1, ofd_a = -1;
  Child child(
      name,
      {
          // 1: fcntl write 0-99 on a, unlock 40-59 (split), read 200-EOF; OFD write 0-99 on b and
          //    unlock 10-19; OFD read 100-149 on a through another open file.
          [&] {
            fd_a = ::open(a.c_str(), O_RDWR);
            ofd_b = ::open(b.c_str(), O_RDWR);
            ofd_a = ::open(a.c_str(), O_RDONLY);
            return set_lock(fd_a, F_SETLK, F_WRLCK, 0, 100) &&
                   set_lock(fd_a, F_SETLK, F_UNLCK, 40, 20) &&
                   set_lock(fd_a, F_SETLK, F_RDLCK, 200, 0) &&
                   set_lock(ofd_b, F_OFD_SETLK, F_WRLCK, 0, 100) &&
                   set_lock(ofd_b, F_OFD_SETLK, F_UNLCK, 10, 10) &&
                   set_lock(ofd_a, F_OFD_SETLK, F_RDLCK, 100, 50);
          },
          // 2: re-lock 40-59 (merges back into 0-99); closing b's OFD file releases its locks.
          [&] { return set_lock(fd_a, F_SETLK, F_WRLCK, 40, 20) && ::close(ofd_b) == 0; },
          // 3: closing ANY descriptor of a drops all of the process's fcntl locks on a (POSIX), but
          //    not the OFD lock.
          [&] {
            int other = ::open(a.c_str(), O_RDONLY);
            return other >= 0 && ::close(other) == 0;
          },
      });
  ASSERT_TRUE(child.ready());
  // The rename hook adds the child at once; a rescan finds it too.
  h.capture->rescan();
  ASSERT_TRUE(h.is_manager(child.pid()));

  ASSERT_TRUE(child.step());
  ASSERT_TRUE(h.wait_until([&] { return h.table.size() == 6; })) << h.table.size();
  expect_table(h.table, child.pid(), name,
               {{a, 0, 39, "write", 'P'},
                {a, 60, 99, "write", 'P'},
                {a, 200, kEof, "read", 'P'},
                {b, 0, 9, "write", 'B'},
                {b, 20, 99, "write", 'B'},
                {a, 100, 149, "read", 'A'}});
  // Every grant carried the file's full path; the split came from one release event.
  for (const auto& c : h.changes) {
    if (c.kind == LockChange::Kind::granted) {
      EXPECT_TRUE(c.path == a || c.path == b) << c.path;
    }
  }

  ASSERT_TRUE(child.step());
  ASSERT_TRUE(h.wait_until([&] { return h.table.size() == 3; })) << h.table.size();
  expect_table(h.table, child.pid(), name,
               {{a, 0, 99, "write", 'P'}, {a, 200, kEof, "read", 'P'}, {a, 100, 149, "read", 'A'}});

  ASSERT_TRUE(child.step());
  ASSERT_TRUE(h.wait_until([&] { return h.table.size() == 1; })) << h.table.size();
  expect_table(h.table, child.pid(), name, {{a, 100, 149, "read", 'A'}});

  // Exit closes the last open file of a: the OFD lock goes too. The uprobe set sees no close in
  // an exit (the kernel's, not the C library's): the manager's disappearance from /proc says it,
  // and lockferryd's recorder then forgets its locks (LockRecorder::on_manager_gone).
  if (GetParam() == LockHook::uprobe)
    h.also_gone = [&](const ManagerProcess& m) { h.table.drop_manager(m.pid); };
  const pid_t child_pid = child.pid();
  ASSERT_EQ(child.finish(), 0);
  ASSERT_TRUE(h.wait_until([&] { return h.table.empty(); }));
  const auto counters = h.capture->counters();
  EXPECT_EQ(counters.drops, 0u);
  EXPECT_EQ(counters.grants, 5u);  // 4 in step 1, 1 in step 2
  EXPECT_GE(counters.releases, 4u);
  EXPECT_EQ(counters.refused, 0u);
  EXPECT_EQ(counters.changes, h.changes.size());

  // Once gone from /proc it is no longer tracked, and the owner of the table learns it.
  ASSERT_TRUE(h.wait_until([&] { return !h.gone.empty(); }, 3s));
  EXPECT_EQ(h.gone[0].pid, static_cast<std::uint32_t>(child_pid));
  EXPECT_FALSE(h.is_manager(child_pid));
}

TEST_P(LockCaptureTest, LocksOfOtherProcessesAreNotRecorded) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  const std::string name = "lfmgr" + std::to_string(::getpid() % 1000000);
  TempTree tree;
  const std::string a = tree.file("a.dat");
  Harness h(GetParam(), {name});
  ASSERT_TRUE(h.capture) << h.error;
  const auto before = h.capture->counters();

  // Same file, same kinds of locks, but not named like a lock manager (and not exec'ed as one).
  int fd = -1, ofd = -1;
  Child other("lfplainproc", {[&] {
                fd = ::open(a.c_str(), O_RDWR);
                ofd = ::open(a.c_str(), O_RDWR);
                return set_lock(fd, F_SETLK, F_WRLCK, 0, 10) &&
                       set_lock(ofd, F_OFD_SETLK, F_WRLCK, 50, 10) &&
                       set_lock(fd, F_SETLK, F_UNLCK, 0, 0);
              }});
  ASSERT_TRUE(other.ready());
  ASSERT_TRUE(other.step());
  // Our own locks are not a manager's either.
  int mine = ::open(a.c_str(), O_RDWR);
  ASSERT_TRUE(set_lock(mine, F_SETLK, F_WRLCK, 100, 10));
  ::close(mine);
  ASSERT_EQ(other.finish(), 0);
  h.capture->rescan();
  h.wait_until([] { return false; }, 300ms);
  EXPECT_TRUE(h.changes.empty());
  EXPECT_TRUE(h.table.empty());
  // Filtered before anything else: not even counted as a hit.
  EXPECT_EQ(h.capture->counters().hits, before.hits);
  EXPECT_TRUE(h.capture->managers().empty());
}

TEST_P(LockCaptureTest, AConflictIsCountedButChangesNothing) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  const std::string name = "lfmgr" + std::to_string(::getpid() % 1000000);
  TempTree tree;
  const std::string a = tree.file("a.dat");
  Harness h(GetParam(), {name});
  ASSERT_TRUE(h.capture) << h.error;
  // We hold 0-9; the manager's conflicting request is refused (EAGAIN) and must not be recorded.
  int mine = ::open(a.c_str(), O_RDWR);
  ASSERT_TRUE(set_lock(mine, F_SETLK, F_WRLCK, 0, 10));
  int fd = -1;
  Child child(name, {[&] {
                fd = ::open(a.c_str(), O_RDWR);
                return !set_lock(fd, F_OFD_SETLK, F_WRLCK, 5, 10) &&
                       set_lock(fd, F_OFD_SETLK, F_WRLCK, 10, 10);
              }});
  ASSERT_TRUE(child.ready());
  h.capture->rescan();
  ASSERT_TRUE(child.step());
  ASSERT_TRUE(h.wait_for_changes(1));
  expect_table(h.table, child.pid(), name, {{a, 10, 19, "write", 'A'}});
  EXPECT_GE(h.capture->counters().refused, 1u);
  ::close(mine);
}

// Several NFS servers can share one kernel, one per network namespace (nodeA and nodeB in the
// knfsd failover test): each lockferryd keeps only the locks of its own namespace. The same
// manager process locks once here and once after moving into a new network namespace.
TEST_P(LockCaptureTest, LocksOfAnotherNetworkNamespaceAreNotRecorded) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  const std::string name = "lfmgr" + std::to_string(::getpid() % 1000000);
  TempTree tree;
  const std::string a = tree.file("a.dat");
  Harness h(GetParam(), {name});
  ASSERT_TRUE(h.capture) << h.error;
  int fd = -1;
  Child child(name, {[&] {
                       fd = ::open(a.c_str(), O_RDWR);
                       return set_lock(fd, F_SETLK, F_WRLCK, 0, 10);
                     },
                     [&] {
                       return ::unshare(CLONE_NEWNET) == 0 &&
                              set_lock(fd, F_SETLK, F_WRLCK, 20, 10) &&
                              set_lock(fd, F_SETLK, F_UNLCK, 0, 10);
                     }});
  ASSERT_TRUE(child.ready());
  h.capture->rescan();
  ASSERT_TRUE(child.step());
  ASSERT_TRUE(h.wait_for_changes(1));
  ASSERT_TRUE(child.step());
  ASSERT_TRUE(h.wait_until([&] { return h.capture->counters().other_netns_events >= 2; }))
      << "other_netns " << h.capture->counters().other_netns_events;
  // Only the lock taken in our namespace; the grant and the release in the other one are not
  // ours (a real node's lockd releases its own locks).
  expect_table(h.table, child.pid(), name, {{a, 0, 9, "write", 'P'}});
  EXPECT_EQ(h.changes.size(), 1u);
}

// Between /proc scans, the kernel side adds a process the moment it takes a manager's name, so
// a lock manager that starts and grants at once (reclaims right after a failover) is not missed.
TEST_P(LockCaptureTest, AManagerIsTrackedFromTheMomentItIsNamed) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  const std::string name = "lfmgr" + std::to_string(::getpid() % 1000000);
  TempTree tree;
  const std::string a = tree.file("a.dat");
  Harness h(GetParam(), {name}, std::chrono::minutes(10));  // no rescan during the test
  ASSERT_TRUE(h.capture) << h.error;
  int fd = -1;
  Child child(name, {[&] {
                       fd = ::open(a.c_str(), O_RDWR);
                       return set_lock(fd, F_SETLK, F_WRLCK, 0, 10);
                     },
                     [&] { return set_lock(fd, F_SETLK, F_RDLCK, 20, 10); }});
  ASSERT_TRUE(child.ready());
  ASSERT_TRUE(child.step());
  if (GetParam() == LockHook::uprobe) {
    // Its uprobes follow the name within milliseconds, here after the lock: the reconcile that
    // follows their attach records it...
    ASSERT_TRUE(h.wait_until([&] { return h.table.size() == 1; }));
    EXPECT_TRUE(h.changes.empty());
    EXPECT_GE(h.reconciles, 1u);
  } else {
    ASSERT_TRUE(h.wait_for_changes(1));
  }
  expect_table(h.table, child.pid(), name, {{a, 0, 9, "write", 'P'}});
  EXPECT_GE(h.capture->counters().manager_adds, 1u);
  // ...and the uprobes see the next lock as it is taken.
  ASSERT_TRUE(h.is_manager(child.pid()));
  const std::size_t before = h.changes.size();
  ASSERT_TRUE(child.step());
  ASSERT_TRUE(h.wait_for_changes(before + 1));
  expect_table(h.table, child.pid(), name, {{a, 0, 9, "write", 'P'}, {a, 20, 29, "read", 'P'}});
}

// The whole path: captured changes -> LockRecorder -> dir:// store, as lockferryd wires them.
TEST_P(LockCaptureTest, TheStoreHoldsTheCurrentTable) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  const std::string name = "lfmgr" + std::to_string(::getpid() % 1000000);
  TempTree tree;
  const std::string a = tree.file("a.dat");
  fs::create_directories(tree.root() + "/store");
  auto store = store::open_store("dir://" + tree.root() + "/store");
  ASSERT_TRUE(store) << store.error().message;
  Harness h(GetParam(), {name});
  ASSERT_TRUE(h.capture) << h.error;
  LockRecorder recorder(h.io_, **store, "nfs1", 0, 50ms);
  int fd = -1;
  Child child(name, {[&] {
                fd = ::open(a.c_str(), O_RDWR);
                for (int i = 0; i < 200; ++i)
                  if (!set_lock(fd, F_OFD_SETLK, F_WRLCK, i * 10, 5)) return false;
                return set_lock(fd, F_OFD_SETLK, F_UNLCK, 0, 1000);  // leaves 1000-1994
              }});
  ASSERT_TRUE(child.ready());
  h.capture->rescan();
  ASSERT_TRUE(child.step());
  ASSERT_TRUE(h.wait_for_changes(201));
  for (const auto& c : h.changes) recorder.on_change(c);
  ASSERT_TRUE(h.wait_until([&] { return !recorder.dirty(); }));
  EXPECT_EQ(recorder.stats().tables_written, 1u);  // 201 changes, one write
  auto stored = (*store)->list_locks("nfs1");
  ASSERT_TRUE(stored) << stored.error().message;
  ASSERT_EQ(stored->size(), 100u);
  EXPECT_EQ(stored->front().start, 1000u);
  EXPECT_EQ(stored->front().end, 1004u);
  EXPECT_EQ(stored->front().path, a);
  EXPECT_EQ(stored->front().type, "write");
  EXPECT_EQ(*stored, recorder.table().records("nfs1", 0));
  child.finish();
}

// Locks of the child as /proc shows them: its POSIX lines, and OFD lines (pid -1) on `inodes`
// (only the child locks the test's files). (ino, start, end, type), sorted.
using KernelRow = std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, std::string>;
std::vector<KernelRow> kernel_rows(pid_t child, const std::set<std::uint64_t>& inodes) {
  std::vector<KernelRow> out;
  auto text = procfs::read_proc_file("/proc/locks");
  EXPECT_TRUE(text) << text.error().message;
  if (!text) return out;
  for (const auto& l : procfs::parse_proc_locks(*text)) {
    if (l.waiting || !inodes.contains(l.ino)) continue;
    if (!((l.kind == "POSIX" && l.pid == child) || l.kind == "OFDLCK")) continue;
    out.emplace_back(l.ino, l.start, l.end, l.type == "WRITE" ? "write" : "read");
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<KernelRow> table_rows(const std::vector<LockRecord>& records) {
  std::vector<KernelRow> out;
  for (const auto& r : records) out.emplace_back(r.ino, r.start, r.end, r.type);
  std::sort(out.begin(), out.end());
  return out;
}

// A ring buffer of one page holds 3 lock events: a manager taking hundreds of locks at once
// overflows it. The drops trigger a reconcile with the kernel's locks, after which the table,
// and the store behind the recorder, hold exactly what /proc/locks shows; later changes by the
// same owners still match (releases remove what the reconcile put in), and so on to the end.
TEST_P(LockCaptureTest, AfterDropsTheReconcileRestoresTheKernelsExactLocks) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  const std::string name = "lfmgr" + std::to_string(::getpid() % 1000000);
  TempTree tree;
  constexpr int kFiles = 8, kSlots = 50;
  std::vector<std::string> files;
  std::set<std::uint64_t> inodes;
  for (int f = 0; f < kFiles; ++f) {
    files.push_back(tree.file("f" + std::to_string(f)));
    inodes.insert(kernel_dev_ino(files.back()).second);
  }
  fs::create_directories(tree.root() + "/store");
  auto store = store::open_store("dir://" + tree.root() + "/store");
  ASSERT_TRUE(store) << store.error().message;
  Harness h(GetParam(), {name}, 200ms, [](LockOptions& o) {
    o.ring_buffer_kb = 4;
    o.reconcile_interval = std::chrono::milliseconds(0);  // only after drops
  });
  ASSERT_TRUE(h.capture) << h.error;
  EXPECT_NE(h.capture->hook_reason().find("ring buffer 4 KiB"), std::string::npos)
      << h.capture->hook_reason();
  LockRecorder recorder(h.io_, **store, "nfs1", 0, 20ms);
  h.also = [&](const LockChange& c) { recorder.on_change(c); };
  // As lockferryd does: a manager that is gone from /proc held nothing any more (a reconcile
  // no longer covers it once the /proc rescan has dropped it).
  h.also_gone = [&](const ManagerProcess& m) {
    h.table.drop_manager(m.pid);
    recorder.on_manager_gone(m.pid);
  };

  // Even files: fcntl write locks (one owner: the process); odd files: OFD read locks through a
  // second open file each. Ranges are 5 bytes, 10 apart: nothing merges.
  std::vector<int> fds(kFiles, -1), ofds(kFiles, -1);
  Child child(name, {
                        [&] {
                          for (int f = 0; f < kFiles; ++f) {
                            fds[f] = ::open(files[f].c_str(), O_RDWR);
                            ofds[f] = ::open(files[f].c_str(), O_RDWR);
                          }
                          for (int i = 0; i < kFiles * kSlots; ++i) {
                            const int f = i % kFiles, slot = i / kFiles;
                            const bool ok =
                                f % 2 == 0 ? set_lock(fds[f], F_SETLK, F_WRLCK, slot * 10, 5)
                                           : set_lock(ofds[f], F_OFD_SETLK, F_RDLCK, slot * 10, 5);
                            if (!ok) return false;
                          }
                          return true;
                        },
                        // Every other slot released; one OFD file closed (its locks go on close).
                        [&] {
                          for (int i = 0; i < kFiles * kSlots; ++i) {
                            const int f = i % kFiles, slot = i / kFiles;
                            if (slot % 2 != 0) continue;
                            const bool ok =
                                f % 2 == 0 ? set_lock(fds[f], F_SETLK, F_UNLCK, slot * 10, 5)
                                           : set_lock(ofds[f], F_OFD_SETLK, F_UNLCK, slot * 10, 5);
                            if (!ok) return false;
                          }
                          return ::close(ofds[1]) == 0;
                        },
                    });
  ASSERT_TRUE(child.ready());
  h.capture->rescan();
  ASSERT_TRUE(h.is_manager(child.pid()));

  auto settled = [&] {
    return table_rows(h.table.records("nfs1", 0)) == kernel_rows(child.pid(), inodes) &&
           !recorder.dirty();
  };
  // Step 1: 400 grants into a 3-event ring buffer.
  ASSERT_TRUE(child.step());
  const auto want1 = kernel_rows(child.pid(), inodes);
  ASSERT_EQ(want1.size(), static_cast<std::size_t>(kFiles * kSlots));
  ASSERT_TRUE(h.wait_until(settled, 10s))
      << h.table.size() << " ranges recorded, kernel holds " << want1.size() << "; drops "
      << h.capture->counters().drops << ", reconciles " << h.reconciles;
  auto c = h.capture->counters();
  EXPECT_GT(c.drops, 0u) << "the test must overflow the ring buffer";
  EXPECT_LT(c.changes, want1.size());  // events were lost...
  EXPECT_GE(c.reconciles_after_drops, 1u);
  EXPECT_GT(recorder.stats().reconcile_repairs, 0u);  // ...and the reconcile put them back
  EXPECT_EQ(table_rows(h.table.records("nfs1", 0)), want1);
  auto stored = (*store)->list_locks("nfs1");
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(table_rows(*stored), want1);
  EXPECT_EQ(*stored, recorder.table().records("nfs1", 0));
  for (const auto& r : *stored) {
    EXPECT_EQ(r.manager_pid, static_cast<std::uint32_t>(child.pid()));
    EXPECT_EQ(r.manager_comm, name);
    EXPECT_TRUE(std::find(files.begin(), files.end(), r.path) != files.end()) << r.path;
  }

  // Step 2: 200 releases (100 fcntl, 100 OFD) and a close, into the same tiny buffer.
  const auto repairs1 = recorder.stats().reconcile_repairs;
  ASSERT_TRUE(child.step());
  const auto want2 = kernel_rows(child.pid(), inodes);
  ASSERT_EQ(want2.size(), want1.size() - 200 - kSlots / 2);
  ASSERT_TRUE(h.wait_until(settled, 10s))
      << h.table.size() << " ranges recorded, kernel holds " << want2.size();
  stored = (*store)->list_locks("nfs1");
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(table_rows(*stored), want2);
  spdlog::info("reconcile test: {} drops, {} reconciles after drops, {} repairs ({} in step 1)",
               h.capture->counters().drops, h.capture->counters().reconciles_after_drops,
               recorder.stats().reconcile_repairs, repairs1);

  // Exit: the kernel releases everything; so does the table.
  ASSERT_EQ(child.finish(), 0);
  ASSERT_TRUE(h.wait_until([&] { return h.table.empty() && !recorder.dirty(); }, 10s))
      << h.table.size();
  stored = (*store)->list_locks("nfs1");
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_TRUE(stored->empty());
}

// Records of `pid` in the table.
std::size_t records_of(const LockTable& table, pid_t pid) {
  std::size_t n = 0;
  for (const auto& r : table.records("nfs1", 0))
    if (r.manager_pid == static_cast<std::uint32_t>(pid)) ++n;
  return n;
}

// Any user can name a process "ganesha.nfsd". One of user nobody taking hundreds of locks must
// leave the table (and the store) alone - no event, not in a reconcile - and be counted; a root
// process of the same name from the configured binary, doing the same, is recorded.
TEST_P(LockCaptureTest, AProcessOfAnotherUserNamedLikeAManagerIsIgnoredAndCounted) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  constexpr uid_t kNobody = 65534;
  constexpr int kLocks = 300;
  TempTree tree;
  ASSERT_EQ(::chmod(tree.root().c_str(), 0755), 0);
  const std::string a = tree.file("a.dat"), b = tree.file("b.dat");
  ASSERT_EQ(::chmod(a.c_str(), 0666), 0);
  Harness h(GetParam(), {"ganesha.nfsd"}, 200ms);
  ASSERT_TRUE(h.capture) << h.error;
  auto take_locks = [&](const std::string& path) {
    return [&, path] {
      const int fd = ::open(path.c_str(), O_RDWR);
      for (int i = 0; i < kLocks; ++i)
        if (!set_lock(fd, F_OFD_SETLK, F_WRLCK, i * 10, 5)) return false;
      return true;
    };
  };
  Child impostor("ganesha.nfsd", {take_locks(a)}, kNobody);
  ASSERT_TRUE(impostor.ready());
  ASSERT_TRUE(impostor.step());
  h.capture->rescan();
  h.capture->reconcile();
  h.wait_until([] { return false; }, 500ms);
  EXPECT_EQ(records_of(h.table, impostor.pid()), 0u);
  EXPECT_FALSE(h.is_manager(impostor.pid()));
  auto c = h.capture->counters();
  EXPECT_GE(c.impostors, 1u);
  // The kernel side refused it when it took the name: not one of its locks was even an event.
  EXPECT_GE(c.impostors_refused_in_kernel, 1u);
  for (const auto& change : h.changes)
    EXPECT_NE(change.manager_pid, static_cast<std::uint32_t>(impostor.pid()));

  // The same as root from the configured binary: a manager, every lock recorded.
  Child manager("ganesha.nfsd", {take_locks(b)});
  ASSERT_TRUE(manager.ready());
  ASSERT_TRUE(manager.step());
  ASSERT_TRUE(h.wait_until([&] { return records_of(h.table, manager.pid()) == kLocks; }))
      << records_of(h.table, manager.pid());
  EXPECT_EQ(records_of(h.table, impostor.pid()), 0u);
  manager.finish();
  impostor.finish();
}

// Root, but not the lock manager's binary: the kernel side lets it in (it only checks the user),
// userspace refuses its events and leaves it out of reconciles.
TEST_P(LockCaptureTest, ARootProcessRunningAnotherBinaryIsNotAManager) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  const std::string name = "lfmgr" + std::to_string(::getpid() % 1000000);
  TempTree tree;
  const std::string a = tree.file("a.dat");
  Harness h(GetParam(), {name}, std::chrono::minutes(10),
            [](LockOptions& o) { o.manager_binaries = {"/usr/bin/ganesha.nfsd"}; });
  ASSERT_TRUE(h.capture) << h.error;
  int fd = -1;
  Child child(name, {[&] {
                fd = ::open(a.c_str(), O_RDWR);
                return set_lock(fd, F_SETLK, F_WRLCK, 0, 10) &&
                       set_lock(fd, F_SETLK, F_WRLCK, 20, 10);
              }});
  ASSERT_TRUE(child.ready());
  ASSERT_TRUE(child.step());
  if (GetParam() == LockHook::uprobe) {
    // Uprobes go only into processes userspace verified: its locks never run a program.
    h.wait_until([] { return false; }, 300ms);
    EXPECT_EQ(h.capture->counters().hits, 0u);
  } else {
    ASSERT_TRUE(h.wait_until([&] { return h.capture->counters().impostor_events >= 1; }))
        << h.capture->counters().grants << " grants";
  }
  h.capture->reconcile();
  h.capture->rescan();
  h.wait_until([] { return false; }, 300ms);
  EXPECT_TRUE(h.changes.empty());
  EXPECT_TRUE(h.table.empty());
  EXPECT_FALSE(h.is_manager(child.pid()));
  EXPECT_EQ(h.capture->counters().impostors, 1u);
}

// NFS-Ganesha's clients: a lock taken inside an NLM handler (found through the dispatch table of a
// library built like libganesha_nfsd.so) carries the request's caller_name; a lock the same
// process takes outside any handler names nobody (the return probe forgot the request).
TEST_P(LockCaptureTest, GaneshaLocksNameTheNlmCallerOfTheirRequest) {
  LOCKFERRY_REQUIRE_BPF_OR_SKIP();
  const std::string name = "lfgsh" + std::to_string(::getpid() % 1000000);
  TempTree tree;
  const std::string a = tree.file("a.dat");
  Harness h(GetParam(), {name}, 200ms,
            [](LockOptions& o) { o.ganesha_library = LOCKFERRY_FAKE_GANESHA; });
  ASSERT_TRUE(h.capture) << h.error;
  const auto names = h.capture->client_names();
  ASSERT_NE(names.source.find("uprobes"), std::string::npos) << names.reason;
  using Dispatch = int (*)(const char*, void*);
  Dispatch dispatch = nullptr;
  int fd = -1;
  char caller[] = "client-a.example";
  // nlm4_lockargs / nlm4_unlockargs as XDR decodes them (include/lockferry/events.h offsets).
  struct Lock {
    char* caller_name;
    std::uint64_t fh[2], oh[2];
    std::int32_t svid;
    std::uint64_t offset, len;
  };
  struct LockArgs {
    std::uint64_t cookie[2];
    std::int32_t block, exclusive;
    Lock alock;
    std::int32_t reclaim, state;
  };
  static_assert(offsetof(LockArgs, alock) == LF_GANESHA_LOCKARGS_CALLER);
  Child child(name, {[&] {
                       void* lib = ::dlopen(LOCKFERRY_FAKE_GANESHA, RTLD_NOW);
                       if (!lib) return false;
                       dispatch = reinterpret_cast<Dispatch>(::dlsym(lib, "fake_ganesha_dispatch"));
                       fd = ::open(a.c_str(), O_RDWR);
                       LockArgs args{};
                       args.exclusive = 1;
                       args.alock = {caller, {}, {}, fd, 0, 10};
                       return dispatch && dispatch("NLM4_LOCK", &args) == 0;
                     },
                     [&] { return set_lock(fd, F_OFD_SETLK, F_WRLCK, 100, 10); }});
  ASSERT_TRUE(child.ready());
  h.capture->rescan();  // verified (and for the uprobe set attached) before its first lock
  ASSERT_TRUE(h.is_manager(child.pid()));
  ASSERT_TRUE(child.step());
  ASSERT_TRUE(h.wait_for_changes(1));
  ASSERT_TRUE(child.step());
  ASSERT_TRUE(h.wait_for_changes(2));
  EXPECT_EQ(h.changes[0].start, 0u);
  EXPECT_EQ(h.changes[0].nlm_host, "client-a.example");
  EXPECT_EQ(h.changes[1].start, 100u);
  EXPECT_EQ(h.changes[1].nlm_host, "");
}

// The hook sets that see a userspace manager's fcntl and OFD locks, each where the kernel loads
// it (or LOCKFERRY_REQUIRE_HOOKS names it): uprobe in the manager process's C library, tp_btf and
// the classic tracepoints in the kernel's lock code. The kprobe set sees kernel lockd's NLM calls
// only: its tests are lockd_hooks_test.cpp and, with a real knfsd, vm.lockd_locks.
INSTANTIATE_TEST_SUITE_P(Hooks, LockCaptureTest,
                         ::testing::ValuesIn(test::lock_hook_sets_to_test(
                             {LockHook::uprobe, LockHook::tp_btf, LockHook::tracepoint})),
                         [](const auto& info) { return std::string(to_string(info.param)); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LockCaptureTest);

}  // namespace
}  // namespace lockferry::capture
