// SPDX-License-Identifier: Apache-2.0
// Heartbeats, the local health check and the membership view; see agent.h.
#include "health/agent.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <cstring>
#include <future>
#include <ranges>

#include "common/clock.h"
#include "common/ip_port.h"

namespace lockferry::health {
namespace {

using boost::asio::ip::udp;
// A leaving node says so a few times (UDP may drop one), one interval apart, then goes quiet.
constexpr int kLeavingMessages = 3;
constexpr Millis kLogEvery{60000};
// Datagrams read per recvmmsg call and calls per wakeup: at most 256 datagrams (well under a
// millisecond of work) before the timers get their turn again.
constexpr unsigned kBatch = 64;
constexpr int kBatchesPerWakeup = 4;
// Bytes read per datagram: anything longer than a heartbeat is malformed (MSG_TRUNC says so).
constexpr std::size_t kDatagramBuffer = kMaxMessage + 1;
// Authenticated datagrams per second: a peer sends one per interval plus a few "leaving", so ten
// times that (and a burst of 20) never drops a genuine one, while a flood claiming to come from
// a peer costs at most that many HMACs; all sources together at most kGlobalRate (or two peers'
// worth, with very many peers).
constexpr double kPeerRateFactor = 10;
constexpr double kPeerBurst = 20;
constexpr double kGlobalRate = 2000;
// How far ahead of a peer's last accepted sequence number its next message may be (lost ones).
constexpr std::uint64_t kExpectedAhead = 64;
constexpr std::chrono::seconds kLoopAnswer{5};

std::int64_t realtime_ms() { return clock::now_ns() / 1000000; }

// An IPv4 peer seen through a dual-stack socket arrives as ::ffff:a.b.c.d.
boost::asio::ip::address plain(const boost::asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
  return a;
}

boost::asio::ip::address address_of(const sockaddr_storage& from) {
  if (from.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&from);
    return boost::asio::ip::address_v4(ntohl(sin->sin_addr.s_addr));
  }
  if (from.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&from);
    boost::asio::ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), sin6->sin6_addr.s6_addr, bytes.size());
    return plain(boost::asio::ip::address_v6(bytes));
  }
  return {};
}

std::string first_line(const std::string& text) {
  auto end = text.find('\n');
  std::string line = text.substr(0, std::min<std::size_t>(end, 200));
  return line.empty() ? "no output" : line;
}

}  // namespace

