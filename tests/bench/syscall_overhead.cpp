// SPDX-License-Identifier: Apache-2.0
// Benchmark 1: what lockferry's kernel programs cost processes that are not NFS — openat+close of
// a file outside every watched directory, and fcntl lock/unlock by a process that is not a lock
// manager — measured with the programs attached vs detached, alternating in the same run. No-op
// programs on the same hooks ("noop-*" sides) separate the hooks' own cost from the programs'.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "capture/capture.h"
#include "capture/lock_capture.h"

namespace fs = std::filesystem;
using namespace lockferry;
using namespace lockferry::bench;

namespace {

// ns per openat+close of `path`, over `n` calls. O_RDONLY is what nearly every open is; writers
// (O_CREAT|O_TRUNC) pass the kernel side's first filter and cost more.
double open_close_ns(const std::string& path, long n, int flags = O_RDONLY) {
  const std::int64_t t0 = now_ns();
  for (long i = 0; i < n; ++i) {
    int fd = ::openat(AT_FDCWD, path.c_str(), flags | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
  }
  return static_cast<double>(now_ns() - t0) / static_cast<double>(n);
}

// ns per creat + close + unlink of a new file `path` (one "op" = the three syscalls).
double creat_unlink_ns(const std::string& path, long n) {
  const std::int64_t t0 = now_ns();
  for (long i = 0; i < n; ++i) {
    int fd = ::openat(AT_FDCWD, path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
    ::unlink(path.c_str());
  }
  return static_cast<double>(now_ns() - t0) / static_cast<double>(n);
}

// ns per rename(2) of `a` to `b` and back (one "op" = one rename).
double rename_ns(const std::string& a, const std::string& b, long n) {
  const std::int64_t t0 = now_ns();
  for (long i = 0; i < n; ++i) ::rename((i % 2 == 0 ? a : b).c_str(), (i % 2 == 0 ? b : a).c_str());
  if (n % 2 != 0) ::rename(b.c_str(), a.c_str());
  return static_cast<double>(now_ns() - t0) / static_cast<double>(n);
}

// ns per F_SETLK write lock + unlock on `fd`, over `n` pairs (one "op" = lock + unlock).
double lock_unlock_ns(int fd, long n) {
  struct flock fl {};
  fl.l_whence = SEEK_SET;
  fl.l_len = 1;
  const std::int64_t t0 = now_ns();
  for (long i = 0; i < n; ++i) {
    fl.l_type = F_WRLCK;
    ::fcntl(fd, F_SETLK, &fl);
    fl.l_type = F_UNLCK;
    ::fcntl(fd, F_SETLK, &fl);
  }
  return static_cast<double>(now_ns() - t0) / static_cast<double>(n);
}

// The hooks statmon_watch's classic variant uses (the ones this kernel has are attached).
const std::vector<std::string> kStatmonTracepoints = {
    "sys_enter_openat",   "sys_exit_openat",   "sys_enter_openat2",   "sys_exit_openat2",
    "sys_enter_open",     "sys_exit_open",     "sys_enter_creat",     "sys_exit_creat",
    "sys_enter_close",    "sys_exit_close",    "sys_enter_unlinkat",  "sys_exit_unlinkat",
    "sys_enter_unlink",   "sys_exit_unlink",   "sys_enter_renameat2", "sys_exit_renameat2",
    "sys_enter_renameat", "sys_exit_renameat", "sys_enter_rename",    "sys_exit_rename"};

// "r0 = 0; exit": the cheapest program a hook can run, to measure the hook itself.
constexpr bpf_insn kNoop[] = {
    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
    {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
};

// Whatever one side attached: lockferry's captures, or no-op programs (fds closed on stop).
struct Attached {
  std::unique_ptr<capture::Capture> files;
  std::unique_ptr<capture::LockCapture> locks;
  std::vector<int> fds;
  std::string error;
  Attached() = default;
  Attached(Attached&&) = default;
  Attached& operator=(Attached&&) = default;
  Attached(const Attached&) = delete;
  ~Attached() { stop(); }
  void stop() {
    if (files) files->stop();
    if (locks) locks->stop();
    files.reset();
    locks.reset();
    // Detach (perf events, raw tracepoint links) before the programs go.
    for (auto it = fds.rbegin(); it != fds.rend(); ++it) ::close(*it);
    fds.clear();
  }
};

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

// No-op on classic tracepoints `group`/`names` (missing ones skipped), as libbpf attaches them:
// one perf event per tracepoint with the program set on it.
void attach_noop_classic(Attached& a, const std::string& group,
                         const std::vector<std::string>& names) {
  const int prog = bpf_prog_load(BPF_PROG_TYPE_TRACEPOINT, "lf_noop_tp", "GPL", kNoop, 2, nullptr);
  if (prog < 0) {
    a.error = "cannot load a tracepoint program: " + std::string(strerror(errno));
    return;
  }
  a.fds.push_back(prog);
  for (const auto& name : names) {
    const std::string id = read_line("/sys/kernel/tracing/events/" + group + "/" + name + "/id");
    if (id.empty()) continue;
    perf_event_attr attr{};
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.size = sizeof(attr);
    attr.config = std::stoull(id);
    attr.sample_period = 1;
    attr.wakeup_events = 1;
    const int pfd =
        static_cast<int>(::syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
    if (pfd < 0) {
      a.error = "perf_event_open " + group + "/" + name + ": " + strerror(errno);
      return;
    }
    a.fds.push_back(pfd);
    if (::ioctl(pfd, PERF_EVENT_IOC_SET_BPF, prog) != 0 ||
        ::ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0) != 0) {
      a.error = "attaching to " + group + "/" + name + ": " + strerror(errno);
      return;
    }
  }
}

// No-op raw tracepoint programs (untyped u64 arguments) on `names`.
void attach_noop_raw(Attached& a, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    const int prog =
        bpf_prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, "lf_noop_raw", "GPL", kNoop, 2, nullptr);
    if (prog < 0) {
      a.error = "cannot load a raw_tp program: " + std::string(strerror(errno));
      return;
    }
    a.fds.push_back(prog);
    const int link = bpf_raw_tracepoint_open(name.c_str(), prog);
    if (link < 0) {
      a.error = "raw_tp " + name + ": " + strerror(errno);
      return;
    }
    a.fds.push_back(link);
  }
}

// No-op BTF-typed tracepoint programs (tp_btf) on `names`.
void attach_noop_btf(Attached& a, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    const int btf_id = libbpf_find_vmlinux_btf_id(name.c_str(), BPF_TRACE_RAW_TP);
    if (btf_id < 0) {
      a.error = "no BTF for tracepoint " + name;
      return;
    }
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_RAW_TP,
                .attach_btf_id = static_cast<__u32>(btf_id));
    const int prog = bpf_prog_load(BPF_PROG_TYPE_TRACING, "lf_noop_btf", "GPL", kNoop, 2, &opts);
    if (prog < 0) {
      a.error = "cannot load a tp_btf program on " + name + ": " + strerror(errno);
      return;
    }
    a.fds.push_back(prog);
    const int link = bpf_raw_tracepoint_open(nullptr, prog);
    if (link < 0) {
      a.error = "tp_btf " + name + ": " + strerror(errno);
      return;
    }
    a.fds.push_back(link);
  }
}

