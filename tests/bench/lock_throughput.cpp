// SPDX-License-Identifier: Apache-2.0
// Benchmark 3: lock event throughput — a process named like a lock manager grants and releases
// fcntl (POSIX) and OFD byte-range locks on many files at increasing rates while lockferry's lock
// capture and lock recorder (into an fsynced dir:// store) run in this process on one io_context,
// as in lockferryd. Per rate: events offered and recorded per second, ring-buffer drops, the
// reconciles those drops caused and the ranges they repaired, and whether the stored table then
// equals the kernel's locks (/proc/locks) exactly.
#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "../support/fcntl_lock.h"
#include "bench_util.h"
#include "capture/lock_capture.h"
#include "procfs/locks.h"
#include "procfs/process.h"
#include "record/lock_recorder.h"
#include "store/store.h"

namespace fs = std::filesystem;
using namespace lockferry;
using namespace lockferry::bench;
using namespace std::chrono_literals;

namespace {

struct Command {
  std::int64_t rate = 0;  // operations per second; 0 = as fast as possible
  std::int64_t ops = 0;   // 0 = exit
};
struct Reply {
  std::int64_t ops = 0;
  std::int64_t elapsed_ns = 0;
  std::int64_t failures = 0;
};

using lockferry::test::set_lock;

// The lock manager: operation k toggles slot (k / files) % slots of file k % files — a grant
// if the slot is free, a release if held — so every operation is one kernel lock change. Even
// files take fcntl locks, odd files OFD locks (NFS-Ganesha's way); even slots write, odd read.
// Slots are 8 bytes, 16 apart: nothing merges.
[[noreturn]] void manager_main(const std::string& name, const std::vector<std::string>& files,
                               int slots, int cmd_fd, int reply_fd) {
  ::prctl(PR_SET_NAME, name.c_str(), 0, 0, 0);
  ::prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);  // pacing sleeps of tens of µs
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  const int nfiles = static_cast<int>(files.size());
  std::vector<int> fds(files.size());
  for (int f = 0; f < nfiles; ++f) fds[f] = ::open(files[f].c_str(), O_RDWR);
  std::vector<std::vector<bool>> held(files.size(), std::vector<bool>(slots, false));
  std::int64_t k = 0;
  Command cmd;
  while (::read(cmd_fd, &cmd, sizeof cmd) == sizeof cmd && cmd.ops > 0) {
    Reply reply;
    const std::int64_t start = now_ns();
    for (std::int64_t j = 0; j < cmd.ops; ++j, ++k) {
      if (cmd.rate > 0) {
        const std::int64_t due = start + j * 1'000'000'000 / cmd.rate;
        for (std::int64_t now = now_ns(); now < due; now = now_ns()) {
          const timespec ts{0, static_cast<long>(due - now)};
          ::nanosleep(&ts, nullptr);
        }
      }
      const int f = static_cast<int>(k % nfiles);
      const int slot = static_cast<int>((k / nfiles) % slots);
      const bool ofd = f % 2 == 1;
      const short type = held[f][slot] ? F_UNLCK : (slot % 2 == 0 ? F_WRLCK : F_RDLCK);
      if (set_lock(fds[f], ofd ? F_OFD_SETLK : F_SETLK, type, slot * 16, 8))
        held[f][slot] = !held[f][slot];
      else
        ++reply.failures;
    }
    reply.ops = cmd.ops;
    reply.elapsed_ns = now_ns() - start;
    if (::write(reply_fd, &reply, sizeof reply) != sizeof reply) ::_exit(2);
  }
  ::_exit(0);
}

using Row = std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, std::string>;