Result<udp::endpoint> parse_endpoint(const std::string& text) {
  auto parsed = net::parse_ip_port(text);
  if (!parsed)
    return make_error(
        "'{}' {}: write IP:PORT (e.g. \"192.0.2.11:7789\" or \"[2001:db8::11]:7789\")", text,
        parsed.error().message);
  return udp::endpoint(parsed->address, parsed->port);
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

std::string_view describe(Option option) {
  switch (option) {
    case Option::interval:
      return "heartbeat interval";
    case Option::dead_after:
      return "dead-after time";
    case Option::replay_window:
      return "replay window";
    case Option::check_interval:
      return "health check interval";
    case Option::check_timeout:
      return "health check timeout";
    case Option::check_failures:
      return "failed checks before leaving";
    case Option::listen:
      return "heartbeat listen address";
    case Option::key_file:
      return "heartbeat key file";
    case Option::peers:
      return "peers";
    case Option::node:
      return "node name";
  }
  return "option";
}

std::optional<OptionError> check_options(const Options& o, const std::string& self) {
  if (!o.enabled) return std::nullopt;
  const auto error = [](Option option, std::string problem, std::string peer = {},
                        std::optional<Option> compared_to = std::nullopt) {
    return OptionError{option, std::move(problem), std::move(peer), compared_to};
  };
  if (o.interval < Millis(50) || o.interval > Millis(60000))
    return error(Option::interval, fmt::format("must be 50..60000, not {}", o.interval.count()));
  if (o.dead_after < 2 * o.interval)
    return error(Option::dead_after,
                 fmt::format("({}) must be at least twice the heartbeat interval ({}): one lost "
                             "heartbeat must not declare a node dead",
                             o.dead_after.count(), o.interval.count()),
                 {}, Option::interval);
  if (o.replay_window < o.interval || o.replay_window > Millis(600000))
    return error(Option::replay_window,
                 fmt::format("must be between the heartbeat interval and 600000, not {}",
                             o.replay_window.count()),
                 {}, Option::interval);
  if (o.check_interval < Millis(100)) return error(Option::check_interval, "must be >= 100");
  if (o.check_timeout < Millis(100)) return error(Option::check_timeout, "must be >= 100");
  if (o.check_failures < 1 || o.check_failures > 100)
    return error(Option::check_failures, fmt::format("must be 1..100, not {}", o.check_failures));
  if (self.size() > kMaxNodeName)
    return error(Option::node, fmt::format("'{}' is longer than the {} bytes a heartbeat carries",
                                           self, kMaxNodeName));
  if (!o.heartbeats) return std::nullopt;
  if (o.listen.empty())
    return error(Option::listen, "is missing: the IP:PORT heartbeats arrive on");
  if (auto r = parse_endpoint(o.listen); !r) return error(Option::listen, r.error().message);
  if (o.key_file.empty())
    return error(Option::key_file,
                 "is missing: every node needs the same secret key file (head -c 32 /dev/urandom "
                 "| base64 > /etc/lockferry/heartbeat.key; chmod 600)");
  std::size_t others = 0;
  for (const auto& [node, address] : o.peers) {
    if (node.size() > kMaxNodeName)
      return error(Option::peers,
                   fmt::format("node name '{}' is longer than {} bytes", node, kMaxNodeName));
    if (auto r = parse_endpoint(address); !r) return error(Option::peers, r.error().message, node);
    if (node != self) ++others;
  }
  if (others == 0)
    return error(Option::peers,
                 "names no other node: list every node of the cluster as node = \"IP:PORT\"");
  return std::nullopt;
}

struct Agent::Batch {
  std::array<std::array<std::uint8_t, kDatagramBuffer>, kBatch> buffers{};
  std::array<iovec, kBatch> iov{};
  std::array<sockaddr_storage, kBatch> from{};
  std::array<mmsghdr, kBatch> headers{};
};

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
      replay_guard_(options_.replay_window),
      membership_(
          self,
          [&] {
            std::vector<std::string> peers;
            for (const auto& [node, address] : options_.peers) peers.push_back(node);
            return peers;
          }(),
          options_.dead_after) {}

Agent::~Agent() { stop(); }

Result<std::unique_ptr<Agent>> Agent::start(boost::asio::io_context& io, std::string self,
                                            Options options, EventHandler on_event,
                                            SelfState self_state) {
  if (auto e = check_options(options, self))
    return make_error("health: the {}{}{} {}", describe(e->option), e->peer.empty() ? "" : " ",
                      e->peer, e->problem);
  std::unique_ptr<Agent> agent(
      new Agent(io, self, std::move(options), std::move(on_event), std::move(self_state)));
  const Options& o = agent->options_;
  if (o.heartbeats) {
    auto key = Key::load(o.key_file);
    if (!key) return key.error();
    agent->key_ = std::move(*key);
    const double per_peer = kPeerRateFactor * 1000.0 / static_cast<double>(o.interval.count());
    for (const auto& [node, address] : o.peers) {
      if (node == self) continue;
      auto endpoint = *parse_endpoint(address);
      agent->peers_.emplace(
          node, Peer{endpoint, plain(endpoint.address()), TokenBucket(per_peer, kPeerBurst),
                     TokenBucket(per_peer, kPeerBurst)});
    }
    agent->global_bucket_ = TokenBucket(
        std::max(kGlobalRate, 2 * per_peer),
        std::max(2 * kPeerBurst, kPeerBurst * static_cast<double>(agent->peers_.size())));
    auto listen = *parse_endpoint(o.listen);
    boost::system::error_code ec;
    agent->socket_.open(listen.protocol(), ec);
    if (!ec) ::fcntl(agent->socket_.native_handle(), F_SETFD, FD_CLOEXEC);  // Asio: no SOCK_CLOEXEC
    if (!ec) agent->socket_.bind(listen, ec);
    if (!ec) agent->socket_.non_blocking(true, ec);
    if (ec)
      return make_error("cannot receive heartbeats on {} (the heartbeat listen address): {}",
                        o.listen, ec.message());
    auto bound = agent->socket_.local_endpoint(ec);
    agent->listen_address_ =
        ec ? o.listen : fmt::format("{}:{}", bound.address().to_string(), bound.port());
    agent->batch_ = std::make_unique<Batch>();
    randombytes_buf(&agent->incarnation_, sizeof agent->incarnation_);
    agent->wait_readable();
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
                                 agent->listen_address_, o.interval.count(), o.dead_after.count())
                   : std::string(", heartbeats off (node state from set-down/set-up only)"),
      agent->peers_.size(),
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

bool Agent::fit() const {
  const bool fenced = self_state_ ? self_state_().second : false;
  std::lock_guard lock(mutex_);
  return local_.known && local_.healthy && !local_.set_down && !fenced;
}

LocalHealth Agent::local() const {
  std::lock_guard lock(mutex_);
  return local_;
}

Counters Agent::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

std::vector<PeerStatus> Agent::peers() const {
  std::lock_guard lock(mutex_);
  return membership_.peers();
}

std::optional<PeerStatus> Agent::peer(const std::string& node) const {
  std::lock_guard lock(mutex_);
  const PeerStatus* p = membership_.peer(node);
  return p ? std::optional<PeerStatus>(*p) : std::nullopt;
}

Result<void> Agent::on_loop(std::function<Result<void>()> fn) {
  if (io_.get_executor().running_in_this_thread()) return fn();
  auto task = std::make_shared<std::packaged_task<Result<void>()>>(std::move(fn));
  auto result = task->get_future();
  boost::asio::post(io_, [task] { (*task)(); });
  if (result.wait_for(kLoopAnswer) != std::future_status::ready)
    return make_error("the health agent did not answer within {} s", kLoopAnswer.count());
  return result.get();
}

void Agent::stop() {
  if (stopped_) return;
  stopped_ = true;
  // A clean stop of lockferryd says nothing about the NFS service: tell the peers not to adopt
  // this node for it.
  {
    std::lock_guard lock(mutex_);
    if (key_ && socket_.is_open() && local_.known && local_.healthy && !local_.set_down)
      send(MessageType::stopping);
  }
  tick_timer_.cancel();
  check_timer_.cancel();
  if (check_) check_->stop();
  boost::system::error_code ignored;
  socket_.close(ignored);
}

// --- receiving ------------------------------------------------------------------------------

void Agent::wait_readable() {
  receiving_ = true;
  // A wait (not a read) completes through the reactor, never inline: between two batches the
  // timers always get their turn, however fast datagrams arrive.
  socket_.async_wait(boost::asio::ip::udp::socket::wait_read, [this](boost::system::error_code ec) {
    receiving_ = false;
    if (ec == boost::asio::error::operation_aborted || stopped_) return;
    if (ec) {
      // tick() re-arms: an error that repeats cannot spin the loop.
      std::lock_guard lock(mutex_);
      log_rejected("", "receive error", [&] { return ec.message(); });
      return;
    }
    read_batch();
    wait_readable();
  });
}

bool Agent::read_batch() {
  Batch& b = *batch_;
  for (int round = 0; round < kBatchesPerWakeup; ++round) {
    for (unsigned i = 0; i < kBatch; ++i) {
      b.iov[i] = {b.buffers[i].data(), b.buffers[i].size()};
      b.headers[i] = {};
      b.headers[i].msg_hdr.msg_iov = &b.iov[i];
      b.headers[i].msg_hdr.msg_iovlen = 1;
      b.headers[i].msg_hdr.msg_name = &b.from[i];
      b.headers[i].msg_hdr.msg_namelen = sizeof b.from[i];
    }
    const int n =
        ::recvmmsg(socket_.native_handle(), b.headers.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        const int err = errno;
        std::lock_guard lock(mutex_);
        log_rejected("", "receive error", [&] { return std::string(strerror_text(err)); });
      }
      break;
    }
    {
      std::lock_guard lock(mutex_);
      for (int i = 0; i < n; ++i) {
        const auto& h = b.headers[static_cast<unsigned>(i)];
        on_datagram(
            std::span<const std::uint8_t>(b.buffers[static_cast<unsigned>(i)].data(),
                                          std::min<std::size_t>(h.msg_len, kDatagramBuffer)),
            (h.msg_hdr.msg_flags & MSG_TRUNC) != 0, address_of(b.from[static_cast<unsigned>(i)]));
      }
    }
    deliver();
    if (static_cast<unsigned>(n) < kBatch) return false;
  }
  return true;
}

// Cheapest checks first: only a datagram that is well-formed, names a peer, comes from that
// peer's address, is fresh and is within the rate limits costs an HMAC. Called with the lock.
void Agent::on_datagram(std::span<const std::uint8_t> datagram, bool truncated,
                        const boost::asio::ip::address& from) {
  ++counters_.received;
  auto claim = truncated ? Result<Claim>(Error{"datagram larger than any heartbeat",
                                               static_cast<int>(Rejection::malformed)})
                         : peek(datagram);
  auto source = [&] { return from.to_string(); };
  if (!claim) {
    ++counters_.malformed;
    log_rejected("", "malformed", [&] { return source() + ": " + claim.error().message; });
    return;
  }
  auto peer = peers_.find(claim->node);
  if (peer == peers_.end()) {
    ++counters_.unknown_node;
    log_rejected("", "unknown node", [&] {
      const std::string node(claim->node);
      return fmt::format("{}: heartbeat names node '{}', which is {}", source(), node,
                         node == self_ ? "this node" : "not in 'health.peers'");
    });
    return;
  }
  const std::string& node = peer->first;
  if (peer->second.address != from) {
    ++counters_.wrong_source;
    log_rejected(node, "wrong source", [&] {
      return fmt::format("{}: names node '{}', whose address is {} in 'health.peers'", source(),
                         node, peer->second.address.to_string());
    });
    return;
  }
  const std::int64_t now_ms = realtime_ms();
  const std::int64_t window = options_.replay_window.count();
  if (claim->sent_ms < now_ms - window || claim->sent_ms > now_ms + window) {
    ++counters_.replayed;
    log_rejected(node, "stale", [&] {
      return fmt::format(
          "from node '{}' ({}): sent {} ms from our clock, outside the {} ms window "
          "(are the nodes' clocks synchronised?)",
          node, source(), claim->sent_ms - now_ms, window);
    });
    return;
  }
  Peer& p = peer->second;
  const auto at = std::chrono::steady_clock::now().time_since_epoch();
  const bool continues = p.incarnation != 0 && claim->incarnation == p.incarnation &&
                         claim->seq > p.seq && claim->seq - p.seq <= kExpectedAhead;
  if (continues ? !p.expected.take(at) : !(p.others.take(at) && global_bucket_.take(at))) {
    ++counters_.rate_limited;
    log_rejected(node, "rate-limited", [&] {
      return fmt::format("more datagrams claiming node '{}' ({}) than it ever sends: a flood", node,
                         source());
    });
    return;
  }
  auto message = decode(datagram, *key_);
  if (!message) {
    const auto why = static_cast<Rejection>(message.error().code);
    ++(why == Rejection::forged ? counters_.forged : counters_.malformed);
    log_rejected(node, to_string(why), [&] { return source() + ": " + message.error().message; });
    return;
  }
  if (auto admitted = replay_guard_.admit(*message, now_ms); !admitted) {
    ++counters_.replayed;
    log_rejected(node, to_string(static_cast<Rejection>(admitted.error().code)), [&] {
      return fmt::format("from node '{}' ({}): {}", node, source(), admitted.error().message);
    });
    return;
  }
  p.incarnation = message->incarnation;
  p.seq = message->seq;
  ++counters_.accepted;
  spdlog::trace("health: {} from {} ({}) seq {} serving {}", to_string(message->type),
                message->node, source(), message->seq, message->serving);
  emit(membership_.heard(*message, now()));
}

void Agent::log_rejected(const std::string& source, const char* kind,
                         const std::function<std::string()>& detail) {
  Throttle& t = throttle_[{source, kind}];
  const Millis at = now();
  if (t.last.count() != 0 && at - t.last < kLogEvery) {
    ++t.suppressed;
    return;
  }
  spdlog::warn("health: ignored a {} packet{}: {}{}; it changes nothing", kind,
               source.empty() ? std::string() : " about node " + source, detail(),
               t.suppressed ? fmt::format(" ({} more since the last report)", t.suppressed) : "");
  t.last = at.count() == 0 ? Millis(1) : at;
  t.suppressed = 0;
}

// --- sending and deadlines -------------------------------------------------------------------

void Agent::schedule_tick() {
  // Deadlines are checked more often than heartbeats are sent, so a dead node is declared within
  // 100 ms of dead_after rather than within a whole interval of it.
  const Millis period = std::min(options_.interval, Millis(100));
  tick_due_ = now() + period;
  tick_timer_.expires_after(period);
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    tick();
    schedule_tick();
  });
}

