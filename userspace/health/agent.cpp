// SPDX-License-Identifier: Apache-2.0
// Heartbeats, the local health check and the membership view on the daemon's loop; see agent.h.
#include "health/agent.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <ranges>

#include "common/clock.h"

namespace lockferry::health {
namespace {

using boost::asio::ip::udp;
// A leaving node says so a few times (UDP may drop one), one interval apart, then goes quiet.
constexpr int kLeavingMessages = 3;
constexpr Millis kLogEvery{60000};
constexpr std::size_t kMaxThrottled = 256;

std::int64_t realtime_ms() { return clock::now_ns() / 1000000; }

std::string first_line(const std::string& text) {
  auto end = text.find('\n');
  std::string line = text.substr(0, std::min<std::size_t>(end, 200));
  return line.empty() ? "no output" : line;
}

}  // namespace

Result<udp::endpoint> parse_endpoint(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return make_error("'{}' is not IP:PORT (e.g. \"192.0.2.11:7789\" or \"[2001:db8::11]:7789\")",
                      text);
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  if (ec) return make_error("'{}': '{}' is not an IP address (names are not resolved)", text, host);
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1) port = 70000;
  } catch (const std::exception&) {
    port = 70000;
  }
  if (port > 65535) return make_error("'{}': the port must be 0..65535", text);
  return udp::endpoint(address, static_cast<unsigned short>(port));
}

bool is_local_address(const std::string& ip) {
  boost::system::error_code ec;
  auto wanted = boost::asio::ip::make_address(ip, ec);
  if (ec) return false;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return false;
  std::unique_ptr<ifaddrs, void (*)(ifaddrs*)> guard(list, ::freeifaddrs);
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    if (i->ifa_addr->sa_family == AF_INET && wanted.is_v4()) {
      auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      if (sin->sin_addr.s_addr == htonl(wanted.to_v4().to_uint())) return true;
    } else if (i->ifa_addr->sa_family == AF_INET6 && wanted.is_v6()) {
      auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      auto bytes = wanted.to_v6().to_bytes();
      if (std::memcmp(sin6->sin6_addr.s6_addr, bytes.data(), bytes.size()) == 0) return true;
    }
  }
  return false;
}

Result<void> check_options(const Options& o, const std::string& self) {
  if (!o.enabled) return {};
  if (o.interval < Millis(50) || o.interval > Millis(60000))
    return make_error("'health.interval_ms' must be 50..60000, not {}", o.interval.count());
  if (o.dead_after < 2 * o.interval)
    return make_error(
        "'health.dead_after_ms' ({}) must be at least twice 'health.interval_ms' ({}): "
        "one lost heartbeat must not declare a node dead",
        o.dead_after.count(), o.interval.count());
  if (o.replay_window < o.interval || o.replay_window > Millis(600000))
    return make_error(
        "'health.replay_window_ms' must be between 'health.interval_ms' and 600000, "
        "not {}",
        o.replay_window.count());
  if (o.check_interval < Millis(100) || o.check_timeout < Millis(100))
    return make_error("'health.check_interval_ms' and 'health.check_timeout_ms' must be >= 100");
  if (o.check_failures < 1 || o.check_failures > 100)
    return make_error("'health.check_failures' must be 1..100, not {}", o.check_failures);
  if (self.size() > kMaxNodeName)
    return make_error("node name '{}' is longer than the {} bytes a heartbeat carries", self,
                      kMaxNodeName);
  if (!o.heartbeats) return {};
  if (o.listen.empty())
    return make_error("'health.listen' is missing: the IP:PORT heartbeats arrive on");
  if (auto r = parse_endpoint(o.listen); !r)
    return make_error("'health.listen': {}", r.error().message);
  if (o.key_file.empty())
    return make_error(
        "'health.key_file' is missing: every node needs the same secret key file "
        "(head -c 32 /dev/urandom | base64 > /etc/lockferry/heartbeat.key; chmod 600)");
  std::size_t others = 0;
  for (const auto& [node, address] : o.peers) {
    if (node.size() > kMaxNodeName)
      return make_error("'health.peers': node name '{}' is longer than {} bytes", node,
                        kMaxNodeName);
    if (auto r = parse_endpoint(address); !r)
      return make_error("'health.peers.{}': {}", node, r.error().message);
    if (node != self) ++others;
  }
  if (others == 0)
    return make_error(
        "'health.peers' names no other node: list every node of the cluster as "
        "node = \"IP:PORT\"");
  return {};
}

