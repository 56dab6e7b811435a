// SPDX-License-Identifier: Apache-2.0
// The built-in notifier; see notifier.h.
#include "notify/notifier.h"

#include <fcntl.h>
#include <netdb.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "common/clock.h"
#include "common/trusted_dirs.h"
#include "notify/resolve.h"
#include "notify/sender.h"
#include "notify/statd_files.h"

namespace lockferry::notify {
namespace {

using boost::asio::ip::address_v4;

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
  auto resolved = resolve_clients(o.clients, o.mon_names, o.lookups);
  report.clients = std::move(resolved.unresolved);
  boost::asio::io_context io;
  std::size_t bookkeeping_errors = 0;
  SendOptions send{source,    report.mon_name, *state,          o.deadline,
                   o.backoff, o.window,        o.reserved_port, o.rpcbind_port};
  Sender sender(io, send, std::move(resolved.targets), [&](const ClientResult& r) {
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
