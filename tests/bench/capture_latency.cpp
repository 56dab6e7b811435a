// SPDX-License-Identifier: Apache-2.0
// Benchmark 2: capture latency — from a monitor file being closed by its writer (as rpc.statd
// creates it: O_CREAT|O_EXCL|O_SYNC, write, close) to its record being durable in a dir:// store
// (fsynced) — for the eBPF path, fanotify, inotify, and a 1 s polling scan, in rounds that rotate
// the order of the modes so machine load hits them alike.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "bench_util.h"
#include "capture/capture.h"
#include "capture/recorder.h"
#include "store/dir_store.h"

namespace fs = std::filesystem;
using namespace lockferry;
using namespace lockferry::bench;
using namespace std::chrono_literals;

namespace {

enum class Kind { bpf, fanotify, inotify, poll };
const char* name_of(Kind k) {
  switch (k) {
    case Kind::bpf: return "bpf";
    case Kind::fanotify: return "fanotify";
    case Kind::inotify: return "inotify";
    case Kind::poll: return "poll";
  }
  return "?";
}

std::string record_name(long i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "client-%07ld", i);
  return buf;
}

struct RunResult {
  bool ran = false;
  std::string why;
  std::vector<std::int64_t> latencies_ns;
  std::uint64_t drops = 0;
};

