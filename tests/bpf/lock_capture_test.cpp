// SPDX-License-Identifier: Apache-2.0
// Lock capture against the real kernel, with both hooks (tp_btf and classic tracepoints): a child
// process named like a lock manager takes, splits, merges and releases fcntl and OFD locks (as
// NFS-Ganesha's VFS backend does: F_OFD_SETLK on one open file per lock owner), and the recorded
// table must match exactly at every step; locks of other processes must not be recorded.
#include "capture/lock_capture.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "bpf_env.h"
#include "capture/lock_recorder.h"
#include "store/store.h"

namespace lockferry::capture {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
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

bool set_lock(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  fl.l_pid = 0;  // must be 0 for OFD locks
  return ::fcntl(fd, cmd, &fl) == 0;
}

// A child process that runs numbered steps when told to (one byte down a pipe) and answers with
// one byte ('k' done, 'f' a lock call failed). Steps run in the child, so its locks have the
// child's owner, pid and name.
class Child {
 public:
  Child(std::string name, std::vector<std::function<bool()>> steps) {
    int down[2], up[2];
    if (::pipe(down) != 0 || ::pipe(up) != 0) std::abort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(down[1]);
      ::close(up[0]);
      ::alarm(60);  // failsafe: never outlive a hung test
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

// A LockCapture feeding a LockTable, on its own io_context.
class Harness {
 public:
  Harness(LockHook hook, std::vector<std::string> managers,
          std::chrono::milliseconds rescan_interval = 200ms) {
    LockOptions options;
    options.managers = std::move(managers);
    options.hook = hook;
    options.rescan_interval = rescan_interval;
    auto started = LockCapture::start(
        io_, options,
        [this](const LockChange& c) {
          changes.push_back(c);
          table.apply(c);
        },
        [this](const ManagerProcess& m) { gone.push_back(m); });
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

  // Exit closes the last open file of a: the OFD lock goes too.
  const pid_t child_pid = child.pid();
  ASSERT_EQ(child.finish(), 0);
  ASSERT_TRUE(h.wait_until([&] { return h.table.empty(); }));
  const auto counters = h.capture->counters();
  EXPECT_EQ(counters.drops, 0u);
  EXPECT_EQ(counters.grants, 5u);  // 4 in step 1, 1 in step 2
  EXPECT_GE(counters.releases, 4u);
  EXPECT_EQ(counters.failed, 0u);
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
  EXPECT_GE(h.capture->counters().failed, 1u);
  ::close(mine);
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
              }});
  ASSERT_TRUE(child.ready());
  ASSERT_TRUE(child.step());
  ASSERT_TRUE(h.wait_for_changes(1));
  expect_table(h.table, child.pid(), name, {{a, 0, 9, "write", 'P'}});
  EXPECT_GE(h.capture->counters().manager_adds, 1u);
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

INSTANTIATE_TEST_SUITE_P(Hooks, LockCaptureTest,
                         ::testing::Values(LockHook::tp_btf, LockHook::tracepoint),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace lockferry::capture
