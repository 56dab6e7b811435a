// SPDX-License-Identifier: Apache-2.0
// Concurrent SM_NOTIFY sender; see sender.h.
#include "notify/sender.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/ip/udp.hpp>
#include <random>

#include "common/clock.h"
#include "notify/rpc_xdr.h"

namespace lockferry::notify {
namespace {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using std::chrono::steady_clock;

constexpr auto kTick = std::chrono::milliseconds(10);
// libtirpc's bindresvport range: where clients that check for a reserved port expect us.
constexpr std::uint16_t kReservedHigh = 1023;
constexpr std::uint16_t kReservedLow = 600;

}  // namespace

const char* to_string(ClientStatus status) {
  switch (status) {
    case ClientStatus::acknowledged:
      return "acknowledged";
    case ClientStatus::notified:
      return "notified";
    case ClientStatus::unreachable:
      return "unreachable";
  }
  return "?";
}

Sender::Sender(asio::io_context& io, SendOptions options, std::vector<Target> targets,
               std::function<void(const ClientResult&)> on_acknowledged)
    : options_(std::move(options)),
      targets_(std::move(targets)),
      on_acknowledged_(std::move(on_acknowledged)),
      socket_(io),
      tick_(io),
      buffer_(2048) {
  std::unordered_map<std::uint32_t, std::size_t> port_index;  // address -> ports_
  results_.reserve(targets_.size());
  port_of_client_.reserve(targets_.size());
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    const auto& t = targets_[i];
    ClientResult r;
    r.client = t.client;
    r.address = t.address.to_string();
    results_.push_back(std::move(r));
    auto [it, added] = port_index.try_emplace(t.address.to_uint(), ports_.size());
    if (added) ports_.push_back(Port{t.address, {}, 0, 0, false});
    ports_[it->second].clients.push_back(i);
    port_of_client_.push_back(it->second);
  }
  xid_base_ = std::random_device{}();
}

std::uint32_t Sender::getport_xid(std::size_t port_index) const {
  return xid_base_ + static_cast<std::uint32_t>(2 * port_index + 1);
}
std::uint32_t Sender::notify_xid(std::size_t client) const {
  return xid_base_ + static_cast<std::uint32_t>(2 * client);
}