struct Side {
  std::string name;
  std::string what;
  std::function<Attached()> attach;
};

// Per-program run statistics (BPF_ENABLE_STATS) of the programs with ids above `min_id`.
struct ProgRuns {
  std::string name;
  std::uint64_t cnt = 0, ns = 0;
};
std::map<std::uint32_t, ProgRuns> prog_runs(std::uint32_t min_id) {
  std::map<std::uint32_t, ProgRuns> out;
  std::uint32_t id = min_id;
  while (bpf_prog_get_next_id(id, &id) == 0) {
    const int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_prog_info info{};
    std::uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
      out[id] = {info.name, info.run_cnt, info.run_time_ns};
    ::close(fd);
  }
  return out;
}
std::uint32_t max_prog_id() {
  std::uint32_t id = 0, max = 0;
  while (bpf_prog_get_next_id(id, &id) == 0) max = id;
  return max;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags(argc, argv);
  const long reps = flags.number("reps", 6);      // attach/detach cycles (sides rotated)
  const long blocks = flags.number("blocks", 5);  // measured blocks per side per cycle
  const long ops = flags.number("ops", 20000);    // syscalls (pairs) per block
  // Which sides to compare with "off" (nothing attached), comma-separated; see `sides` below.
  // --only=files|locks is the older spelling of --sides=files|locks.
  std::string side_list = flags.value_of("sides", flags.value_of("only", "both"));
  // Also attribute time to each attached program (run_time_ns/run_cnt with BPF stats on).
  const bool stats = flags.has("stats");
  spdlog::set_level(spdlog::level::warn);

  if (::geteuid() != 0) {
    std::printf("SKIP: syscall_overhead needs root to load the BPF programs\n");
    return kSkipExit;
  }
  std::string tmpl = "/tmp/lockferry-bench-sys-XXXXXX";
  const std::string root = ::mkdtemp(tmpl.data());
  const std::string watched = root + "/sm";
  const std::string other = root + "/data";
  fs::create_directories(watched);
  fs::create_directories(other);
  const std::string file = other + "/plain";
  {
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT, 0644);
    if (fd >= 0) ::close(fd);
  }
  int lock_fd = ::open(file.c_str(), O_RDWR);

  boost::asio::io_context io;
  // The monitor-record capture in `mode`; bpf takes either BPF hook set, auto whatever it picks.
  auto files = [&](Attached& a, capture::Mode mode = capture::Mode::bpf) {
    capture::Options o;
    o.mode = mode;
    o.dirs = {watched};
    o.pin_dir = "";
    auto f = capture::Capture::start(
        io, o, [](const capture::FileChange&) {}, [](const std::string&) {});
    const bool bpf =
        f && ((*f)->mode() == capture::Mode::fentry || (*f)->mode() == capture::Mode::kprobe ||
              (*f)->mode() == capture::Mode::tracepoint);
    if (!f)
      a.error = f.error().message;
    else if (mode == capture::Mode::bpf && !bpf)
      a.error = "file capture fell back to " + (*f)->mode_reason();
    else
      a.files = std::move(*f);
  };
  auto files_in = [&](capture::Mode mode) {
    return [&files, mode] {
      Attached a;
      files(a, mode);
      return a;
    };
  };
  // `managers` empty: LockOptions' default (lockd and ganesha.nfsd, as lockferryd's).
  auto locks = [&](Attached& a, capture::LockHook hook, std::vector<std::string> managers = {}) {
    capture::LockOptions lo;
    lo.pin_dir = "";
    lo.hook = hook;
    if (!managers.empty()) lo.managers = std::move(managers);
    auto l = capture::LockCapture::start(
        io, lo, [](const capture::LockChange&) {}, [](const capture::ManagerProcess&) {});
    if (!l)
      a.error = l.error().message;
    else
      a.locks = std::move(*l);
  };
  const std::vector<Side> all_sides = {
      {"both", "capture mode auto + lock_watch (what lockferryd attaches by default)",
       [&] {
         Attached a;
         files(a, capture::Mode::automatic);
         if (a.error.empty()) locks(a, capture::LockHook::automatic);
         return a;
       }},
      {"files", "statmon_watch only (bpf: fentry, else kprobe, else syscall tracepoints)",
       [&] {
         Attached a;
         files(a);
         return a;
       }},
      // Each monitor-record hook set alone (capture.h: Mode).
      {"files-auto", "the capture mode = auto picks here", files_in(capture::Mode::automatic)},
      {"files-fentry", "statmon_watch, fentry/fexit hook set", files_in(capture::Mode::fentry)},
      {"files-kprobe", "statmon_watch, kprobe/kretprobe hook set", files_in(capture::Mode::kprobe)},
      {"files-tp", "statmon_watch, syscall tracepoint hook set",
       files_in(capture::Mode::tracepoint)},
      {"files-fanotify", "fanotify capture", files_in(capture::Mode::fanotify)},
      {"files-inotify", "inotify capture", files_in(capture::Mode::inotify)},
      {"locks", "lock_watch only (auto: uprobe where lockd is loaded or absent, else tp_btf)",
       [&] {
         Attached a;
         locks(a, capture::LockHook::automatic);
         return a;
       }},
      {"locks-tp_btf", "lock_watch, tp_btf on posix_lock_inode + locks_remove_posix",
       [&] {
         Attached a;
         locks(a, capture::LockHook::tp_btf);
         return a;
       }},
      {"locks-uprobe", "lock_watch, uprobes in the userspace managers' processes",
       [&] {
         Attached a;
         locks(a, capture::LockHook::uprobe);
         return a;
       }},
      {"locks-tp", "lock_watch, classic filelock tracepoints",
       [&] {
         Attached a;
         locks(a, capture::LockHook::tracepoint);
         return a;
       }},
      // What auto takes for a knfsd server (managers = ["lockd"]) where kprobes load: lockd's
      // own functions only (the lockd module must be loaded).
      {"locks-kprobe", "lock_watch, kprobe hook set on kernel lockd's functions (lockd alone)",
       [&] {
         Attached a;
         locks(a, capture::LockHook::kprobe, {"lockd"});
         return a;
       }},
      {"noop-sys-tp", "no-op on the same classic syscall tracepoints as statmon_watch",
       [&] {
         Attached a;
         attach_noop_classic(a, "syscalls", kStatmonTracepoints);
         return a;
       }},
      {"noop-sys-raw", "no-op raw_tp on raw_syscalls sys_enter + sys_exit",
       [&] {
         Attached a;
         attach_noop_raw(a, {"sys_enter", "sys_exit"});
         return a;
       }},
      {"noop-sys-btf", "no-op tp_btf on raw_syscalls sys_enter + sys_exit",
       [&] {
         Attached a;
         attach_noop_btf(a, {"sys_enter", "sys_exit"});
         return a;
       }},
      {"noop-lock-btf", "no-op tp_btf on posix_lock_inode + locks_remove_posix",
       [&] {
         Attached a;
         attach_noop_btf(a, {"posix_lock_inode", "locks_remove_posix"});
         return a;
       }},
      {"noop-lock-tp", "no-op on classic filelock posix_lock_inode + locks_remove_posix",
       [&] {
         Attached a;
         attach_noop_classic(a, "filelock", {"posix_lock_inode", "locks_remove_posix"});
         return a;
       }},
  };
  if (side_list == "all") {
    side_list.clear();
    for (const auto& s : all_sides) side_list += (side_list.empty() ? "" : ",") + s.name;
  }
  std::vector<const Side*> sides;
  {
    std::stringstream ss(side_list);
    for (std::string name; std::getline(ss, name, ',');) {
      const Side* found = nullptr;
      for (const auto& s : all_sides)
        if (s.name == name) found = &s;
      if (!found) {
        std::fprintf(stderr, "unknown side '%s' (known: all", name.c_str());
        for (const auto& s : all_sides) std::fprintf(stderr, ", %s", s.name.c_str());
        std::fprintf(stderr, ")\n");
        ::close(lock_fd);
        fs::remove_all(root);
        return 2;
      }
      sides.push_back(found);
    }
  }

  // A side this kernel cannot attach (e.g. fentry where it is refused) is left out and named;
  // with none left there is nothing to compare.
  std::erase_if(sides, [](const Side* s) {
    Attached probe = s->attach();
    if (probe.error.empty()) return false;
    std::printf("side %s left out, it does not attach here: %s\n", s->name.c_str(),
                probe.error.c_str());
    return true;
  });
  if (sides.empty()) {
    std::printf("SKIP: no side attaches here\n");
    ::close(lock_fd);
    fs::remove_all(root);
    return kSkipExit;
  }

  struct Samples {
    std::vector<double> open, creat, creat_unlink, rename, lock;
  };
  const std::string fresh = other + "/fresh", moved_a = other + "/a", moved_b = other + "/b";
  {
    int fd = ::open(moved_a.c_str(), O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) ::close(fd);
  }
  std::vector<Samples> samples(sides.size() + 1);  // [0] = off
  auto measure = [&](Samples& s) {
    for (long b = 0; b < blocks; ++b) {
      s.open.push_back(open_close_ns(file, ops));
      s.creat.push_back(open_close_ns(file, ops, O_WRONLY | O_CREAT | O_TRUNC));
      s.creat_unlink.push_back(creat_unlink_ns(fresh, ops));
      s.rename.push_back(rename_ns(moved_a, moved_b, ops));
      s.lock.push_back(lock_unlock_ns(lock_fd, ops));
    }
  };
  open_close_ns(file, ops);  // warm the dentry cache
  const double load_before = [] {
    double l = 0;
    std::ifstream("/proc/loadavg") >> l;
    return l;
  }();
  std::vector<std::string> lock_hooks(sides.size());  // the lock hook set each side got
  for (long r = 0; r < reps; ++r) {
    // Rotate the order of {off, sides...} so drift in machine load hits every side alike.
    const std::size_t n = samples.size();
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (k + static_cast<std::size_t>(r)) % n;
      if (i == 0) {
        measure(samples[0]);
        continue;
      }
      Attached a = sides[i - 1]->attach();
      if (a.locks && lock_hooks[i - 1].empty()) lock_hooks[i - 1] = to_string(a.locks->hook());
      measure(samples[i]);
      a.stop();
    }
  }
  const double load_after = [] {
    double l = 0;
    std::ifstream("/proc/loadavg") >> l;
    return l;
  }();

  std::printf(
      "syscall overhead: %ld cycles x %ld blocks x %ld ops per side, medians of blocks; "
      "load average %.2f -> %.2f\n",
      reps, blocks, ops, load_before, load_after);
  for (std::size_t i = 1; i < samples.size(); ++i)
    std::printf(
        "  side %-14s %s%s\n", sides[i - 1]->name.c_str(), sides[i - 1]->what.c_str(),
        lock_hooks[i - 1].empty() ? "" : (" [lock hooks: " + lock_hooks[i - 1] + "]").c_str());
  std::printf("%-26s %-14s %10s %10s %10s %9s %7s\n", "operation", "side", "ns/op off", "ns/op on",
              "added ns", "on/off", "<=1.05");
  auto rows = [&](const char* op, std::vector<double> Samples::*field) {
    const double m_off = median(samples[0].*field);
    for (std::size_t i = 1; i < samples.size(); ++i) {
      const double m_on = median(samples[i].*field);
      const double ratio = m_on / m_off;
      std::printf("%-26s %-14s %10.1f %10.1f %+10.1f %9.3f %7s\n", op, sides[i - 1]->name.c_str(),
                  m_off, m_on, m_on - m_off, ratio, ratio <= 1.05 ? "ok" : "OVER");
    }
  };
  rows("openat RDONLY+close", &Samples::open);
  rows("openat CREAT|TRUNC+close", &Samples::creat);
  rows("creat+close+unlink", &Samples::creat_unlink);
  rows("rename", &Samples::rename);
  rows("fcntl lock+unlock (no mgr)", &Samples::lock);

  if (stats) {
    // Run time per program invocation, from the kernel's own accounting. Stats are on only while
    // the fd from BPF_ENABLE_STATS is open (never left on, even if this process dies), and only
    // here: they add two clock reads to every run.
    std::printf(
        "\nper-program cost (BPF_ENABLE_STATS run_time_ns / run_cnt; %ld ops per operation; "
        "runs include other processes' syscalls)\n",
        ops);
    std::printf("%-14s %-26s %-44s %9s %9s %9s\n", "side", "operation", "program", "runs/op",
                "ns/run", "ns/op");
    for (const Side* s : sides) {
      const std::uint32_t min_id = max_prog_id();
      Attached a = s->attach();
      const int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
      if (stats_fd < 0) {
        std::printf("BPF_ENABLE_STATS failed: %s\n", strerror(errno));
        break;
      }
      const std::vector<std::pair<const char*, std::function<void()>>> ops_list = {
          {"openat RDONLY+close", [&] { open_close_ns(file, ops); }},
          {"openat CREAT|TRUNC+close",
           [&] { open_close_ns(file, ops, O_WRONLY | O_CREAT | O_TRUNC); }},
          {"creat+close+unlink", [&] { creat_unlink_ns(fresh, ops); }},
          {"rename", [&] { rename_ns(moved_a, moved_b, ops); }},
          {"fcntl lock+unlock (no mgr)", [&] { lock_unlock_ns(lock_fd, ops); }},
      };
      for (const auto& [op, run] : ops_list) {
        auto before = prog_runs(min_id);
        run();
        auto after = prog_runs(min_id);
        for (const auto& [id, r] : after) {
          const ProgRuns b = before.count(id) ? before[id] : ProgRuns{};
          const std::uint64_t cnt = r.cnt - b.cnt, ns = r.ns - b.ns;
          if (cnt == 0) continue;
          std::printf("%-14s %-26s %-44s %9.2f %9.1f %9.1f\n", s->name.c_str(), op,
                      (std::to_string(id) + " " + r.name).c_str(), static_cast<double>(cnt) / ops,
                      static_cast<double>(ns) / static_cast<double>(cnt),
                      static_cast<double>(ns) / ops);
        }
      }
      ::close(stats_fd);
      a.stop();
    }
  }
  ::close(lock_fd);
  fs::remove_all(root);
  return 0;
}
