// SPDX-License-Identifier: Apache-2.0
// The health agent of lockferryd: sends and receives authenticated UDP heartbeats, runs the local
// health check, keeps the membership view, and reports peers that go down or come back. It
// decides nothing about records: the daemon acts on its events. lockferryd runs it on an
// io_context and thread of its own, so nothing else the daemon does can delay a heartbeat; the
// receive path reads in bounded batches and filters and rate-limits datagrams before their HMAC,
// so a flood cannot delay one either.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "health/check_command.h"
#include "health/heartbeat.h"
#include "health/membership.h"
#include "health/rate_limit.h"
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

// Which option an OptionError is about. The health library does not know how its options are
// spelled in a configuration file: lockferryd's settings table maps these to its keys.
enum class Option {
  interval,
  dead_after,
  replay_window,
  check_interval,
  check_timeout,
  check_failures,
  listen,
  key_file,
  peers,
  node,  // this node's own name
};

// Why `options` cannot run: `problem` follows the option's name ("must be 50..60000, not 10");
// `peer` names the entry of `peers` at fault, if one is; `compared_to` is the other option a
// timing is measured against, if it is.
struct OptionError {
  Option option;
  std::string problem;
  std::string peer;
  std::optional<Option> compared_to;
};

// The operator's words for an option ("heartbeat interval"), for messages that have no key.
std::string_view describe(Option option);

// Validates what a config parser cannot see alone (addresses, timings and how they relate).
std::optional<OptionError> check_options(const Options& options, const std::string& self);

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
  // Dropped before the HMAC: a peer's name from an address that is not that peer's, and datagrams
  // over the per-peer or the global rate (a flood; the kernel's own drops are not counted here).
  std::uint64_t wrong_source = 0;
  std::uint64_t rate_limited = 0;
  std::uint64_t checks = 0;
  std::uint64_t check_failures = 0;
  // This node's own schedule: the longest time between two heartbeats it sent (0 before the
  // second), and how many came later than dead_after/2 after the previous one (peers were close
  // to declaring this node dead: the host was starved of CPU, or the agent's thread was).
  std::int64_t max_send_gap_ms = 0;
  std::uint64_t late_sends = 0;
};

class Agent {
 public:
  // A peer went down (dead, left, set down) or came back. Called on the agent's io_context, never
  // with the agent's lock held; it must be short (lockferryd posts it to its own loop).
  using EventHandler = std::function<void(const PeerEvent&)>;
  // This node's fencing epoch and whether it learned it was adopted, for its heartbeats. Called on
  // the agent's io_context: it must be cheap and thread-safe.
  using SelfState = std::function<std::pair<std::uint64_t, bool>()>;

  // Binds the heartbeat socket (when heartbeats are on), loads the key, starts the timers on `io`.
  static Result<std::unique_ptr<Agent>> start(boost::asio::io_context& io, std::string self,
                                              Options options, EventHandler on_event,
                                              SelfState self_state);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Operator/monitor overrides. For this node: set-down makes it leave (it says so, then stops
  // heartbeating) and set-up lets it rejoin; for a peer: declare it down (adopt it) / clear that.
  // Any thread: from another one they run on the agent's io_context and wait for it (bounded).
  Result<void> set_down(const std::string& node, const std::string& reason);
  Result<void> set_up(const std::string& node);

  // Snapshots; any thread.
  // Who adopts `dead` according to this node's view (see Membership::choose_adopter).
  std::string choose_adopter(const std::string& dead, const std::vector<std::string>& order) const;
  bool fit() const;  // healthy, not set down, not fenced: may serve and adopt
  LocalHealth local() const;
  Counters counters() const;
  std::vector<PeerStatus> peers() const;
  std::optional<PeerStatus> peer(const std::string& node) const;
  const Options& options() const { return options_; }
  std::string listen_address() const { return listen_address_; }  // real port when 0 was asked

  // On the agent's io_context, or when it does not run.
  void stop();

 private:
  struct Peer {
    boost::asio::ip::udp::endpoint endpoint;  // where its heartbeats go
    boost::asio::ip::address address;         // where they must come from (v4-mapped undone)
    // How many datagrams per second claiming this peer are authenticated: those that continue
    // its known sequence (an off-path forger cannot guess its random incarnation) have a bucket
    // of their own, so a flood of forgeries does not crowd out the peer's real heartbeats.
    TokenBucket expected;
    TokenBucket others;
    std::uint64_t incarnation = 0;  // of its last accepted message
    std::uint64_t seq = 0;
  };
  struct Batch;  // recvmmsg buffers

  Agent(boost::asio::io_context& io, std::string self, Options options, EventHandler on_event,
        SelfState self_state);
  Millis now() const;
  // Runs fn on the agent's io_context and waits for it; directly when already there.
  Result<void> on_loop(std::function<Result<void>()> fn);
  void wait_readable();
  // Reads what the socket holds, at most a bounded number of datagrams, so the timers run between
  // batches however fast datagrams arrive. Returns whether the socket may hold more.
  bool read_batch();
  void on_datagram(std::span<const std::uint8_t> datagram, bool truncated,
                   const boost::asio::ip::address& from);
  void schedule_tick();
  void tick();
  void send(MessageType type);
  void schedule_check(Millis delay);
  void run_check();
  void update_local(bool healthy, bool serving, std::string reason);
  void emit(const std::optional<PeerEvent>& event);
  // Hands the events emitted under the lock to on_event_; call without the lock.
  void deliver();
  // Logs at most once a minute per (source, kind), saying how many were not logged. `source` is a
  // peer's name or "" for every other address, so a flood from many addresses costs one entry.
  void log_rejected(const std::string& source, const char* kind,
                    const std::function<std::string()>& detail);

  boost::asio::io_context& io_;
  std::string self_;
  const Options options_;
  EventHandler on_event_;
  SelfState self_state_;
  std::optional<Key> key_;
  boost::asio::ip::udp::socket socket_;
  std::string listen_address_;
  std::unique_ptr<Batch> batch_;
  std::map<std::string, Peer, std::less<>> peers_;
  TokenBucket global_bucket_{0, 0};
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer check_timer_;
  std::unique_ptr<CheckCommand> check_;
  ReplayGuard replay_guard_;
  std::uint64_t incarnation_ = 0;
  std::uint64_t seq_ = 0;
  int leaving_to_send_ = 0;
  Millis next_send_{0};
  Millis last_sent_{0};     // when the last heartbeat left; 0 while not heartbeating
  Millis tick_due_{0};      // when the running tick was due
  bool receiving_ = false;  // a wait for the socket is armed
  bool stopped_ = false;

  // What other threads read: guarded by mutex_.
  mutable std::mutex mutex_;
  Membership membership_;
  LocalHealth local_;
  Counters counters_;
  std::vector<PeerEvent> pending_events_;
  struct Throttle {
    Millis last{0};
    std::uint64_t suppressed = 0;
  };
  std::map<std::pair<std::string, std::string>, Throttle> throttle_;
};

// "IP:PORT" (IPv4 or [IPv6]:PORT) -> endpoint; errors say what a valid value looks like.
Result<boost::asio::ip::udp::endpoint> parse_endpoint(const std::string& text);

// Whether `ip` is assigned to one of this host's (this network namespace's) interfaces.
bool is_local_address(const std::string& ip);

}  // namespace lockferry::health