// One mode, `n` records written `interval_us` apart by a writer thread, recorded into a fresh
// store under `base`.
RunResult run_one(Kind kind, const std::string& base, long n, long interval_us, long poll_ms) {
  RunResult res;
  const std::string root = base + "/" + name_of(kind);
  fs::remove_all(root);
  const std::string dir = root + "/sm";
  fs::create_directories(dir);
  auto store = store::DirStore::open(root + "/store");
  if (!store) {
    res.why = store.error().message;
    return res;
  }
  capture::Recorder recorder(**store, "bench", 0);
  std::vector<std::int64_t> closed(static_cast<std::size_t>(n), 0), durable(static_cast<std::size_t>(n), 0);
  std::atomic<long> written{0};
  long delivered = 0;

  boost::asio::io_context io;
  std::unique_ptr<capture::Capture> cap;
  if (kind != Kind::poll) {
    capture::Options o;
    o.mode = kind == Kind::bpf ? capture::Mode::bpf : kind == Kind::fanotify ? capture::Mode::fanotify
                                                                               : capture::Mode::inotify;
    o.dirs = {dir};
    o.pin_dir = "";
    auto started = capture::Capture::start(
        io, o,
        [&](const capture::FileChange& c) {
          recorder.on_change(c);
          const long i = std::strtol(c.name.c_str() + 7, nullptr, 10);
          if (c.kind == capture::FileChange::Kind::written && i >= 0 && i < n && durable[i] == 0) {
            durable[i] = now_ns();
            ++delivered;
          }
        },
        [&](const std::string& d) { (void)recorder.reconcile({d}); });
    if (!started) {
      res.why = started.error().message;
      return res;
    }
    cap = std::move(*started);
    if (cap->mode() != o.mode) {
      res.why = cap->mode_reason();
      cap->stop();
      return res;
    }
  }

  // What the cluster scripts do today: rescan every poll_ms. Files closed before a scan started
  // are durable when it ends.
  boost::asio::steady_timer timer(io);
  long polled = 0;
  std::function<void()> poll_tick = [&] {
    timer.expires_after(std::chrono::milliseconds(poll_ms));
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      const long upto = written.load(std::memory_order_acquire);
      (void)recorder.reconcile({dir});
      const std::int64_t t = now_ns();
      for (; polled < upto; ++polled) durable[polled] = t;
      delivered = polled;
      poll_tick();
    });
  };
  if (kind == Kind::poll) poll_tick();

  std::thread writer([&] {
    const std::int64_t start = now_ns();
    for (long i = 0; i < n; ++i) {
      // Paced against the start so a slow consumer does not slow the writer down.
      const std::int64_t due = start + i * interval_us * 1000;
      while (now_ns() < due) std::this_thread::sleep_for(std::chrono::nanoseconds(due - now_ns()));
      const std::string name = record_name(i);
      const std::string line = "0100007f 000186b5 00000004 00000010 0a0b0c0d0e0f10111213141516171819 " +
                               name + " server\n";
      int fd = ::open((dir + "/" + name).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_SYNC, 0600);
      if (fd >= 0) {
        (void)!::write(fd, line.data(), line.size());
        ::close(fd);
      }
      closed[i] = now_ns();
      written.store(i + 1, std::memory_order_release);
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(n * interval_us / 1000) +
                        std::chrono::milliseconds(poll_ms * 3) + 20s;
  while (delivered < n && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(5ms);
  }
  writer.join();
  timer.cancel();
  if (cap) {
    res.drops = cap->counters().drops;
    cap->stop();
  }
  res.ran = true;
  for (long i = 0; i < n; ++i)
    res.latencies_ns.push_back(durable[i] ? durable[i] - closed[i] : INT64_MAX);  // lost = worst
  const auto listed = (*store)->list_monitor("bench");
  if (!listed || static_cast<long>(listed->size()) != n)
    std::printf("WARN: %s: store holds %zu of %ld records\n", name_of(kind), listed ? listed->size() : 0UL, n);
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags(argc, argv);
  const long records = flags.number("records", 1000);   // per mode, over all rounds
  const long rounds = std::max(1L, flags.number("rounds", 2));
  const long interval_us = flags.number("interval-us", 2000);  // writer pacing
  const long poll_ms = flags.number("poll-ms", 1000);
  const std::string base_dir = flags.value_of("dir", "/var/tmp");  // a real disk: fsync must cost
  spdlog::set_level(spdlog::level::warn);
  if (::geteuid() != 0) {
    std::printf("SKIP: capture_latency needs root (BPF, fanotify)\n");
    return kSkipExit;
  }
  std::string tmpl = base_dir + "/lockferry-bench-lat-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string base = tmpl;

  const std::vector<Kind> kinds{Kind::bpf, Kind::fanotify, Kind::inotify, Kind::poll};
  std::vector<RunResult> total(kinds.size());
  const long per_round = std::max(1L, records / rounds);
  for (long r = 0; r < rounds; ++r) {
    for (std::size_t k = 0; k < kinds.size(); ++k) {
      const std::size_t idx = (k + static_cast<std::size_t>(r)) % kinds.size();
      RunResult one = run_one(kinds[idx], base, per_round, interval_us, poll_ms);
      total[idx].ran = total[idx].ran || one.ran;
      if (!one.ran) total[idx].why = one.why;
      total[idx].drops += one.drops;
      total[idx].latencies_ns.insert(total[idx].latencies_ns.end(), one.latencies_ns.begin(),
                                     one.latencies_ns.end());
    }
  }
  fs::remove_all(base);

  std::printf("capture latency: close -> durable in dir:// store (fsync), %ld records/mode, %ld rounds, "
              "writer every %ld us, poll every %ld ms\n", per_round * rounds, rounds, interval_us, poll_ms);
  std::printf("%-9s %8s %9s %9s %9s %8s %9s %6s %8s\n", "mode", "records", "p50 ms", "p99 ms", "max ms", "lost",
              "p99/bpf", "drops", "p99<5ms");
  const std::int64_t bpf_p99 = total[0].ran ? quantile(total[0].latencies_ns, 0.99) : 0;
  int status = 0;
  for (std::size_t k = 0; k < kinds.size(); ++k) {
    const auto& t = total[k];
    if (!t.ran) {
      std::printf("%-9s not run: %s\n", name_of(kinds[k]), t.why.c_str());
      continue;
    }
    long lost = 0;
    std::vector<std::int64_t> got;
    for (auto l : t.latencies_ns) (l == INT64_MAX ? ++lost : (got.push_back(l), 0));
    const std::int64_t p50 = quantile(got, 0.5), p99 = quantile(got, 0.99), mx = got.empty() ? 0 : *std::max_element(got.begin(), got.end());
    char ratio[16] = "-";
    if (bpf_p99 > 0) std::snprintf(ratio, sizeof ratio, "%.2f", static_cast<double>(p99) / static_cast<double>(bpf_p99));
    std::printf("%-9s %8zu %9s %9s %9s %8ld %9s %6llu %8s\n", name_of(kinds[k]), t.latencies_ns.size(),
                fmt_ms(p50).c_str(), fmt_ms(p99).c_str(), fmt_ms(mx).c_str(), lost, ratio,
                static_cast<unsigned long long>(t.drops), p99 < 5'000'000 ? "yes" : "no");
    if (lost > 0 && kinds[k] != Kind::poll) status = 1;
  }
  return status;
}