void Agent::tick() {
  // Heartbeats that already arrived count before anyone is declared dead: after this thread was
  // starved, the socket holds what the peers sent meanwhile.
  if (key_ && socket_.is_open()) {
    read_batch();
    if (!receiving_) wait_readable();
  }
  const Millis at = now();
  const Millis late = at - tick_due_;
  {
    std::lock_guard lock(mutex_);
    if (key_ && at >= next_send_) {
      next_send_ = at + options_.interval;
      const bool sending = local_.known && local_.healthy && !local_.set_down;
      if (leaving_to_send_ > 0) {
        send(MessageType::leaving);
        --leaving_to_send_;
        last_sent_ = Millis(0);
      } else if (sending) {
        send(MessageType::heartbeat);
        if (last_sent_.count() != 0) {
          const Millis gap = at - last_sent_;
          counters_.max_send_gap_ms = std::max(counters_.max_send_gap_ms, gap.count());
          if (gap > options_.dead_after / 2) {
            ++counters_.late_sends;
            spdlog::warn(
                "health: this node sent no heartbeat for {} ms (interval {} ms, dead_after {} ms): "
                "its peers may have declared it dead; the host or lockferryd's health thread was "
                "starved of CPU",
                gap.count(), options_.interval.count(), options_.dead_after.count());
          }
        }
        last_sent_ = at;
      } else {
        last_sent_ = Millis(0);
      }
    }
    if (late > options_.dead_after / 2) {
      // This node could not keep its own schedule: the silence of its peers proves nothing yet.
      spdlog::warn(
          "health: the health thread ran {} ms late: declaring no peer dead before it has "
          "read what they sent meanwhile",
          late.count());
    } else {
      for (const auto& event : membership_.tick(at)) emit(event);
    }
  }
  deliver();
}