Result<void> Sender::bind_socket() {
  boost::system::error_code ec;
  socket_.open(udp::v4(), ec);
  if (ec) return make_error("cannot open a UDP socket: {}", ec.message());
  // Room for the answers of a whole window arriving at once: beyond net.core.rmem_max only with
  // CAP_NET_ADMIN (SO_RCVBUFFORCE); without it the window is small enough for the default.
  const int size = 8 << 20;
  if (setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    socket_.set_option(asio::socket_base::receive_buffer_size(size), ec);
  socket_.set_option(asio::socket_base::send_buffer_size(4 << 20), ec);
  if (!options_.reserved_port) {
    socket_.bind(udp::endpoint(options_.source, 0), ec);
  } else {
    for (std::uint16_t port = kReservedHigh; port >= kReservedLow; --port) {
      socket_.bind(udp::endpoint(options_.source, port), ec);
      if (ec != asio::error::address_in_use) break;
    }
  }
  if (ec == asio::error::access_denied)
    return make_error(
        "cannot send from a reserved port on {}: needs CAP_NET_BIND_SERVICE (clients' statd "
        "may refuse SM_NOTIFY from other ports)",
        options_.source.to_string());
  if (ec)
    return make_error(
        "cannot send from the service IP {}: {} (is the service IP up on this node? "
        "recognition runs after the takeover)",
        options_.source.to_string(), ec.message());
  return {};
}

Result<void> Sender::start() {
  if (auto bound = bind_socket(); !bound) return bound.error();
  started_ = steady_clock::now();
  deadline_ = started_ + options_.deadline;
  next_progress_ = started_ + options_.progress_every;
  spdlog::info("notify: SM_NOTIFY as {} (state {}) from {}:{} to {} client(s) at {} address(es)",
               options_.mon_name, options_.state, options_.source.to_string(),
               socket_.local_endpoint().port(), targets_.size(), ports_.size());
  if (results_.empty()) {
    finish();
    return {};
  }
  for (std::size_t i = 0; i < ports_.size(); ++i) queue_call(getport_xid(i));
  receive();
  pump();
  on_tick();
  return {};
}

void Sender::receive() {
  socket_.async_receive_from(asio::buffer(buffer_), peer_,
                             [this](const boost::system::error_code& ec, std::size_t size) {
                               if (finished_) return;
                               if (!ec) on_datagram(size);
                               receive();
                             });
}

void Sender::on_datagram(std::size_t size) {
  auto reply = parse_reply(std::span(buffer_.data(), size));
  if (!reply) return;  // not ours, or refused: the call is sent again until the deadline
  const std::uint32_t code = reply->xid - xid_base_;
  const std::size_t index = code / 2;
  const auto from = peer_.address();
  if (code % 2 == 1) {
    if (index < ports_.size() && from == ports_[index].address && !ports_[index].done)
      on_getport(index, reply->results);
  } else if (index < results_.size() && from == targets_[index].address &&
             results_[index].status != ClientStatus::acknowledged) {
    on_notify_answer(index);
  }
}

void Sender::on_getport(std::size_t port_index, std::span<const std::uint8_t> results) {
  auto port = parse_getport_result(results);
  if (!port) return;
  Port& p = ports_[port_index];
  p.done = true;
  p.port = *port;
  --in_flight_;
  for (std::size_t client : p.clients) {
    results_[client].statd_port = p.port;
    if (p.port == 0) {
      results_[client].error = "its rpcbind has no NSM (statd) registered";
      ++settled_;
    } else {
      queue_call(notify_xid(client));
    }
  }
  pump();
  if (settled_ == results_.size()) finish();
}

void Sender::on_notify_answer(std::size_t client) {
  ClientResult& r = results_[client];
  r.status = ClientStatus::acknowledged;
  r.acknowledged_ns = clock::now_ns();
  r.error.clear();
  --in_flight_;
  ++settled_;
  ++acknowledged_;
  if (on_acknowledged_) on_acknowledged_(r);
  pump();
  if (settled_ == results_.size()) finish();
}

void Sender::queue_call(std::uint32_t xid) { ready_.push_back(xid); }

void Sender::pump() {
  while (!finished_ && in_flight_ < options_.window && !ready_.empty()) {
    const std::uint32_t xid = ready_.front();
    ready_.pop_front();
    ++in_flight_;
    send_call(xid, 1);
  }
}

bool Sender::answered(std::uint32_t xid) const {
  const std::uint32_t code = xid - xid_base_;
  if (code % 2 == 1) return ports_[code / 2].done;
  return results_[code / 2].status == ClientStatus::acknowledged;
}

void Sender::send_call(std::uint32_t xid, int attempt) {
  const std::uint32_t code = xid - xid_base_;
  const std::size_t index = code / 2;
  Bytes call;
  udp::endpoint to;
  if (code % 2 == 1) {
    ports_[index].attempts = attempt;
    call = encode_getport_call(xid, kNsmProgram, kNsmVersion);
    to = udp::endpoint(ports_[index].address, options_.rpcbind_port);
  } else {
    ClientResult& r = results_[index];
    r.attempts = attempt;
    r.status = ClientStatus::notified;
    if (r.notified_ns == 0) r.notified_ns = clock::now_ns();
    call = encode_sm_notify_call(xid, options_.mon_name, options_.state);
    to = udp::endpoint(targets_[index].address, r.statd_port);
  }
  boost::system::error_code ec;
  socket_.send_to(asio::buffer(call), to, 0, ec);
  if (ec && code % 2 == 0) results_[index].error = "sending SM_NOTIFY: " + ec.message();
  if (ec && code % 2 == 1) {
    for (std::size_t c : ports_[index].clients)
      results_[c].error = "asking its rpcbind: " + ec.message();
  }
  retries_.push(Due{steady_clock::now() + options_.backoff.after(attempt), xid, attempt});
}

void Sender::on_tick() {
  if (finished_) return;
  const auto now = steady_clock::now();
  if (now >= deadline_) return finish();
  while (!retries_.empty() && retries_.top().at <= now) {
    const Due due = retries_.top();
    retries_.pop();
    if (!answered(due.xid)) send_call(due.xid, due.attempt + 1);
  }
  if (now >= next_progress_) {
    log_progress();
    next_progress_ = now + options_.progress_every;
  }
  tick_.expires_after(kTick);
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_tick();
  });
}

void Sender::log_progress() const {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - started_);
  spdlog::info(
      "notify: {} of {} client(s) acknowledged after {} ms, {} call(s) in flight, {} "
      "waiting",
      acknowledged_, results_.size(), ms.count(), in_flight_, ready_.size());
}

void Sender::finish() {
  if (finished_) return;
  finished_ = true;
  log_progress();
  for (std::size_t i = 0; i < results_.size(); ++i) {
    ClientResult& r = results_[i];
    if (r.status == ClientStatus::acknowledged) continue;
    if (r.status == ClientStatus::notified && r.error.empty())
      r.error = "no answer to SM_NOTIFY by the deadline";
    if (r.status == ClientStatus::unreachable && r.error.empty())
      r.error = "its rpcbind did not answer by the deadline";
  }
  boost::system::error_code ec;
  socket_.close(ec);
  tick_.cancel();
}

}  // namespace lockferry::notify
