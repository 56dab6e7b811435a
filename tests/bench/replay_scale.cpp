// SPDX-License-Identifier: Apache-2.0
// Benchmark 4: replay at scale — failover::replay of N monitor records into an empty statd
// directory on a real disk: time until every record is durable (replay returned: files and the
// directory synced), the CPU it used, when the first record appeared (inotify) and, with
// --sm-notify, when sm-notify started on the replayed directory sent its first notification.
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "failover/replayer.h"
#include "statmon/record.h"

namespace fs = std::filesystem;
using namespace lockferry;
using namespace lockferry::bench;

namespace {

// Record i is for client 127.a.b.c: an address literal, so that sm-notify (--sm-notify) sends
// to it without a name lookup, over the loopback of a private network namespace.
std::string client_name(long i) {
  char name[32];
  std::snprintf(name, sizeof name, "127.%ld.%ld.%ld", 1 + i / 65536, (i / 256) % 256, i % 256);
  return name;
}

std::vector<MonitorRecord> make_records(long n) {
  std::vector<MonitorRecord> out;
  out.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) {
    const std::string name = client_name(i);
    const std::string line =
        "0100007f 000186b5 00000004 00000010 0a0b0c0d0e0f10111213141516171819 " + name +
        " server\n";
    auto r = statmon::parse_record(name, line);
    if (!r) {
      std::fprintf(stderr, "bad synthetic record: %s\n", r.error().message.c_str());
      std::exit(1);
    }
    r->node = "old";
    r->file_name = name;
    out.push_back(std::move(*r));
  }
  return out;
}

std::int64_t cpu_ns() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return (static_cast<std::int64_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1'000'000 +
          ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) *
         1000;
}

