// SPDX-License-Identifier: Apache-2.0
// Benchmark 4: replay at scale — failover::replay of N monitor records into an empty statd
// directory on a real disk: time until every record is durable (replay returned: files and the
// directory fsynced) and until the first record appeared (inotify). sm-notify starts only after
// replay returns, so the total is also the time to the first notification sent, minus sm-notify's
// own start-up. Sizes run interleaved; per-record cost is given relative to the smallest size.
#include <sys/inotify.h>
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "bench_util.h"
#include "failover/replayer.h"
#include "statmon/record.h"

namespace fs = std::filesystem;
using namespace lockferry;
using namespace lockferry::bench;

namespace {

std::vector<MonitorRecord> make_records(long n) {
  std::vector<MonitorRecord> out;
  out.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "client-%07ld", i);
    const std::string line = std::string("0100007f 000186b5 00000004 00000010 0a0b0c0d0e0f10111213141516171819 ") +
                             name + " server\n";
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

struct Run {
  std::int64_t total_ns = 0;
  std::int64_t first_ns = -1;
  std::size_t written = 0;
};

Run run_one(const std::vector<MonitorRecord>& records, const std::string& dir) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  Run run;
  int ino = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  ::inotify_add_watch(ino, dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE);
  std::int64_t first_at = 0;
  std::thread watcher([&] {
    pollfd p{ino, POLLIN, 0};
    if (::poll(&p, 1, 600'000) > 0) first_at = now_ns();
  });
  const std::int64_t t0 = now_ns();
  auto report = failover::replay(records, {dir, false});
  const std::int64_t t1 = now_ns();
  watcher.join();
  ::close(ino);
  run.total_ns = t1 - t0;
  run.first_ns = first_at ? first_at - t0 : -1;
  run.written = report ? report->written : 0;
  fs::remove_all(dir);
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags(argc, argv);
  std::vector<long> sizes;
  {
    std::stringstream ss(flags.value_of("sizes", "1000,10000"));
    for (std::string s; std::getline(ss, s, ',');) sizes.push_back(std::strtol(s.c_str(), nullptr, 10));
  }
  const long reps = std::max(1L, flags.number("reps", 1));
  const std::string base_dir = flags.value_of("dir", "/var/tmp");
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
  for (long r = 0; r < reps; ++r)
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const std::size_t k = (r % 2 == 0) ? i : sizes.size() - 1 - i;
      runs[k].push_back(run_one(inputs[k], base + "/sm"));
    }
  fs::remove_all(base);

  std::printf("replay at scale: failover::replay into an empty statd dir on %s, %ld rep(s), medians\n",
              base_dir.c_str(), reps);
  std::printf("%9s %9s %12s %12s %10s %14s %12s\n", "records", "written", "durable ms", "first ms", "us/record",
              "per-rec ratio", "10k<1s");
  double base_per = 0;
  int status = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    std::vector<std::int64_t> totals, firsts;
    for (const auto& r : runs[i]) {
      totals.push_back(r.total_ns);
      firsts.push_back(r.first_ns);
      if (r.written != static_cast<std::size_t>(sizes[i])) status = 1;
    }
    const std::int64_t total = median(totals);
    const double per = static_cast<double>(total) / 1e3 / static_cast<double>(sizes[i]);
    if (i == 0) base_per = per;
    // Projected to 10,000 records at this size's per-record cost.
    const bool target = per * 10000 < 1e6;
    std::printf("%9ld %9zu %12s %12s %10.1f %14.2f %12s\n", sizes[i], runs[i].front().written,
                fmt_ms(total).c_str(), fmt_ms(median(firsts)).c_str(), per, per / base_per, target ? "yes" : "no");
  }
  return status;
}