// The manager's locks as /proc/locks shows them: its POSIX lines and the OFD lines (pid -1) on
// the bench's files, which nobody else locks.
std::vector<Row> kernel_rows(pid_t manager, const std::set<std::uint64_t>& inodes) {
  std::vector<Row> out;
  auto text = procfs::read_proc_file("/proc/locks");
  if (!text) return out;
  for (const auto& l : procfs::parse_proc_locks(*text)) {
    if (l.waiting || !inodes.contains(l.ino)) continue;
    if ((l.kind == "POSIX" && l.pid == manager) || l.kind == "OFDLCK")
      out.emplace_back(l.ino, l.start, l.end, l.type == "WRITE" ? "write" : "read");
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Row> record_rows(const std::vector<LockRecord>& records) {
  std::vector<Row> out;
  for (const auto& r : records) out.emplace_back(r.ino, r.start, r.end, r.type);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<long> parse_list(const std::string& text) {
  std::vector<long> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::strtol(item.c_str(), nullptr, 10));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags(argc, argv);
  // Offered rates (lock changes per second); 0 = as fast as the manager can.
  const auto rates = parse_list(flags.value_of("rates", "1000,5000,10000,20000,50000,100000,0"));
  const double seconds = static_cast<double>(flags.number("ms", 2000)) / 1000.0;  // per rate
  const int nfiles = static_cast<int>(std::max(1L, flags.number("files", 16)));
  const int slots = static_cast<int>(std::max(1L, flags.number("slots", 64)));
  const auto ring_kb = static_cast<std::uint32_t>(flags.number("ring-kb", 4096));
  const long batch_ms = flags.number("batch-ms", 75);         // recorder's write coalescing
  const long reconcile_ms = flags.number("reconcile-ms", 0);  // timer reconcile; 0 = drops only
  const std::string name = flags.value_of("name", "lf-bench-mgr");
  const std::string base_dir = flags.value_of("dir", "/var/tmp");  // the store's disk
  // Each drop and reconcile is logged at warn level: the table below counts them instead.
  spdlog::set_level(flags.has("verbose") ? spdlog::level::info : spdlog::level::err);
  if (::geteuid() != 0) {
    std::printf("SKIP: lock_throughput needs root (BPF)\n");
    return kSkipExit;
  }
  if (auto ok = capture::check_manager_names({name}); !ok) {
    std::printf("--name: %s\n", ok.error().message.c_str());
    return 2;
  }
  std::string tmpl = base_dir + "/lockferry-bench-locks-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string root = tmpl;
  std::vector<std::string> files;
  std::set<std::uint64_t> inodes;
  for (int f = 0; f < nfiles; ++f) {
    files.push_back(root + "/file-" + std::to_string(f));
    const int fd = ::open(files.back().c_str(), O_RDWR | O_CREAT, 0644);
    struct stat st {};
    ::fstat(fd, &st);
    ::close(fd);
    inodes.insert(st.st_ino);
  }
  fs::create_directories(root + "/store");
  auto store = store::open_store("dir://" + root + "/store");
  if (!store) {
    std::printf("store: %s\n", store.error().message.c_str());
    fs::remove_all(root);
    return 1;
  }

  boost::asio::io_context io;
  record::LockRecorder recorder(io, **store, "bench", 0, std::chrono::milliseconds(batch_ms));
  capture::LockOptions options;
  options.managers = {name};
  // The lock-taking children are forks of this binary, running as root.
  options.manager_binaries = {std::filesystem::read_symlink("/proc/self/exe").string()};
  options.ring_buffer_kb = ring_kb;
  options.reconcile_interval = std::chrono::milliseconds(reconcile_ms);
  options.owner_key_path = "";
  options.pin_dir = "";
  auto started = capture::LockCapture::start(
      io, options, [&](const capture::LockChange& c) { recorder.on_change(c); },
      [&](const capture::ManagerProcess& m) { recorder.on_manager_gone(m.pid); });
  if (!started) {
    std::printf("SKIP: lock capture unavailable: %s\n", started.error().message.c_str());
    fs::remove_all(root);
    return kSkipExit;
  }
  auto& cap = **started;

  int down[2], up[2];
  if (::pipe(down) != 0 || ::pipe(up) != 0) return 1;
  const pid_t manager = ::fork();
  if (manager < 0) return 1;
  if (manager == 0) {
    ::close(down[1]);
    ::close(up[0]);
    manager_main(name, files, slots, down[0], up[1]);
  }
  ::close(down[0]);
  ::close(up[1]);
  // The rename hook adds the manager at once; wait for it (and a /proc rescan) to be sure.
  for (int i = 0; i < 100 && cap.managers().empty(); ++i) {
    io.restart();
    io.run_for(10ms);
    cap.rescan();
  }

  std::printf(
      "lock_throughput: manager '%s' (pid %d), %d files x %d slots (even files fcntl, "
      "odd OFD), ring buffer %u KiB, recorder batch %ld ms, dir:// store on %s, %s\n",
      name.c_str(), manager, nfiles, slots, ring_kb, batch_ms, base_dir.c_str(),
      cap.hook_reason().substr(0, cap.hook_reason().find(';')).c_str());
  std::printf(
      "| offered rate | ops | offered ev/s | recorded ev/s | ring drops | reconciles "
      "(after drops) | repaired ranges | drain ms | held | table == /proc/locks |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
  int status = 0;
  long highest_clean = -1;
  for (long rate : rates) {
    const std::int64_t ops =
        rate > 0 ? static_cast<std::int64_t>(static_cast<double>(rate) * seconds)
                 : static_cast<std::int64_t>(400'000 * seconds);  // flat out: ~ what one core does
    const auto c0 = cap.counters();
    const auto r0 = recorder.stats();
    Command cmd{rate, ops};
    if (::write(down[1], &cmd, sizeof cmd) != sizeof cmd) break;
    // Deliver while the manager works, as lockferryd does: one thread for events and store.
    Reply reply;
    bool replied = false;
    while (!replied) {
      io.restart();
      io.run_for(5ms);
      pollfd p{up[0], POLLIN, 0};
      if (::poll(&p, 1, 0) == 1) replied = ::read(up[0], &reply, sizeof reply) == sizeof reply;
    }
    const std::int64_t done = now_ns();
    // Drain: every queued event, the reconcile a drop schedules, the recorder's write.
    const auto want = kernel_rows(manager, inodes);
    bool exact = false;
    for (auto deadline = std::chrono::steady_clock::now() + 30s;
         std::chrono::steady_clock::now() < deadline;) {
      io.restart();
      io.run_for(10ms);
      cap.poll();
      if (recorder.dirty()) continue;
      auto stored = (*store)->list_locks("bench");
      if (stored && record_rows(*stored) == want) {
        // Settled only once no reconcile is due any more (a drop counted after the last one).
        io.restart();
        io.run_for(50ms);
        if (recorder.dirty()) continue;
        stored = (*store)->list_locks("bench");
        exact = stored && record_rows(*stored) == want;
        if (exact) break;
      }
    }
    const std::int64_t drain_ns = now_ns() - done;
    const auto c1 = cap.counters();
    const auto r1 = recorder.stats();
    const double secs = static_cast<double>(reply.elapsed_ns) / 1e9;
    const std::uint64_t recorded = c1.changes - c0.changes;
    const std::uint64_t drops = c1.drops - c0.drops;
    std::printf(
        "| %s | %lld | %.0f | %.0f | %llu | %llu (%llu) | %llu | %.0f | %zu | %s |\n",
        rate > 0 ? std::to_string(rate).c_str() : "max", static_cast<long long>(reply.ops),
        static_cast<double>(reply.ops) / secs, static_cast<double>(recorded) / secs,
        static_cast<unsigned long long>(drops),
        static_cast<unsigned long long>(c1.reconciles - c0.reconciles),
        static_cast<unsigned long long>(c1.reconciles_after_drops - c0.reconciles_after_drops),
        static_cast<unsigned long long>(r1.reconcile_repairs - r0.reconcile_repairs),
        static_cast<double>(drain_ns) / 1e6, want.size(), exact ? "yes" : "**no**");
    std::fflush(stdout);
    if (reply.failures > 0)
      std::printf("WARN: %lld lock calls of the manager failed\n",
                  static_cast<long long>(reply.failures));
    if (!exact) status = 1;
    if (drops == 0 && exact && recorded == static_cast<std::uint64_t>(reply.ops))
      highest_clean =
          std::max(highest_clean, static_cast<long>(static_cast<double>(reply.ops) / secs));
  }
  Command quit{0, 0};
  (void)!::write(down[1], &quit, sizeof quit);
  ::close(down[1]);
  int wstatus = 0;
  ::waitpid(manager, &wstatus, 0);
  ::close(up[0]);
  const auto c = cap.counters();
  std::printf(
      "highest offered rate with zero drops: %ld ev/s; last reconcile read %llu kernel "
      "locks in %llu us; recorder wrote the table %llu times\n",
      highest_clean, static_cast<unsigned long long>(c.reconcile_locks),
      static_cast<unsigned long long>(c.reconcile_us),
      static_cast<unsigned long long>(recorder.stats().tables_written));
  cap.stop();
  recorder.stop();
  fs::remove_all(root);
  return status;
}