// CLOCK_MONOTONIC time at which sm-notify, run on `state_dir` (its sm/ just replayed), sent its
// first packet to a client: the PMAP_GETPORT that precedes each SM_NOTIFY. It runs in a private
// network namespace with only loopback, where a UDP socket on port 111 stands in for the
// clients' rpcbind (127.0.0.0/8 is all local), so nothing leaves this machine. -1: none in 600 s.
std::int64_t first_notification_at(const std::string& state_dir) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  const std::string log = state_dir + "/sm-notify.log";
  const pid_t helper = ::fork();
  if (helper < 0) return -1;
  if (helper == 0) {
    std::int64_t at = -1;
    pid_t notifier = -1;
    int s = -1;
    if (::unshare(CLONE_NEWNET) == 0 &&
        (s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0) {
      ifreq ifr{};
      std::strcpy(ifr.ifr_name, "lo");
      ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(111);
      if (::ioctl(s, SIOCSIFFLAGS, &ifr) == 0 &&
          ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        notifier = ::fork();
        if (notifier == 0) {
          const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
          if (out >= 0) {
            ::dup2(out, 1);
            ::dup2(out, 2);
          }
          ::execlp("sm-notify", "sm-notify", "-f", "-d", "-m", "1", "-P", state_dir.c_str(), "-v",
                   "127.0.0.1", static_cast<char*>(nullptr));
          ::_exit(127);
        }
        pollfd p{s, POLLIN, 0};
        if (notifier > 0 && ::poll(&p, 1, 600'000) > 0) at = now_ns();
      }
    }
    (void)!::write(fds[1], &at, sizeof at);
    if (notifier > 0) {
      ::kill(notifier, SIGKILL);
      ::waitpid(notifier, nullptr, 0);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::int64_t at = -1;
  if (::read(fds[0], &at, sizeof at) != static_cast<ssize_t>(sizeof at)) at = -1;
  ::close(fds[0]);
  ::waitpid(helper, nullptr, 0);
  return at;
}

struct Run {
  std::int64_t total_ns = 0;
  std::int64_t cpu_ns = 0;
  std::int64_t first_ns = -1;
  std::int64_t notify_ns = -1;
  std::size_t written = 0;
};

// `state_dir` must not exist yet. Runs are not removed until the end: on ext4 without a journal
// (this machine's root), allocating an inode skips every inode of the group deleted in the last
// 60 s (300 s more while its inode table block is dirty) — deleting the previous run's files
// first made each following create scan thousands of them (perf: recently_deleted()).
Run run_one(const std::vector<MonitorRecord>& records, const std::string& state_dir, bool notify) {
  const std::string dir = state_dir + "/sm";
  fs::create_directories(dir);
  fs::create_directories(state_dir + "/sm.bak");
  Run run;
  int ino = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  ::inotify_add_watch(ino, dir.c_str(), IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE);
  std::int64_t first_at = 0;
  std::thread watcher([&] {
    pollfd p{ino, POLLIN, 0};
    if (::poll(&p, 1, 600'000) > 0) first_at = now_ns();
  });
  const std::int64_t c0 = cpu_ns();
  const std::int64_t t0 = now_ns();
  auto report = failover::replay(records, {dir, false});
  const std::int64_t t1 = now_ns();
  run.cpu_ns = cpu_ns() - c0;
  watcher.join();
  ::close(ino);
  run.total_ns = t1 - t0;
  run.first_ns = first_at ? first_at - t0 : -1;
  run.written = report ? report->written : 0;
  if (!report) std::fprintf(stderr, "replay failed: %s\n", report.error().message.c_str());
  if (notify) {
    const std::int64_t at = first_notification_at(state_dir);
    run.notify_ns = at < 0 ? -1 : at - t0;
  }
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags(argc, argv);
  if (flags.has("help")) {
    std::printf(
        "lockferry_bench_replay_scale [--sizes=1000,10000] [--reps=1] [--dir=/var/tmp] "
        "[--sm-notify] [--keep]\n");
    return 0;
  }
  std::vector<long> sizes;
  {
    std::stringstream ss(flags.value_of("sizes", "1000,10000"));
    for (std::string s; std::getline(ss, s, ',');)
      sizes.push_back(std::strtol(s.c_str(), nullptr, 10));
  }
  const long reps = std::max(1L, flags.number("reps", 1));
  const std::string base_dir = flags.value_of("dir", "/var/tmp");
  const bool notify = flags.has("sm-notify");
  if (notify && ::geteuid() != 0) {
    std::fprintf(stderr, "--sm-notify needs root (a private network namespace)\n");
    return kSkipExit;
  }
  spdlog::set_level(spdlog::level::warn);
  std::string tmpl = base_dir + "/lockferry-bench-replay-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string base = tmpl;

  std::vector<std::vector<MonitorRecord>> inputs;
  for (long n : sizes) inputs.push_back(make_records(n));
  std::vector<std::vector<Run>> runs(sizes.size());
  int run_no = 0;
  for (long r = 0; r < reps; ++r)
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const std::size_t k = (r % 2 == 0) ? i : sizes.size() - 1 - i;
      runs[k].push_back(run_one(inputs[k], base + "/run" + std::to_string(run_no++), notify));
    }
  // --keep: leave the files for the caller to delete later, so that comparing runs (an older
  // build, another size) do not allocate among the inodes this run freed (see run_one).
  if (flags.has("keep"))
    std::printf("kept %s: remove it when done\n", base.c_str());
  else
    fs::remove_all(base);

  std::printf(
      "replay at scale: failover::replay into an empty statd dir on %s, %ld rep(s), medians\n",
      base_dir.c_str(), reps);
  std::printf("%9s %9s %12s %10s %10s %12s %10s %12s\n", "records", "written", "durable ms",
              "cpu ms", "first ms", "notify ms", "us/record", "10k<1s");
  int status = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    std::vector<std::int64_t> totals, cpus, firsts, notifies;
    for (const auto& r : runs[i]) {
      totals.push_back(r.total_ns);
      cpus.push_back(r.cpu_ns);
      firsts.push_back(r.first_ns);
      notifies.push_back(r.notify_ns);
      if (r.written != static_cast<std::size_t>(sizes[i])) status = 1;
    }
    const std::int64_t total = median(totals);
    const double per = static_cast<double>(total) / 1e3 / static_cast<double>(sizes[i]);
    // Projected to 10,000 records at this size's per-record cost.
    const bool target = per * 10000 < 1e6;
    std::printf("%9ld %9zu %12s %10s %10s %12s %10.1f %12s\n", sizes[i], runs[i].front().written,
                fmt_ms(total).c_str(), fmt_ms(median(cpus)).c_str(), fmt_ms(median(firsts)).c_str(),
                notify ? fmt_ms(median(notifies)).c_str() : "-", per, target ? "yes" : "no");
  }
  return status;
}