Agent::Agent(boost::asio::io_context& io, std::string self, Options options, EventHandler on_event,
             SelfState self_state)
    : io_(io),
      self_(self),
      options_(std::move(options)),
      on_event_(std::move(on_event)),
      self_state_(std::move(self_state)),
      socket_(io),
      tick_timer_(io),
      check_timer_(io),
      membership_(
          self,
          [&] {
            std::vector<std::string> peers;
            for (const auto& [node, address] : options_.peers) peers.push_back(node);
            return peers;
          }(),
          options_.dead_after),
      replay_guard_(options_.replay_window) {}

Agent::~Agent() { stop(); }

Result<std::unique_ptr<Agent>> Agent::start(boost::asio::io_context& io, std::string self,
                                            Options options, EventHandler on_event,
                                            SelfState self_state) {
  if (auto r = check_options(options, self); !r) return r.error();
  std::unique_ptr<Agent> agent(
      new Agent(io, self, std::move(options), std::move(on_event), std::move(self_state)));
  const Options& o = agent->options_;
  if (o.heartbeats) {
    auto key = Key::load(o.key_file);
    if (!key) return key.error();
    agent->key_ = std::move(*key);
    for (const auto& [node, address] : o.peers) {
      if (node != self) agent->peer_endpoints_[node] = *parse_endpoint(address);
    }
    auto listen = *parse_endpoint(o.listen);
    boost::system::error_code ec;
    agent->socket_.open(listen.protocol(), ec);
    if (!ec) ::fcntl(agent->socket_.native_handle(), F_SETFD, FD_CLOEXEC);  // Asio: no SOCK_CLOEXEC
    if (!ec) agent->socket_.bind(listen, ec);
    if (!ec) agent->socket_.non_blocking(true, ec);
    if (ec)
      return make_error("cannot receive heartbeats on {} ('health.listen'): {}", o.listen,
                        ec.message());
    randombytes_buf(&agent->incarnation_, sizeof agent->incarnation_);
    agent->receive();
  }
  if (o.check_command.empty()) {
    agent->run_check();  // the built-in check is synchronous and cheap
  } else {
    agent->check_ = std::make_unique<CheckCommand>(io, o.check_command, o.check_timeout);
    agent->schedule_check(Millis(0));
  }
  agent->schedule_tick();
  spdlog::info(
      "health: node {}{}; {} peer(s): {}; check: {}", self,
      o.heartbeats ? fmt::format(", heartbeats on {} every {} ms, dead after {} ms",
                                 agent->listen_address(), o.interval.count(), o.dead_after.count())
                   : std::string(", heartbeats off (node state from set-down/set-up only)"),
      agent->peer_endpoints_.size(),
      fmt::join(agent->membership_.peers() | std::views::transform(&PeerStatus::node), ", "),
      o.check_command.empty()
          ? (o.service_ip.empty() ? std::string("none (always serving)")
                                  : "built-in: serving while " + o.service_ip + " is here")
          : process::to_display(o.check_command));
  return agent;
}

Millis Agent::now() const {
  return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now().time_since_epoch());
}

