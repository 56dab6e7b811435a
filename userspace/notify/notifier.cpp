// SPDX-License-Identifier: Apache-2.0
// The built-in notifier; see notifier.h.
#include "notify/notifier.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <memory>

#include "common/clock.h"
#include "common/trusted_dirs.h"
#include "notify/sender.h"
#include "notify/statd_files.h"

namespace lockferry::notify {
namespace {

using boost::asio::ip::address_v4;

// The client's IPv4 address, as sm-notify finds it: the record's file name, resolved. Records
// hold only IPv4 addresses (statd), so an IPv6-only name cannot be notified over this path.
Result<address_v4> resolve_client(const std::string& name) {
  in_addr a{};
  if (inet_pton(AF_INET, name.c_str(), &a) == 1) return address_v4(ntohl(a.s_addr));
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(name.c_str(), nullptr, &hints, &found); rc != 0)
    return make_error("cannot resolve {}: {}", name, gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> hold(found, freeaddrinfo);
  const auto* sin = reinterpret_cast<const sockaddr_in*>(found->ai_addr);
  return address_v4(ntohl(sin->sin_addr.s_addr));
}

// Resolves every client; those that do not resolve get their (unreachable) result at once.
std::vector<Target> resolve_targets(const std::vector<std::string>& clients,
                                    std::vector<ClientResult>& unresolved) {
  std::vector<Target> targets;
  targets.reserve(clients.size());
  for (const auto& name : clients) {
    auto address = resolve_client(name);
    if (address) {
      targets.push_back(Target{name, *address});
    } else {
      ClientResult r;
      r.client = name;
      r.error = address.error().message;
      unresolved.push_back(std::move(r));
    }
  }
  return targets;
}

// The bookkeeping before the first packet: records to sm.bak/, the state bumped.
Result<std::int32_t> prepare(const NotifyOptions& o) {
  auto owner = statd_owner(o.state_dir_fd, o.state_dir);
  if (!owner) return owner.error();
  auto moved = retire_clients(o.state_dir_fd, o.state_dir, o.clients);
  if (!moved) return moved.error();
  spdlog::info("notify: {} record(s) moved from {}/sm to sm.bak/", *moved, o.state_dir);
  if (!o.bump_state) {
    // -n: keep the number; read it as statd would (without writing).
    files::Fd fd(files::open_beneath(o.state_dir_fd, "state", O_RDONLY));
    std::int32_t value = 1;
    if (fd.get() >= 0 && read(fd.get(), &value, sizeof value) != sizeof value) value = 1;
    return value | 1;
  }
  auto state = bump_nsm_state(o.state_dir_fd, o.state_dir, *owner);
  if (!state) return state.error();
  post_kernel_nsm_state(*state);
  return state;
}

// The service IP must be on this node before any record moves: recognition runs after the
// takeover, and a failed run must leave sm/ as it was.
Result<void> check_service_ip(const address_v4& source) {
  boost::asio::io_context io;
  boost::asio::ip::udp::socket probe(io);
  boost::system::error_code ec;
  probe.open(boost::asio::ip::udp::v4(), ec);
  if (!ec) probe.bind(boost::asio::ip::udp::endpoint(source, 0), ec);
  if (ec)
    return make_error(
        "cannot send from the service IP {}: {} (is the service IP up on this "
        "node? recognition runs after the takeover)",
        source.to_string(), ec.message());
  return {};
}

void count(NotifyReport& report) {
  for (const auto& c : report.clients) {
    if (c.status == ClientStatus::acknowledged) ++report.acknowledged;
    if (c.status == ClientStatus::notified) ++report.notified;
    if (c.status == ClientStatus::unreachable) ++report.unreachable;
  }
}

}  // namespace

std::string notify_name(const std::string& service_ip) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_flags = AI_CANONNAME;
  addrinfo* found = nullptr;
  if (getaddrinfo(service_ip.c_str(), nullptr, &hints, &found) != 0) return service_ip;
  std::string name = found->ai_canonname ? found->ai_canonname : service_ip;
  freeaddrinfo(found);
  return name;
}

Result<NotifyReport> notify_clients(const NotifyOptions& o) {
  boost::system::error_code ec;
  const auto source = boost::asio::ip::make_address_v4(o.service_ip, ec);
  if (ec)
    return make_error(
        "the service IP '{}' is not an IPv4 address (statd records and SM_NOTIFY "
        "here are IPv4)",
        o.service_ip);
  if (auto usable = check_service_ip(source); !usable) return usable.error();
  files::Fd sm_bak;
  auto state = prepare(o);
  if (!state) return state.error();
  sm_bak = files::Fd(files::open_beneath(o.state_dir_fd, "sm.bak", O_RDONLY | O_DIRECTORY));
  if (sm_bak.get() < 0) return make_errno_error(errno, "cannot open {}/sm.bak", o.state_dir);

  NotifyReport report;
  report.state = *state;
  report.mon_name = notify_name(o.service_ip);
  report.started_ns = clock::now_ns();
  auto targets = resolve_targets(o.clients, report.clients);
  boost::asio::io_context io;
  std::size_t bookkeeping_errors = 0;
  SendOptions send{source,    report.mon_name, *state,          o.deadline,
                   o.backoff, o.window,        o.reserved_port, o.rpcbind_port};
  Sender sender(io, send, std::move(targets), [&](const ClientResult& r) {
    if (auto gone = forget_notified(sm_bak.get(), r.client); !gone && bookkeeping_errors++ == 0)
      spdlog::error("notify: {} (it stays pending in sm.bak/)", gone.error().message);
  });
  if (auto started = sender.start(); !started) return started.error();
  io.run();
  report.finished_ns = clock::now_ns();
  report.clients.insert(report.clients.end(), sender.results().begin(), sender.results().end());
  count(report);
  spdlog::info("notify: {} acknowledged, {} notified without answer, {} unreachable in {} ms",
               report.acknowledged, report.notified, report.unreachable,
               (report.finished_ns - report.started_ns) / 1000000);
  return report;
}

}  // namespace lockferry::notify
