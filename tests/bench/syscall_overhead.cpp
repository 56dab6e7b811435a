// SPDX-License-Identifier: Apache-2.0
// Benchmark 1: what lockferry's kernel programs cost processes that are not NFS — openat+close of
// a file outside every watched directory, and fcntl lock/unlock by a process that is not a lock
// manager — measured with the programs attached vs detached, alternating in the same run.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

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

struct Attached {
  std::unique_ptr<capture::Capture> files;
  std::unique_ptr<capture::LockCapture> locks;
  void stop() {
    if (files) files->stop();
    if (locks) locks->stop();
    files.reset();
    locks.reset();
  }
};

}  // namespace

int main(int argc, char** argv) {
  Flags flags(argc, argv);
  const long reps = flags.number("reps", 6);          // attach/detach cycles (A/B alternated)
  const long blocks = flags.number("blocks", 5);      // measured blocks per side per cycle
  const long ops = flags.number("ops", 20000);        // syscalls (pairs) per block
  // Which programs to attach: "both", "files" (statmon_watch) or "locks" (lock_watch).
  const std::string only = flags.value_of("only", "both");
  const bool want_files = only != "locks", want_locks = only != "files";
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
  { int fd = ::open(file.c_str(), O_RDWR | O_CREAT, 0644); if (fd >= 0) ::close(fd); }
  int lock_fd = ::open(file.c_str(), O_RDWR);

  boost::asio::io_context io;
  auto attach = [&]() -> Attached {
    Attached a;
    capture::Options o;
    o.mode = capture::Mode::bpf;
    o.dirs = {watched};
    o.pin_dir = "";
    if (want_files) {
      auto f = capture::Capture::start(io, o, [](const capture::FileChange&) {}, [](const std::string&) {});
      if (f && (*f)->mode() == capture::Mode::bpf) a.files = std::move(*f);
    }
    if (!want_locks) return a;
    capture::LockOptions lo;
    lo.pin_dir = "";
    auto l = capture::LockCapture::start(io, lo, [](const capture::LockChange&) {},
                                         [](const capture::ManagerProcess&) {});
    if (l) a.locks = std::move(*l);
    return a;
  };

  {
    Attached probe = attach();
    const bool ok = (!want_files || probe.files) && (!want_locks || probe.locks);
    probe.stop();
    if (!ok) {
      std::printf("SKIP: BPF capture or lock capture did not load here\n");
      ::close(lock_fd);
      fs::remove_all(root);
      return kSkipExit;
    }
  }

  std::vector<double> open_on, open_off, creat_on, creat_off, lock_on, lock_off;
  auto measure = [&](bool on) {
    for (long b = 0; b < blocks; ++b) {
      (on ? open_on : open_off).push_back(open_close_ns(file, ops));
      (on ? creat_on : creat_off).push_back(open_close_ns(file, ops, O_WRONLY | O_CREAT | O_TRUNC));
      (on ? lock_on : lock_off).push_back(lock_unlock_ns(lock_fd, ops));
    }
  };
  open_close_ns(file, ops);  // warm the dentry cache
  for (long r = 0; r < reps; ++r) {
    // Alternate which side goes first so drift in machine load hits both alike.
    const bool attached_first = (r % 2) == 1;
    if (!attached_first) measure(false);
    Attached a = attach();
    measure(true);
    a.stop();
    if (attached_first) measure(false);
  }
  ::close(lock_fd);
  fs::remove_all(root);

  auto row = [](const char* name, const std::vector<double>& off, const std::vector<double>& on) {
    const double m_off = median(off), m_on = median(on);
    const double ratio = m_on / m_off;
    std::printf("%-28s %10.1f %10.1f %+10.1f %9.3f %7s\n", name, m_off, m_on, m_on - m_off, ratio,
                ratio <= 1.05 ? "ok" : "OVER");
  };
  std::printf("syscall overhead (%s programs): %ld cycles x %ld blocks x %ld ops, medians of blocks\n",
              only.c_str(), reps, blocks, ops);
  std::printf("%-28s %10s %10s %10s %9s %7s\n", "operation", "ns/op off", "ns/op on", "added ns", "on/off", "<=1.05");
  row("openat RDONLY+close", open_off, open_on);
  row("openat CREAT|TRUNC+close", creat_off, creat_on);
  row("fcntl lock+unlock (no mgr)", lock_off, lock_on);
  return 0;
}