std::string Agent::listen_address() const {
  boost::system::error_code ec;
  auto ep = socket_.local_endpoint(ec);
  if (ec) return options_.listen;
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

bool Agent::fit() const {
  const bool fenced = self_state_ ? self_state_().second : false;
  return local_.known && local_.healthy && !local_.set_down && !fenced;
}

void Agent::stop() {
  if (stopped_) return;
  stopped_ = true;
  // A clean stop of lockferryd says nothing about the NFS service: tell the peers not to adopt
  // this node for it.
  if (key_ && socket_.is_open() && local_.known && local_.healthy && !local_.set_down)
    send(MessageType::stopping);
  tick_timer_.cancel();
  check_timer_.cancel();
  if (check_) check_->stop();
  boost::system::error_code ignored;
  socket_.close(ignored);
}

// --- receiving ------------------------------------------------------------------------------

void Agent::receive() {
  socket_.async_receive_from(boost::asio::buffer(buffer_), sender_,
                             [this](boost::system::error_code ec, std::size_t n) {
                               if (ec == boost::asio::error::operation_aborted || stopped_) return;
                               on_datagram(n, ec);
                               receive();
                             });
}

void Agent::on_datagram(std::size_t size, boost::system::error_code ec) {
  const std::string source = sender_.address().to_string();
  if (ec && ec != boost::asio::error::message_size) {
    log_rejected("socket", "receive error", ec.message());
    return;
  }
  ++counters_.received;
  if (ec == boost::asio::error::message_size) {
    ++counters_.malformed;
    log_rejected(source, "malformed", "datagram larger than any heartbeat");
    return;
  }
  auto message = decode(std::span<const std::uint8_t>(buffer_.data(), size), *key_);
  if (!message) {
    const auto why = static_cast<Rejection>(message.error().code);
    ++(why == Rejection::forged ? counters_.forged : counters_.malformed);
    log_rejected(source, to_string(why), message.error().message);
    return;
  }
  if (message->node == self_ || !membership_.is_peer(message->node)) {
    ++counters_.unknown_node;
    log_rejected(source, "unknown node",
                 fmt::format("authenticated heartbeat names node '{}', which is {}", message->node,
                             message->node == self_ ? "this node" : "not in 'health.peers'"));
    return;
  }
  if (auto admitted = replay_guard_.admit(*message, realtime_ms()); !admitted) {
    ++counters_.replayed;
    log_rejected(source, to_string(static_cast<Rejection>(admitted.error().code)),
                 fmt::format("from node '{}': {}", message->node, admitted.error().message));
    return;
  }
  ++counters_.accepted;
  spdlog::trace("health: {} from {} ({}) seq {} serving {}", to_string(message->type),
                message->node, source, message->seq, message->serving);
  emit(membership_.heard(*message, now()));
}

void Agent::log_rejected(const std::string& source, const char* kind, const std::string& detail) {
  std::string key = source + "/" + kind;
  if (throttle_.size() >= kMaxThrottled && !throttle_.count(key))
    key = "other sources/" + std::string(kind);
  Throttle& t = throttle_[key];
  const Millis at = now();
  if (t.last.count() != 0 && at - t.last < kLogEvery) {
    ++t.suppressed;
    return;
  }
  spdlog::warn("health: ignored a {} packet from {}: {}{}; it changes nothing", kind, source,
               detail,
               t.suppressed ? fmt::format(" ({} more since the last report)", t.suppressed) : "");
  t.last = at.count() == 0 ? Millis(1) : at;
  t.suppressed = 0;
}

// --- sending and deadlines -------------------------------------------------------------------

void Agent::schedule_tick() {
  // Deadlines are checked more often than heartbeats are sent, so a dead node is declared within
  // 100 ms of dead_after rather than within a whole interval of it.
  tick_timer_.expires_after(std::min(options_.interval, Millis(100)));
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    tick();
    schedule_tick();
  });
}

void Agent::tick() {
  const Millis at = now();
  if (key_ && at >= next_send_) {
    next_send_ = at + options_.interval;
    const bool sending = local_.known && local_.healthy && !local_.set_down;
    if (leaving_to_send_ > 0) {
      send(MessageType::leaving);
      --leaving_to_send_;
    } else if (sending) {
      send(MessageType::heartbeat);
    }
  }
  for (const auto& event : membership_.tick(at)) emit(event);
}

void Agent::send(MessageType type) {
  Heartbeat m;
  m.type = type;
  m.node = self_;
  m.incarnation = incarnation_;
  m.seq = ++seq_;
  m.sent_ms = realtime_ms();
  if (self_state_) std::tie(m.epoch, m.fenced) = self_state_();
  m.serving = local_.serving;
  const auto bytes = encode(m, *key_);
  for (const auto& [node, endpoint] : peer_endpoints_) {
    boost::system::error_code ec;
    socket_.send_to(boost::asio::buffer(bytes), endpoint, 0, ec);
    if (ec) {
      ++counters_.send_errors;
      log_rejected(
          node, "send error",
          fmt::format("cannot send to {}: {}", endpoint.address().to_string(), ec.message()));
    } else {
      ++counters_.sent;
      if (type == MessageType::leaving) ++counters_.leaving_sent;
    }
  }
}

// --- local health ------------------------------------------------------------------------------

void Agent::schedule_check(Millis delay) {
  check_timer_.expires_after(delay);
  check_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    run_check();
  });
}

