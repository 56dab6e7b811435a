// SPDX-License-Identifier: Apache-2.0
// The built-in notifier's half of the fleet benchmark (notify_fleet.sh drives it inside the
// namespace it creates, next to lf-nsm-fleet and sm-notify):
//   --prepare=DIR --clients=N [--first=10.64.0.1]  statd state dir with N records named by IP
//   --run=DIR --service-ip=IP [--deadline-s=60]    notify every record in DIR/sm; one JSON line
// Clients get consecutive addresses, skipping .0 and .255.
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_util.h"
#include "common/files.h"
#include "notify/notifier.h"

namespace {

namespace fs = std::filesystem;
using lockferry::bench::Flags;

std::vector<std::string> fleet_addresses(const std::string& first, long n) {
  in_addr a{};
  inet_pton(AF_INET, first.c_str(), &a);
  std::uint32_t ip = ntohl(a.s_addr);
  std::vector<std::string> out;
  for (long i = 0; i < n; ++ip) {
    if ((ip & 0xff) == 0 || (ip & 0xff) == 0xff) continue;
    in_addr b{htonl(ip)};
    char text[INET_ADDRSTRLEN];
    out.emplace_back(inet_ntop(AF_INET, &b, text, sizeof text));
    ++i;
  }
  return out;
}

int prepare(const std::string& dir, long n, const std::string& first) {
  fs::remove_all(dir + "/sm");
  fs::remove_all(dir + "/sm.bak");
  fs::remove(dir + "/state");
  fs::create_directories(dir + "/sm");
  fs::create_directories(dir + "/sm.bak");
  for (const auto& ip : fleet_addresses(first, n)) {
    // A record as statd writes it for an NLM client (callback 127.0.0.1, NLM 100021 v4 proc 16).
    const std::string line = "0100007f 000186b5 00000004 00000010 " + std::string(32, '0') + " " +
                             ip + " lf-bench-server\n";
    lockferry::files::Fd fd(
        ::open((dir + "/sm/" + ip).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0 || lockferry::files::write_all(fd.get(), line) != 0) {
      std::perror(ip.c_str());
      return 1;
    }
  }
  return 0;
}

std::int64_t cpu_ms() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000 +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1000;
}

int run(const std::string& dir, const std::string& service_ip, long deadline_s) {
  lockferry::notify::NotifyOptions o;
  o.state_dir = dir;
  lockferry::files::Fd dirfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  o.state_dir_fd = dirfd.get();
  o.service_ip = service_ip;
  o.deadline = std::chrono::seconds(deadline_s);
  for (const auto& e : fs::directory_iterator(dir + "/sm"))
    o.clients.push_back(e.path().filename());
  const std::int64_t cpu0 = cpu_ms();
  const std::int64_t t0 = lockferry::bench::now_ns();
  auto report = lockferry::notify::notify_clients(o);
  const std::int64_t wall = lockferry::bench::now_ns() - t0;
  if (!report) {
    std::fprintf(stderr, "notify: %s\n", report.error().message.c_str());
    return 1;
  }
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  std::printf(
      "{\"clients\":%zu,\"acknowledged\":%zu,\"notified\":%zu,\"unreachable\":%zu,\"state\":%d,"
      "\"wall_ms\":%s,\"cpu_ms\":%lld,\"maxrss_kb\":%ld}\n",
      o.clients.size(), report->acknowledged, report->notified, report->unreachable, report->state,
      lockferry::bench::fmt_ms(wall).c_str(), static_cast<long long>(cpu_ms() - cpu0), u.ru_maxrss);
  return report->acknowledged == o.clients.size() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags(argc, argv);
  const std::string prep = flags.value_of("prepare", "");
  if (!prep.empty())
    return prepare(prep, flags.number("clients", 100), flags.value_of("first", "10.64.0.1"));
  const std::string dir = flags.value_of("run", "");
  if (dir.empty()) {
    std::fprintf(stderr, "usage: --prepare=DIR --clients=N | --run=DIR --service-ip=IP\n");
    return 2;
  }
  return run(dir, flags.value_of("service-ip", "10.63.0.1"), flags.number("deadline-s", 60));
}