// Called with the lock (counters_).
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
  for (const auto& [node, peer] : peers_) {
    boost::system::error_code ec;
    socket_.send_to(boost::asio::buffer(bytes), peer.endpoint, 0, ec);
    if (ec) {
      ++counters_.send_errors;
      log_rejected(node, "send error", [&] {
        return fmt::format("cannot send to {}: {}", peer.endpoint.address().to_string(),
                           ec.message());
      });
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
  {
    std::lock_guard lock(mutex_);
    ++counters_.checks;
  }
  if (!check_) {
    const bool serving = options_.service_ip.empty() || is_local_address(options_.service_ip);
    {
      std::lock_guard lock(mutex_);
      update_local(true, serving,
                   options_.service_ip.empty()
                       ? "no health check configured"
                       : fmt::format("service IP {} {}", options_.service_ip,
                                     serving ? "is here" : "is not here"));
    }
    schedule_check(options_.check_interval);
    return;
  }
  auto started = check_->start([this](const process::CommandResult& result) {
    const auto verdict = verdict_of(result);
    const std::string what =
        result.timed_out ? fmt::format("timed out after {} ms", options_.check_timeout.count())
                         : fmt::format("exit {}: {}", result.exit_code, first_line(result.output));
    {
      std::lock_guard lock(mutex_);
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
    }
    if (!stopped_) schedule_check(options_.check_interval);
  });
  if (!started) {
    {
      std::lock_guard lock(mutex_);
      ++counters_.check_failures;
      update_local(false, false, started.error().message);
    }
    schedule_check(options_.check_interval);
  }
}

// Called with the lock.
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
  return on_loop([this, node, reason]() -> Result<void> {
    {
      std::lock_guard lock(mutex_);
      if (node == self_) {
        if (local_.set_down) return {};
        const bool was_sending = local_.known && local_.healthy && !local_.set_down;
        local_.set_down = true;
        spdlog::warn("health: this node was set down ({}): it leaves the cluster until set up",
                     reason);
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
    }
    deliver();
    return {};
  });
}

Result<void> Agent::set_up(const std::string& node) {
  return on_loop([this, node]() -> Result<void> {
    {
      std::lock_guard lock(mutex_);
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
    }
    deliver();
    return {};
  });
}

std::string Agent::choose_adopter(const std::string& dead,
                                  const std::vector<std::string>& order) const {
  const bool self_fit = fit();
  std::lock_guard lock(mutex_);
  return membership_.choose_adopter(dead, order, self_fit);
}

// Called with the lock: logs now, hands the event over in deliver().
void Agent::emit(const std::optional<PeerEvent>& event) {
  if (!event) return;
  if (event->kind == PeerEvent::Kind::down)
    spdlog::warn("health: node {} is DOWN: {} (it was {})", event->node, event->reason,
                 event->was_serving ? "serving" : "not serving");
  else
    spdlog::info("health: node {} is up: {} ({})", event->node, event->reason,
                 event->was_serving ? "serving" : "standby");
  pending_events_.push_back(*event);
}

void Agent::deliver() {
  std::vector<PeerEvent> events;
  {
    std::lock_guard lock(mutex_);
    events.swap(pending_events_);
  }
  if (!on_event_) return;
  for (const auto& e : events) on_event_(e);
}

}  // namespace lockferry::health