void Agent::run_check() {
  ++counters_.checks;
  if (!check_) {
    const bool serving = options_.service_ip.empty() || is_local_address(options_.service_ip);
    update_local(true, serving,
                 options_.service_ip.empty() ? "no health check configured"
                                             : fmt::format("service IP {} {}", options_.service_ip,
                                                           serving ? "is here" : "is not here"));
    schedule_check(options_.check_interval);
    return;
  }
  auto started = check_->start([this](const process::CommandResult& result) {
    const auto verdict = verdict_of(result);
    const std::string what =
        result.timed_out ? fmt::format("timed out after {} ms", options_.check_timeout.count())
                         : fmt::format("exit {}: {}", result.exit_code, first_line(result.output));
    if (verdict == CheckVerdict::failed) {
      ++counters_.check_failures;
      ++local_.consecutive_failures;
      if (local_.consecutive_failures >= options_.check_failures || !local_.known)
        update_local(false, false, "health check failed: " + what);
    } else {
      local_.consecutive_failures = 0;
      update_local(true, verdict == CheckVerdict::serving,
                   fmt::format("health check: {} ({})", to_string(verdict), what));
    }
    if (!stopped_) schedule_check(options_.check_interval);
  });
  if (!started) {
    ++counters_.check_failures;
    update_local(false, false, started.error().message);
    schedule_check(options_.check_interval);
  }
}

void Agent::update_local(bool healthy, bool serving, std::string reason) {
  const bool was_sending = local_.known && local_.healthy && !local_.set_down;
  const bool changed = !local_.known || local_.healthy != healthy || local_.serving != serving;
  local_.known = true;
  local_.healthy = healthy;
  // The last serving state stays in a leaving message, so peers know there is a service to take.
  if (healthy) local_.serving = serving;
  local_.reason = std::move(reason);
  if (changed) {
    if (healthy)
      spdlog::info("health: this node is {} ({})", serving ? "serving" : "standby", local_.reason);
    else
      spdlog::error("health: this node is unhealthy ({}): {}", local_.reason,
                    key_ ? "telling the peers it leaves, then no more heartbeats"
                         : "not fit to adopt other nodes");
  }
  if (was_sending && !(local_.healthy && !local_.set_down) && key_) {
    send(MessageType::leaving);  // at once: every interval saved is failover time
    leaving_to_send_ = kLeavingMessages - 1;
  }
}

Result<void> Agent::set_down(const std::string& node, const std::string& reason) {
  if (node == self_) {
    if (local_.set_down) return {};
    const bool was_sending = local_.known && local_.healthy && !local_.set_down;
    local_.set_down = true;
    spdlog::warn("health: this node was set down ({}): it leaves the cluster until set up", reason);
    if (was_sending && key_) {
      send(MessageType::leaving);
      leaving_to_send_ = kLeavingMessages - 1;
    }
    return {};
  }
  if (!membership_.is_peer(node))
    return make_error(
        "unknown node '{}': 'health.peers' lists {}", node,
        fmt::join(membership_.peers() | std::views::transform(&PeerStatus::node), ", "));
  spdlog::warn("health: node {} set down ({})", node, reason);
  emit(membership_.set_down(node, reason, now()));
  return {};
}

Result<void> Agent::set_up(const std::string& node) {
  if (node == self_) {
    if (local_.set_down) spdlog::info("health: this node was set up: heartbeats resume");
    local_.set_down = false;
    leaving_to_send_ = 0;
    return {};
  }
  if (!membership_.is_peer(node))
    return make_error(
        "unknown node '{}': 'health.peers' lists {}", node,
        fmt::join(membership_.peers() | std::views::transform(&PeerStatus::node), ", "));
  spdlog::info("health: node {} set up", node);
  emit(membership_.set_up(node, now()));
  return {};
}

std::string Agent::choose_adopter(const std::string& dead,
                                  const std::vector<std::string>& order) const {
  return membership_.choose_adopter(dead, order, fit());
}

void Agent::emit(const std::optional<PeerEvent>& event) {
  if (!event) return;
  if (event->kind == PeerEvent::Kind::down)
    spdlog::warn("health: node {} is DOWN: {} (it was {})", event->node, event->reason,
                 event->was_serving ? "serving" : "not serving");
  else
    spdlog::info("health: node {} is up: {} ({})", event->node, event->reason,
                 event->was_serving ? "serving" : "standby");
  if (on_event_) on_event_(*event);
}

}  // namespace lockferry::health
