// SPDX-License-Identifier: Apache-2.0
// The health agent of lockferryd: sends and receives authenticated UDP heartbeats on the daemon's
// io_context, runs the local health check, keeps the membership view, and reports peers that
// go down or come back. It decides nothing about records: the daemon acts on its events.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "health/check_command.h"
#include "health/heartbeat.h"
#include "health/membership.h"
#include "lockferry/result.h"

namespace lockferry::health {

// [health] of lockferryd's configuration.
struct Options {
  bool enabled = false;    // the [health] section is present
  bool heartbeats = true;  // false: an external cluster manager decides (set-down/set-up only)
  std::string listen;      // "IP:PORT" this node receives heartbeats on
  std::map<std::string, std::string> peers;  // node -> "IP:PORT" (this node's own entry is ignored)
  std::string key_file;
  Millis interval{500};
  Millis dead_after{3000};
  Millis replay_window{10000};
  std::vector<std::string> check_command;  // exit 0 serving, 7 standby, else failed
  Millis check_interval{1000};
  Millis check_timeout{5000};
  int check_failures = 1;  // consecutive failed checks before this node leaves
  // Without a check command: this node is serving when it holds this address ("" = always).
  std::string service_ip;
};

// Validates what the config parser cannot see alone (addresses, timings). Errors name the key.
Result<void> check_options(const Options& options, const std::string& self);

// This node's own health, as it tells its peers.
struct LocalHealth {
  bool known = false;     // a first check finished
  bool healthy = false;   // fit to serve and to adopt
  bool serving = false;   // holds the NFS service now
  bool set_down = false;  // `lockferry health set-down <this node>`
  int consecutive_failures = 0;
  std::string reason;
};

struct Counters {
  std::uint64_t sent = 0;
  std::uint64_t send_errors = 0;
  std::uint64_t leaving_sent = 0;
  std::uint64_t received = 0;
  std::uint64_t accepted = 0;
  std::uint64_t malformed = 0;
  std::uint64_t forged = 0;
  std::uint64_t replayed = 0;  // includes stale (outside the time window)
  std::uint64_t unknown_node = 0;
  std::uint64_t checks = 0;
  std::uint64_t check_failures = 0;
};

class Agent {
 public:
  // A peer went down (dead, left, set down) or came back. Called on the io_context.
  using EventHandler = std::function<void(const PeerEvent&)>;
  // This node's fencing epoch and whether it learned it was adopted, for its heartbeats.
  using SelfState = std::function<std::pair<std::uint64_t, bool>()>;

  // Binds the heartbeat socket (when heartbeats are on), loads the key, starts the timers.
  static Result<std::unique_ptr<Agent>> start(boost::asio::io_context& io, std::string self,
                                              Options options, EventHandler on_event,
                                              SelfState self_state);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Operator/monitor overrides. For this node: set-down makes it leave (it says so, then stops
  // heartbeating) and set-up lets it rejoin; for a peer: declare it down (adopt it) / clear that.
  Result<void> set_down(const std::string& node, const std::string& reason);
  Result<void> set_up(const std::string& node);

  // Who adopts `dead` according to this node's view (see Membership::choose_adopter).
  std::string choose_adopter(const std::string& dead, const std::vector<std::string>& order) const;
  bool fit() const;  // healthy, not set down, not fenced: may serve and adopt

  const LocalHealth& local() const { return local_; }
  const Counters& counters() const { return counters_; }
  const Membership& membership() const { return membership_; }
  const Options& options() const { return options_; }
  std::string listen_address() const;  // the bound address (real port when 0 was asked)

  void stop();

 private:
  Agent(boost::asio::io_context& io, std::string self, Options options, EventHandler on_event,
        SelfState self_state);
  Millis now() const;
  void receive();
  void on_datagram(std::size_t size, boost::system::error_code ec);
  void schedule_tick();
  void tick();
  void send(MessageType type);
  void schedule_check(Millis delay);
  void run_check();
  void update_local(bool healthy, bool serving, std::string reason);
  void emit(const std::optional<PeerEvent>& event);
  // Logs at most once a minute per (source, kind), saying how many were not logged.
  void log_rejected(const std::string& source, const char* kind, const std::string& detail);

  boost::asio::io_context& io_;
  std::string self_;
  Options options_;
  EventHandler on_event_;
  SelfState self_state_;
  std::optional<Key> key_;
  boost::asio::ip::udp::socket socket_;
  boost::asio::ip::udp::endpoint sender_;
  std::array<std::uint8_t, 512> buffer_{};
  std::map<std::string, boost::asio::ip::udp::endpoint> peer_endpoints_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer check_timer_;
  std::unique_ptr<CheckCommand> check_;
  Membership membership_;
  ReplayGuard replay_guard_;
  LocalHealth local_;
  Counters counters_;
  std::uint64_t incarnation_ = 0;
  std::uint64_t seq_ = 0;
  int leaving_to_send_ = 0;
  Millis next_send_{0};
  bool was_fit_ = false;
  bool stopped_ = false;
  struct Throttle {
    Millis last{0};
    std::uint64_t suppressed = 0;
  };
  std::map<std::string, Throttle> throttle_;
};

// "IP:PORT" (IPv4 or [IPv6]:PORT) -> endpoint; errors say what a valid value looks like.
Result<boost::asio::ip::udp::endpoint> parse_endpoint(const std::string& text);

// Whether `ip` is assigned to one of this host's (this network namespace's) interfaces.
bool is_local_address(const std::string& ip);

}  // namespace lockferry::health
