// SPDX-License-Identifier: Apache-2.0
// Benchmark 2: capture latency — from a monitor file being closed by its writer (as rpc.statd
// creates it: O_CREAT|O_EXCL|O_SYNC, write, close) to its record being durable in a dir:// store
// (fsynced) — for the eBPF path, fanotify, inotify, and a 1 s polling scan, in rounds that rotate
// the order of the modes so machine load hits them alike. The recorder stores records with group
// commit (one sync round for the records that arrived together), or one by one with --group=0;
// a "fsync" row measures what the disk alone costs per durable file (temp write, fsync, rename,
// directory fsync, as one-record put does), in the same rounds, as the floor of every mode.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "capture/capture.h"
#include "common/files.h"
#include "record/recorder.h"
#include "store/dir_store.h"

namespace fs = std::filesystem;
using namespace lockferry;
using namespace lockferry::bench;
using namespace std::chrono_literals;

namespace {

// bpf: the best BPF hook set; fentry, kprobe, tracepoint: that hook set alone (capture.h: Mode).
enum class Kind { bpf, fentry, kprobe, tracepoint, fanotify, inotify, poll, fsync };
const char* name_of(Kind k) {
  switch (k) {
    case Kind::bpf:
      return "bpf";
    case Kind::fentry:
      return "fentry";
    case Kind::kprobe:
      return "kprobe";
    case Kind::tracepoint:
      return "tracepoint";
    case Kind::fanotify:
      return "fanotify";
    case Kind::inotify:
      return "inotify";
    case Kind::poll:
      return "poll";
    case Kind::fsync:
      return "fsync";
  }
  return "?";
}

struct Setup {
  long interval_us = 10000;  // between bursts
  long burst = 1;            // records written back to back per tick
  long poll_ms = 1000;
  bool group = true;        // recorder with group commit
  bool writer_sync = true;  // O_SYNC like rpc.statd
  long ring_kb = capture::kDefaultRingBufferKb;
};

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
// The disk's own cost of one durable file, as a one-record put pays it: `n` files written
// `interval_us` apart, each through files::write_file_atomically (temp, fsync, rename, dir fsync).
RunResult run_fsync_baseline(const std::string& base, long n, long interval_us) {
  RunResult res;
  const std::string dir = base + "/fsync";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string content(700, 'x');  // about a stored monitor document
  const std::int64_t start = now_ns();
  for (long i = 0; i < n; ++i) {
    const std::int64_t due = start + i * interval_us * 1000;
    while (now_ns() < due) std::this_thread::sleep_for(std::chrono::nanoseconds(due - now_ns()));
    const std::int64_t t0 = now_ns();
    auto ok = files::write_file_atomically(dir, record_name(i) + ".json", content, 0640);
    if (!ok) {
      res.why = ok.error().message;
      return res;
    }
    res.latencies_ns.push_back(now_ns() - t0);
  }
  res.ran = true;
  fs::remove_all(dir);
  return res;
}

RunResult run_one(Kind kind, const std::string& base, long n, const Setup& setup) {
  const long interval_us = setup.interval_us, poll_ms = setup.poll_ms;
  const long burst = std::max(1L, setup.burst);
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
  boost::asio::io_context io;
  bool resync_posted = false;
  std::unique_ptr<record::Recorder> recorder_ptr =
      setup.group ? std::make_unique<record::Recorder>(**store, "bench", 0, io)
                  : std::make_unique<record::Recorder>(**store, "bench", 0);
  record::Recorder& recorder = *recorder_ptr;
  std::vector<std::int64_t> closed(static_cast<std::size_t>(n), 0),
      durable(static_cast<std::size_t>(n), 0);
  std::atomic<long> written{0};
  long delivered = 0;
  // Durable = the recorder's store call returned for it (group commit acknowledges a batch).
  recorder.set_on_stored([&](const std::string& name) {
    const long i = std::strtol(name.c_str() + 7, nullptr, 10);
    if (i >= 0 && i < n && durable[i] == 0) {
      durable[i] = now_ns();
      ++delivered;
    }
  });
  std::unique_ptr<capture::Capture> cap;
  if (kind != Kind::poll) {
    capture::Options o;
    o.mode = kind == Kind::bpf          ? capture::Mode::bpf
             : kind == Kind::fentry     ? capture::Mode::fentry
             : kind == Kind::kprobe     ? capture::Mode::kprobe
             : kind == Kind::tracepoint ? capture::Mode::tracepoint
             : kind == Kind::fanotify   ? capture::Mode::fanotify
                                        : capture::Mode::inotify;
    o.dirs = {dir};
    o.pin_dir = "";
    o.ring_buffer_kb = static_cast<std::uint32_t>(setup.ring_kb);
    auto started = capture::Capture::start(
        io, o, [&](const capture::FileChange& c) { recorder.on_change(c); },
        [&](const std::string&) {
          // Lost events: one rescan once the events read so far are handled, as lockferryd
          // does (not one per lost-events report).
          if (resync_posted) return;
          resync_posted = true;
          boost::asio::post(io, [&] {
            resync_posted = false;
            (void)recorder.reconcile({dir});
          });
        });
    if (!started) {
      res.why = started.error().message;
      return res;
    }
    cap = std::move(*started);
    // A concrete mode must not fall back to another (bpf is any BPF hook set).
    if (o.mode != capture::Mode::bpf && cap->mode() != o.mode) {
      res.why = cap->mode_reason();
      cap->stop();
      return res;
    }
  }

  // What the cluster scripts do today: rescan every poll_ms. Files closed before a scan started
  // are durable when it ends.
  boost::asio::steady_timer timer(io);
  std::function<void()> poll_tick = [&] {
    timer.expires_after(std::chrono::milliseconds(poll_ms));
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      (void)recorder.reconcile({dir});
      poll_tick();
    });
  };
  if (kind == Kind::poll) poll_tick();

  std::thread writer([&] {
    const std::int64_t start = now_ns();
    const int sync_flag = setup.writer_sync ? O_SYNC : 0;
    for (long i = 0; i < n; ++i) {
      // Paced against the start so a slow consumer does not slow the writer down; `burst`
      // records per tick, back to back, as when many clients mount at once.
      const std::int64_t due = start + (i / burst) * interval_us * 1000;
      while (now_ns() < due) std::this_thread::sleep_for(std::chrono::nanoseconds(due - now_ns()));
      const std::string name = record_name(i);
      const std::string line =
          "0100007f 000186b5 00000004 00000010 0a0b0c0d0e0f10111213141516171819 " + name +
          " server\n";
      int fd = ::open((dir + "/" + name).c_str(), O_WRONLY | O_CREAT | O_EXCL | sync_flag, 0600);
      if (fd >= 0) {
        (void)!::write(fd, line.data(), line.size());
        ::close(fd);
      }
      closed[i] = now_ns();
      written.store(i + 1, std::memory_order_release);
    }
  });
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(n / burst * interval_us / 1000) +
                        std::chrono::milliseconds(poll_ms * 3) + 60s;
  while (delivered < n && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(5ms);
  }
  writer.join();
  timer.cancel();
  recorder.flush();
  if (cap) {
    res.drops = cap->counters().drops;
    cap->stop();
  }
  res.ran = true;
  for (long i = 0; i < n; ++i)
    res.latencies_ns.push_back(durable[i] ? durable[i] - closed[i] : INT64_MAX);  // lost = worst
  const auto listed = (*store)->list_monitor("bench");
  if (!listed || static_cast<long>(listed->size()) != n)
    std::printf("WARN: %s: store holds %zu of %ld records\n", name_of(kind),
                listed ? listed->size() : 0UL, n);
  recorder_ptr.reset();
  cap.reset();
  store->reset();
  fs::remove_all(root);  // between modes, so the next one starts on the same (empty) disk state
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags(argc, argv);
  const long records = flags.number("records", 1000);  // per mode, over all rounds
  const long rounds = std::max(1L, flags.number("rounds", 2));
  Setup setup;
  setup.interval_us = flags.number("interval-us", 2000);  // writer pacing (between bursts)
  setup.burst = std::max(1L, flags.number("burst", 1));
  setup.poll_ms = flags.number("poll-ms", 1000);
  setup.group = flags.number("group", 1) != 0;
  setup.writer_sync = flags.number("writer-sync", 1) != 0;
  setup.ring_kb = flags.number("ring-kb", capture::kDefaultRingBufferKb);
  const long baseline = flags.number("fsync-baseline", 200);  // files per round; 0 = no fsync row
  const std::string modes = flags.value_of("modes", "bpf,fanotify,inotify,poll");
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

  std::vector<Kind> kinds;
  for (Kind k : {Kind::bpf, Kind::fentry, Kind::kprobe, Kind::tracepoint, Kind::fanotify,
                 Kind::inotify, Kind::poll}) {
    if (("," + modes + ",").find(std::string(",") + name_of(k) + ",") != std::string::npos)
      kinds.push_back(k);
  }
  if (baseline > 0) kinds.push_back(Kind::fsync);
  std::vector<RunResult> total(kinds.size());
  const long per_round = std::max(1L, records / rounds);
  const auto started = std::chrono::steady_clock::now();
  for (long r = 0; r < rounds; ++r) {
    for (std::size_t k = 0; k < kinds.size(); ++k) {
      const std::size_t idx = (k + static_cast<std::size_t>(r)) % kinds.size();
      RunResult one = kinds[idx] == Kind::fsync
                          ? run_fsync_baseline(base, baseline, setup.interval_us)
                          : run_one(kinds[idx], base, per_round, setup);
      total[idx].ran = total[idx].ran || one.ran;
      if (!one.ran) total[idx].why = one.why;
      total[idx].drops += one.drops;
      total[idx].latencies_ns.insert(total[idx].latencies_ns.end(), one.latencies_ns.begin(),
                                     one.latencies_ns.end());
    }
  }
  fs::remove_all(base);

  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  double load[3] = {0, 0, 0};
  (void)::getloadavg(load, 3);
  std::printf(
      "capture latency: close -> durable in dir:// store (fsync) under %s, %ld records/mode, %ld "
      "rounds, "
      "writer: %ld record(s) every %ld us%s, poll every %ld ms, recorder: %s; %.0f s wall, load "
      "%.2f %.2f %.2f\n",
      base_dir.c_str(), per_round * rounds, rounds, setup.burst, setup.interval_us,
      setup.writer_sync ? " (O_SYNC)" : "", setup.poll_ms,
      setup.group ? "group commit" : "one put per record", wall_s, load[0], load[1], load[2]);
  // The ratio column compares each mode's p99 with the first mode's (bpf by default).
  std::printf("%-10s %8s %9s %9s %9s %8s %9s %6s %8s\n", "mode", "records", "p50 ms", "p99 ms",
              "max ms", "lost", "p99/1st", "drops", "p99<5ms");
  const std::int64_t bpf_p99 = !kinds.empty() && kinds[0] != Kind::fsync && total[0].ran
                                   ? quantile(total[0].latencies_ns, 0.99)
                                   : 0;
  int status = 0;
  for (std::size_t k = 0; k < kinds.size(); ++k) {
    const auto& t = total[k];
    if (!t.ran) {
      std::printf("%-10s not run: %s\n", name_of(kinds[k]), t.why.c_str());
      continue;
    }
    long lost = 0;
    std::vector<std::int64_t> got;
    for (auto l : t.latencies_ns) (l == INT64_MAX ? ++lost : (got.push_back(l), 0));
    const std::int64_t p50 = quantile(got, 0.5), p99 = quantile(got, 0.99),
                       mx = got.empty() ? 0 : *std::max_element(got.begin(), got.end());
    char ratio[16] = "-";
    if (bpf_p99 > 0)
      std::snprintf(ratio, sizeof ratio, "%.2f",
                    static_cast<double>(p99) / static_cast<double>(bpf_p99));
    std::printf("%-10s %8zu %9s %9s %9s %8ld %9s %6llu %8s\n", name_of(kinds[k]),
                t.latencies_ns.size(), fmt_ms(p50).c_str(), fmt_ms(p99).c_str(), fmt_ms(mx).c_str(),
                lost, ratio, static_cast<unsigned long long>(t.drops),
                p99 < 5'000'000 ? "yes" : "no");
    if (lost > 0 && kinds[k] != Kind::poll && kinds[k] != Kind::fsync) status = 1;
  }
  return status;
}
